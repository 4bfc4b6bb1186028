"""common.pretrained: the four decisions (a given file, the cache, a download, offline), each
checked with the download function replaced; the suite never touches the network."""
from __future__ import annotations

import urllib.error

import pytest
import torch

import common.pretrained as pretrained
from common import metrics, vgg
from common.errors import UserError

URL = "https://example.org/models/thing-0123abcd.pth"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.delenv(pretrained.NO_DOWNLOAD, raising=False)  # online, as a user's machine
    return tmp_path / "hub" / "hub" / "checkpoints"


def recording(calls, write=True):
    def download(url, dst, hash_prefix, progress):
        calls.append((url, dst, hash_prefix, progress))
        if write:
            torch.save({"w": torch.ones(1)}, dst)
    return download


def test_1_a_given_file_is_used_and_nothing_is_fetched(hub, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pretrained, "DOWNLOAD", recording(calls))
    given = tmp_path / "mine.pth"
    given.write_bytes(b"x")
    assert pretrained.fetch(URL, what="thing", given=given) == given
    with pytest.raises(UserError, match=r"thing .*nope.pth: no such file; download .*thing-0123abcd.pth"):
        pretrained.fetch(URL, what="thing", given=tmp_path / "nope.pth", flag="--thing")  # never a fallback
    assert calls == []


def test_2_the_cached_file_is_used_and_nothing_is_fetched(hub, monkeypatch):
    calls = []
    monkeypatch.setattr(pretrained, "DOWNLOAD", recording(calls))
    hub.mkdir(parents=True)
    (hub / "thing-0123abcd.pth").write_bytes(b"x")
    assert pretrained.fetch(URL, what="thing") == hub / "thing-0123abcd.pth"
    assert calls == []


def test_3_otherwise_it_is_downloaded_into_the_cache_once_with_its_checksum(hub, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(pretrained, "DOWNLOAD", recording(calls))
    path = pretrained.fetch(URL, what="thing")
    assert path == hub / "thing-0123abcd.pth" and path.is_file()
    assert calls == [(URL, str(path), "0123abcd", True)]  # torch's downloader: hash prefix, progress bar
    assert "downloading" in capsys.readouterr().out
    pretrained.fetch(URL, what="thing")
    assert len(calls) == 1  # the second run uses the cache


@pytest.mark.parametrize("failure", [urllib.error.URLError("Name or service not known"), TimeoutError(),
                                     RuntimeError("invalid hash value")])
def test_4_offline_or_a_bad_download_is_one_line(hub, monkeypatch, failure):
    def fail(*args, **kwargs):
        raise failure
    monkeypatch.setattr(pretrained, "DOWNLOAD", fail)
    with pytest.raises(UserError, match=r"thing.*download https://example.org.* into .*--thing PATH"):
        pretrained.fetch(URL, what="thing", flag="--thing")
    assert not (hub / "thing-0123abcd.pth").exists()


def test_4_downloads_can_be_turned_off(hub, monkeypatch):
    calls = []
    monkeypatch.setattr(pretrained, "DOWNLOAD", recording(calls))
    monkeypatch.setenv(pretrained.NO_DOWNLOAD, "1")
    with pytest.raises(UserError, match="downloads are off"):
        pretrained.fetch(URL, what="thing")
    assert calls == []


def test_vgg_downloads_torchvisions_file_when_online(hub, monkeypatch):
    def download(url, dst, hash_prefix, progress):
        assert url == vgg.WEIGHTS_URL and hash_prefix == "dcbb9e9d"
        torch.save({f"features.{k}": v for k, v in vgg.build_features("relu1_2").state_dict().items()}, dst)
    monkeypatch.setattr(pretrained, "DOWNLOAD", download)
    assert vgg.vgg19_features("relu1_2").features[2].weight.shape == (64, 64, 3, 3)
    assert (hub / vgg.WEIGHTS_FILE).is_file()


def test_features_auto_falls_back_to_offline_with_a_line_and_inception_never_does(hub, monkeypatch, capsys):
    monkeypatch.setenv(pretrained.NO_DOWNLOAD, "1")
    extractor = metrics.feature_extractor("auto", "digits")
    assert "offline digit features" in extractor.name
    assert "--features auto: the offline features, not Inception" in capsys.readouterr().out
    with pytest.raises(UserError, match=metrics.INCEPTION_FILE):
        metrics.feature_extractor("inception", "digits")


def test_features_auto_takes_inception_when_it_can_be_had(hub, monkeypatch):
    asked = []

    class FakeInception:
        name = "Inception-v3 features (torch-fidelity TF-FID weights)"

        def __init__(self, device, weights):
            asked.append(metrics.inception_weights_path(weights))

    monkeypatch.setattr(metrics, "InceptionFeatures", FakeInception)
    monkeypatch.setattr(pretrained, "DOWNLOAD", recording([]))
    assert metrics.feature_extractor("auto", "digits").name.startswith("Inception")
    assert asked == [hub / metrics.INCEPTION_FILE]
