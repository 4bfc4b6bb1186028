"""common/metrics.py: the torchmetrics wiring checked against closed forms, the sanity
orderings the measurement issue asks for, and the offline errors for missing weights."""
import json

import numpy as np
import pytest
import scipy.linalg
import torch

from common import metrics as M
from common.data import Digits, PhotoCrops
from common.errors import CheckpointError, UserError
from common.swd import _blur


@pytest.fixture(scope="module")
def digit_halves():
    return M.real_reference(Digits(32))


@pytest.fixture(scope="module")
def digit_features():
    return M.feature_extractor("offline", "digits")


def degraded(images: torch.Tensor) -> dict:
    gen = torch.Generator().manual_seed(1)
    return {"blurred": _blur(_blur(images)),
            "noisy": (images + 0.5 * torch.randn(images.shape, generator=gen)).clamp(-1, 1)}


# ------------------------------------------------------------------------- FID
def fid_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), with scipy's matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def test_fid_matches_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(500, 8, generator=gen, dtype=torch.float64)
    b = torch.randn(400, 8, generator=gen, dtype=torch.float64) @ torch.diag(torch.linspace(0.5, 2, 8).double()) + 0.7
    assert M.fid(a, b) == pytest.approx(fid_by_hand(a.numpy(), b.numpy()), rel=1e-6)
    assert M.fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_a_mean_shift_is_the_squared_shift():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 4, generator=gen, dtype=torch.float64)
    shift = torch.tensor([3.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert M.fid(a, a + shift) == pytest.approx(9.0, abs=1e-6)  # same covariance: only the means differ


# ------------------------------------------------------------------- KID and IS
def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(600, 16, generator=gen)
    b = torch.randn(600, 16, generator=gen)
    same, same_std = M.kid(a, b, subsets=20)
    shifted, _ = M.kid(a, b + 1.0, subsets=20)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 100 * max(abs(same), 1e-4)
    assert M.kid(a, b + 1.0, subsets=20) == M.kid(a, b + 1.0, subsets=20)  # seeded subsets: repeatable


@pytest.mark.filterwarnings("ignore:std\\(\\)")  # one split has no spread
def test_inception_score_bounds():
    k = 10
    assert M.inception_score(torch.zeros(200, k), splits=4)[0] == pytest.approx(1.0)  # p(y|x) = p(y): no information
    confident = torch.full((200, k), -50.0)
    confident[torch.arange(200), torch.arange(200) % k] = 50.0  # sure of each class, all classes equally often
    assert M.inception_score(confident, splits=1)[0] == pytest.approx(k, rel=1e-4)  # one split: exact marginal


# ------------------------------------------------------------ sanity orderings
def test_offline_digit_features_rank_real_below_blurred_below_noisy(digit_halves, digit_features):
    a, b = digit_halves
    reference = M.extract(digit_features, b)[0]
    fids = {"real": M.fid(reference, M.extract(digit_features, a)[0])}
    kids = {"real": M.kid(reference, M.extract(digit_features, a)[0], subsets=20)[0]}
    for name, images in degraded(a).items():
        feats = M.extract(digit_features, images)[0]
        fids[name], kids[name] = M.fid(reference, feats), M.kid(reference, feats, subsets=20)[0]
    assert fids["real"] < 0.5 * fids["blurred"] < 0.5 * fids["noisy"], fids
    assert kids["real"] < kids["blurred"] < kids["noisy"], kids


def test_offline_conv_statistics_rank_photos_the_same_way():
    a, b = M.real_reference(PhotoCrops(64, length=256))
    extractor = M.feature_extractor("offline", "photos")
    assert isinstance(extractor, M.OfflineConvStatistics) and not extractor.has_logits
    reference = M.extract(extractor, b)[0]
    fids = {"real": M.fid(reference, M.extract(extractor, a)[0])}
    for name, images in degraded(a).items():
        fids[name] = M.fid(reference, M.extract(extractor, images)[0])
    fids["uniform"] = M.fid(reference, M.extract(extractor, torch.rand_like(a) * 2 - 1)[0])
    assert fids["real"] < fids["blurred"] < fids["noisy"] < fids["uniform"], fids


# -------------------------------------------------------------------- MS-SSIM
@pytest.mark.parametrize("size, scales", [(28, 2), (32, 2), (64, 3), (128, 4), (256, 5)])
def test_ms_ssim_uses_the_scales_an_image_allows(size, scales):
    betas = M.ms_ssim_betas(size)
    assert len(betas) == scales and sum(betas) == pytest.approx(1.0)
    assert betas[0] / betas[1] == pytest.approx(M.MS_SSIM_BETAS[0] / M.MS_SSIM_BETAS[1])


def test_ms_ssim_diversity_orders_copies_real_data_and_noise(digit_halves):
    a, _ = digit_halves
    copies = a[:1].repeat(50, 1, 1, 1)
    noise = torch.rand(200, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert M.ms_ssim_diversity(copies, n_pairs=100) == pytest.approx(1.0, abs=1e-4)  # no diversity at all
    real = M.ms_ssim_diversity(a, n_pairs=300)
    assert M.ms_ssim_diversity(noise, n_pairs=300) < real < 0.9


# ------------------------------------------------------------- paired metrics
def test_psnr_of_a_known_error():
    target = torch.zeros(4, 3, 16, 16)
    pred = target + 0.2  # 0.1 on the [0, 1] scale: MSE 0.01 -> 20 dB
    assert M.psnr(pred, target) == pytest.approx(20.0, abs=1e-4)
    assert M.psnr(target + 0.02, target) == pytest.approx(40.0, abs=1e-3)  # 0.01 apart: MSE 1e-4 -> 40 dB


def test_ssim_is_one_for_equal_images_and_lower_for_noisy_ones():
    images = PhotoCrops(32, length=4)
    x = torch.stack([images[i][0] for i in range(4)])
    assert M.ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    assert M.ssim(x + 0.3 * torch.randn_like(x), x) < 0.8
    with pytest.raises(ValueError, match="equal shapes"):
        M.psnr(x, x[:2])


# ------------------------------------------------------- weights that are missing
@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_inception_without_weights_names_the_file(empty_torch_home):
    with pytest.raises(UserError) as info:
        M.feature_extractor("inception", "digits")
    assert M.INCEPTION_FILE in str(info.value) and str(empty_torch_home) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A weights file with torch-fidelity's layout but random values (the real ones are a
    download): enough to run the whole Inception path, not to trust its numbers."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, *a, **k: None)
        model = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / M.INCEPTION_FILE
    torch.save(model.state_dict(), path)
    return path


def test_inception_path_runs_on_grey_and_colour_images(random_inception_weights):
    extractor = M.feature_extractor("inception", "digits", inception_weights=random_inception_weights)
    assert extractor.name.startswith("Inception")
    for channels in (1, 3):
        feats, logits = M.extract(extractor, torch.rand(3, channels, 32, 32) * 2 - 1)
        assert feats.shape == (3, 2048) and logits.shape == (3, 1008)
        assert torch.isfinite(feats).all()


def test_a_corrupt_inception_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / M.INCEPTION_FILE
    path.write_bytes(b"not a weights file")
    with pytest.raises(CheckpointError, match="not a readable weights file"):
        M.InceptionFeatures(weights=path)


def test_unknown_feature_kind_is_a_user_error():
    with pytest.raises(UserError, match="offline | inception"):
        M.feature_extractor("vgg", "digits")


# ---------------------------------------------------------------- whole reports
def test_image_report_names_its_features_and_is_repeatable(digit_halves, digit_features, tmp_path):
    a, b = digit_halves
    report = M.image_report(a[:128], b[:128], digit_features)
    assert report["features"].startswith("offline digit features")
    assert {"fid", "kid", "kid_std", "is", "is_std", "swd", "swd_levels", "ms_ssim", "n"} <= set(report)
    assert list(report["swd_levels"]) == [32, 16]
    again = M.image_report(a[:128], b[:128], digit_features)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in report.items() if k != "seconds"}
    assert "offline digit features" in M.format_report(report)
    assert set(M.scalars(report)) == {"eval_offline/" + k for k in ("fid", "kid", "is", "swd", "ms_ssim")}
    path = M.append_jsonl(tmp_path / "metrics.jsonl", {"step": 1, **report})
    M.append_jsonl(path, {"step": 2, **report})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2] and lines[0]["fid"] == report["fid"]


def test_image_report_refuses_mismatched_shapes(digit_halves, digit_features):
    a, b = digit_halves
    with pytest.raises(ValueError, match="differ in shape"):
        M.image_report(a[:8, :, :16, :16], b[:8], digit_features)


def test_real_reference_halves_are_disjoint_and_capped():
    digits = Digits(32)
    a, b = M.real_reference(digits)
    assert a.shape == b.shape == (len(digits) // 2, 1, 32, 32)
    small_a, small_b = M.real_reference(digits, n=100)
    assert small_a.shape[0] == small_b.shape[0] == 100
    assert torch.equal(small_a, a[:100])
    # disjoint: any image found in both halves must be one of the digits' few exact duplicates
    rows = lambda x: {bytes(r.numpy()) for r in x.flatten(1)}  # noqa: E731
    duplicates = len(digits) - len(rows(digits.images))
    assert len(rows(a) & rows(b)) <= duplicates < 20


def test_report_records_prints_each_and_appends_them_beside_the_run(tmp_path, capsys):
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    records = [{"what": "generated", "step": 7, "features": "f", "n": 2, "fid": 1.5, "kid": 0.1, "kid_std": 0.01,
                "ms_ssim": 0.3},
               {"what": "real A vs B", "step": 7, "features": "f", "n": 2, "fid": 0.5, "kid": 0.0, "kid_std": 0.0,
                "ms_ssim": 0.3}]
    path = M.report_records(records, checkpoint)
    assert path == (tmp_path / "run" / "metrics.jsonl").resolve()
    assert [json.loads(line)["fid"] for line in path.read_text().splitlines()] == [1.5, 0.5]
    out = capsys.readouterr().out
    assert "generated (step 7): FID 1.500" in out and "real A vs B: FID 0.500" in out
    other = M.report_records(records[:1], checkpoint, tmp_path / "elsewhere.jsonl")  # --jsonl
    assert other == tmp_path / "elsewhere.jsonl" and len(path.read_text().splitlines()) == 2
