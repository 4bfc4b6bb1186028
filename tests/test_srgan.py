"""SRGAN's two training stages: SRResNet-MSE, then SRGAN from it; losses, exact resume in both
stages (across the gan stage's 1e-4 -> 1e-5 step), and the VGG weights rule."""
from __future__ import annotations

import pytest
import torch

from common.checkpoint import load_file
from srgan import train as sr_train
from tests.helpers import assert_one_line_error, run_script, write_random_vgg

TINY = ["--features", "8", "--blocks", "2", "--batch-size", "2", "--precision", "fp32", "--device", "cpu",
        "--log-every", "1", "--sample-every", "100", "--save-every", "100", "--epoch-length", "6"]


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory):
    return write_random_vgg(tmp_path_factory.mktemp("vgg"))


@pytest.fixture(scope="module")
def psnr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("srgan") / "psnr"
    sr_train.main(sr_train.parse_opt(TINY + ["--hr-size", "32", "--max-steps", "3", "--out", str(out)]))
    return out


def test_losses_by_hand():
    sr, hr = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert float(sr_train.mse_loss(sr, hr)) == pytest.approx(0.25)
    identity = lambda x: x  # noqa: E731 - a stand-in feature map: the rescale alone shows
    assert float(sr_train.vgg_content_loss(identity, sr, hr)) == pytest.approx(0.25 / 12.75 ** 2)
    real, fake = torch.tensor([[1.5]]), torch.tensor([[-0.5]])
    by_hand = -(torch.log(torch.sigmoid(real)) + torch.log(1 - torch.sigmoid(fake)))
    assert torch.allclose(sr_train.discriminator_loss(real, fake), by_hand.mean())
    assert torch.allclose(sr_train.adversarial_loss(fake), -torch.log(torch.sigmoid(fake)).mean())


def test_psnr_stage_writes_g_only_with_its_stage(psnr_run):
    payload = load_file(psnr_run / "checkpoints/last.pt")
    assert payload["step"] == 3 and set(payload["models"]) == {"G"} and payload["options"]["stage"] == "psnr"
    assert payload["options"]["iters"] == 1_000_000  # the paper's 10^6 SRResNet updates, resolved
    assert (psnr_run / "samples/samples_0000003.png").is_file()


def weights(path):
    payload = load_file(path)
    return payload["models"], payload["optimizers"]


def same_run(a, b):
    (ma, oa), (mb, ob) = weights(a), weights(b)
    for net in ma:
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
        for va, vb in zip(oa[net]["state"].values(), ob[net]["state"].values()):
            assert torch.equal(va["exp_avg"], vb["exp_avg"])
    return ma


def test_resume_is_exact_in_the_psnr_stage(tmp_path):
    common = TINY + ["--hr-size", "16", "--seed", "5"]
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "a")]))
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "b"), "--resume", "auto"]))
    ma = same_run(tmp_path / "a/checkpoints/last.pt", tmp_path / "b/checkpoints/last.pt")
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "c")]))
    mc, _ = weights(tmp_path / "c/checkpoints/last.pt")
    assert not torch.equal(ma["G"]["head.0.weight"], mc["G"]["head.0.weight"])  # the check can fail


def test_gan_stage_starts_from_the_psnr_g_and_resumes_exactly_across_the_lr_step(psnr_run, random_vgg, tmp_path):
    init = psnr_run / "checkpoints/last.pt"
    common = TINY + ["--stage", "gan", "--init", str(init), "--vgg-weights", str(random_vgg), "--hr-size", "32",
                     "--iters", "4", "--seed", "6"]  # lr 1e-4 for steps 1-2, 1e-5 for 3-4
    first = sr_train.parse_opt(common + ["--max-steps", "1", "--out", str(tmp_path / "one")])
    sr_train.main(first)
    start = load_file(init)["models"]["G"]
    after_one = load_file(tmp_path / "one/checkpoints/last.pt")["models"]["G"]
    assert not torch.equal(start["head.0.weight"], after_one["head.0.weight"])
    assert torch.allclose(start["head.0.weight"], after_one["head.0.weight"], atol=2e-4)  # one Adam step from it
    sr_train.main(sr_train.parse_opt(common + ["--out", str(tmp_path / "a")]))
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    sr_train.main(sr_train.parse_opt(common + ["--out", str(tmp_path / "b"), "--resume", "auto"]))
    same_run(tmp_path / "a/checkpoints/last.pt", tmp_path / "b/checkpoints/last.pt")
    payload = load_file(tmp_path / "a/checkpoints/last.pt")
    assert set(payload["models"]) == {"G", "D"} and payload["options"]["stage"] == "gan"
    assert payload["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(1e-5)


def test_gan_stage_needs_an_srresnet_and_the_vgg_weights(psnr_run, tmp_path, monkeypatch):
    proc = run_script("srgan", "train", *TINY, "--stage", "gan", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "--init PATH" in proc.stderr
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    proc = run_script("srgan", "train", *TINY, "--stage", "gan", "--init", psnr_run / "checkpoints/last.pt",
                      "--out", tmp_path / "novgg")
    assert_one_line_error(proc, "vgg19-dcbb9e9d.pth", "--vgg-weights PATH")
    assert not (tmp_path / "novgg").exists()  # stopped before anything was written


def test_init_from_a_gan_stage_or_another_model_is_refused(random_vgg, tmp_path):
    from dcgan import train as dcgan_train

    dcgan_train.main(dcgan_train.parse_opt(["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8",
                                            "--max-steps", "1", "--device", "cpu", "--precision", "fp32",
                                            "--out", str(tmp_path / "d")]))
    proc = run_script("srgan", "train", *TINY, "--stage", "gan", "--init", tmp_path / "d/checkpoints/last.pt",
                      "--vgg-weights", random_vgg, "--hr-size", "32", "--out", tmp_path / "o")
    assert_one_line_error(proc, "not a --stage psnr checkpoint of srgan")


def test_evaluate_reports_y_psnr_beside_bicubic(psnr_run):
    from common import metrics, superres

    proc = run_script("srgan", "evaluate", "--checkpoint", psnr_run / "checkpoints/last.pt", "--device", "cpu",
                      "--crops", psnr_run / "crops.png")
    assert proc.returncode == 0, proc.stderr
    assert "SRGAN G (psnr stage, step 3): PSNR(Y)" in proc.stdout and "bicubic: PSNR(Y)" in proc.stdout
    import json

    g, bicubic = [json.loads(line) for line in (psnr_run / "metrics.jsonl").read_text().splitlines()[-2:]]
    expected = []
    for lr, hr in superres.held_out_images(4):  # the same figure computed directly
        up = (superres.bicubic_upsample(lr.unsqueeze(0), 4) * 2 - 1).clamp(-1, 1)
        expected.append(metrics.psnr(up, hr.unsqueeze(0), y_channel=True, crop_border=4))
    assert bicubic["psnr_y"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    assert g["stage"] == "psnr" and g["psnr_y"] < bicubic["psnr_y"]  # three steps of training are not bicubic yet
    assert (psnr_run / "crops.png").is_file()


def test_generate_upscales_files_and_folders_and_tiles_without_seams(psnr_run, tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)).save(tmp_path / "in/odd.png")
    Image.fromarray(rng.integers(0, 256, (9, 7), dtype=np.uint8)).save(tmp_path / "in/grey.png")
    ckpt = psnr_run / "checkpoints/last.pt"
    proc = run_script("srgan", "generate", "--checkpoint", ckpt, "--input", tmp_path / "in", "--out", tmp_path / "whole",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "1 of 2 images" in proc.stdout
    assert Image.open(tmp_path / "whole/odd.png").size == (180, 148) and Image.open(tmp_path / "whole/grey.png").size == (28, 36)
    # tiny G (B = 2) reaches about 12 LR pixels: 30-pixel tiles with 13 of overlap must give the same image
    proc = run_script("srgan", "generate", "--checkpoint", ckpt, "--input", tmp_path / "in/odd.png", "--out",
                      tmp_path / "tiled.png", "--tile", "30", "--tile-overlap", "13", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    whole, tiled = (np.asarray(Image.open(p)).astype(int) for p in (tmp_path / "whole/odd.png", tmp_path / "tiled.png"))
    assert np.abs(whole - tiled).max() <= 1  # 8-bit rounding at most
