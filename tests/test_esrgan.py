"""ESRGAN's two stages: the PSNR-oriented RRDBNet (L1), then ESRGAN from it (perceptual + RaGAN +
L1); losses by hand, exact resume in both stages across their lr halvings, the VGG and --init
rules, released weights, network interpolation, evaluation beside bicubic, tiled generation; its
data (HR crops with bicubic LR, given LR/HR pairs) and the Y-channel measure."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.optim.lr_scheduler import MultiStepLR

from common.checkpoint import load_file
from common.errors import CheckpointError, DataError, UserError
from common.loop import advance_schedules
from esrgan import dataset as es_data
from esrgan import evaluate as es_evaluate
from esrgan import generate as es_generate
from esrgan import train as es_train
from esrgan import utils as es_utils
from esrgan.model import RRDBNet
from tests.helpers import assert_one_line_error, run_script, write_random_vgg

TINY = ["--nf", "8", "--nb", "1", "--gc", "4", "--ndf", "4", "--batch-size", "2", "--precision", "fp32",
        "--device", "cpu", "--log-every", "1", "--sample-every", "100", "--save-every", "100", "--epoch-length", "6"]


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory):
    return write_random_vgg(tmp_path_factory.mktemp("vgg"))


@pytest.fixture(scope="module")
def psnr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("esrgan") / "psnr"
    es_train.main(es_train.parse_opt(TINY + ["--hr-size", "32", "--max-steps", "3", "--eval-every", "3",
                                             "--out", str(out)]))
    return out


@pytest.fixture(scope="module")
def gan_run(psnr_run, tmp_path_factory):
    """A gan-stage checkpoint for the inference tests, made cheaply: without L_percep (the ablation
    --percep-weight 0, which needs no VGG weights: none are given, none are in the cache)."""
    out = tmp_path_factory.mktemp("esrgan") / "gan"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("empty_hub")))
        es_train.main(es_train.parse_opt(TINY + ["--stage", "gan", "--init", str(psnr_run / "checkpoints/last.pt"),
                                                 "--percep-weight", "0", "--max-steps", "2", "--out", str(out)]))
    return out


def test_losses_by_hand():
    sr, hr = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert float(es_train.l1_loss(sr, hr)) == pytest.approx(0.5)
    double = lambda x: 2 * x  # noqa: E731 - a stand-in feature map
    assert float(es_train.perceptual_loss(double, sr, hr)) == pytest.approx(1.0)
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[1.0], [-1.0]])  # E[C(real)] = 1, E[C(fake)] = 0
    d_ra_real = torch.sigmoid(real - fake.mean())  # D_Ra(x_r, x_f)
    d_ra_fake = torch.sigmoid(fake - real.mean())  # D_Ra(x_f, x_r)
    l_d = (-torch.log(d_ra_real).mean() - torch.log(1 - d_ra_fake).mean()) / 2
    l_g = (-torch.log(1 - d_ra_real).mean() - torch.log(d_ra_fake).mean()) / 2
    assert float(es_train.discriminator_loss(real, fake)) == pytest.approx(float(l_d), rel=1e-6)
    assert float(es_train.generator_adversarial_loss(real, fake)) == pytest.approx(float(l_g), rel=1e-6)
    # relativistic: shifting every logit by the same amount changes nothing (a standard GAN loss would change)
    assert float(es_train.discriminator_loss(real + 3, fake + 3)) == pytest.approx(float(l_d), rel=1e-6)


def test_paper_schedules_and_defaults():
    psnr = es_train.parse_opt([])
    assert (psnr.lr, psnr.iters, psnr.batch_size, psnr.hr_size, psnr.nb) == (2e-4, 1_000_000, 16, 128, 23)
    assert es_train.milestones(psnr) == [200_000, 400_000, 600_000, 800_000]
    gan = es_train.parse_opt(["--stage", "gan", "--init", "x.pt"])
    assert (gan.lr, gan.adv_weight, gan.l1_weight, gan.percep_weight) == (1e-4, 5e-3, 1e-2, 1.0)
    assert es_train.milestones(gan) == [50_000, 100_000, 200_000, 300_000]


def test_psnr_stage_writes_g_only_with_its_stage(psnr_run):
    payload = load_file(psnr_run / "checkpoints/last.pt")
    assert payload["step"] == 3 and set(payload["models"]) == {"G"} and payload["options"]["stage"] == "psnr"
    assert (psnr_run / "samples/samples_0000003.png").is_file()
    evaluation = json.loads((psnr_run / "metrics.jsonl").read_text().splitlines()[0])  # --eval-every 3
    bicubic = float(evaluation["pairs"].split("bicubic ")[1].split(" dB")[0])
    assert evaluation["step"] == 3 and 0 < evaluation["psnr"] < bicubic and 0 < evaluation["ssim"] < 1


def same_weights_and_moments(a, b):
    pa, pb = load_file(a), load_file(b)
    for net in pa["models"]:
        for key, value in pa["models"][net].items():
            assert torch.equal(value, pb["models"][net][key]), f"{net}.{key} differs after resume"
        for va, vb in zip(pa["optimizers"][net]["state"].values(), pb["optimizers"][net]["state"].values()):
            assert torch.equal(va["exp_avg"], vb["exp_avg"])
    return pa


def test_psnr_stage_resumes_exactly_across_a_halving(tmp_path, monkeypatch):
    monkeypatch.setattr(es_train, "PSNR_HALVING_EVERY", 2)  # 2e-4 for steps 1-2, 1e-4 for 3-4
    common = TINY + ["--hr-size", "16", "--seed", "5", "--iters", "4"]
    es_train.main(es_train.parse_opt(common + ["--out", str(tmp_path / "a")]))
    es_train.main(es_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    es_train.main(es_train.parse_opt(common + ["--out", str(tmp_path / "b"), "--resume", "auto"]))
    payload = same_weights_and_moments(tmp_path / "a/checkpoints/last.pt", tmp_path / "b/checkpoints/last.pt")
    assert payload["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    es_train.main(es_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "c")]))
    other = load_file(tmp_path / "c/checkpoints/last.pt")["models"]["G"]
    assert not torch.equal(payload["models"]["G"]["conv_first.weight"], other["conv_first.weight"])  # can fail


def test_gan_stage_starts_from_psnr_and_resumes_exactly_across_a_halving(psnr_run, random_vgg, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr(es_train, "GAN_MILESTONES", (2,))  # 1e-4 for steps 1-2, 5e-5 for 3-4
    init = psnr_run / "checkpoints/last.pt"
    common = TINY + ["--stage", "gan", "--init", str(init), "--vgg-weights", str(random_vgg), "--iters", "4",
                     "--seed", "6"]
    es_train.main(es_train.parse_opt(common + ["--max-steps", "1", "--out", str(tmp_path / "one")]))
    start = load_file(init)["models"]["G"]["conv_first.weight"]
    after = load_file(tmp_path / "one/checkpoints/last.pt")["models"]["G"]["conv_first.weight"]
    assert not torch.equal(start, after) and torch.allclose(start, after, atol=2e-4)  # one Adam step from it
    es_train.main(es_train.parse_opt(common + ["--out", str(tmp_path / "a")]))
    es_train.main(es_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    es_train.main(es_train.parse_opt(common + ["--out", str(tmp_path / "b"), "--resume", "auto"]))
    payload = same_weights_and_moments(tmp_path / "a/checkpoints/last.pt", tmp_path / "b/checkpoints/last.pt")
    assert set(payload["models"]) == {"G", "D"} and payload["options"]["stage"] == "gan"
    for net in ("G", "D"):
        assert payload["optimizers"][net]["param_groups"][0]["lr"] == pytest.approx(5e-5)


def test_gan_stage_rules_are_one_line_each(psnr_run, tmp_path, monkeypatch, capsys):
    for args, needle in ((["--stage", "gan", "--out", str(tmp_path / "x")], "--init PATH"),
                         (["--stage", "gan", "--init", "x.pt", "--hr-size", "96"], "--hr-size 128")):
        with pytest.raises(SystemExit) as stop:
            es_train.parse_opt(TINY + args)
        assert stop.value.code == 2 and needle in capsys.readouterr().err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    proc = run_script("esrgan", "train", *TINY, "--stage", "gan", "--init", psnr_run / "checkpoints/last.pt",
                      "--out", tmp_path / "novgg")
    assert_one_line_error(proc, "vgg19-dcbb9e9d.pth", "--vgg-weights PATH")
    assert not (tmp_path / "novgg").exists()  # stopped before anything was written


def test_init_accepts_released_psnr_weights_and_refuses_a_gan_stage(gan_run, random_vgg, tmp_path):
    torch.manual_seed(1)
    released = tmp_path / "RRDB_PSNR_x4.pth"
    torch.save(RRDBNet(nf=8, nb=1, gc=4).state_dict(), released)  # the official release is a plain state dict
    G = RRDBNet(nf=8, nb=1, gc=4)
    es_utils.load_init(G, str(released))
    assert all(torch.equal(v, torch.load(released, weights_only=True)[k]) for k, v in G.state_dict().items())
    opt = es_train.parse_opt(TINY + ["--stage", "gan", "--init", str(gan_run / "checkpoints/last.pt"),
                                     "--vgg-weights", str(random_vgg), "--out", str(tmp_path / "o")])
    with pytest.raises(CheckpointError, match="not a --stage psnr checkpoint of esrgan"):
        es_train.main(opt)
    torch.save(RRDBNet(nf=16, nb=1, gc=4).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(CheckpointError, match="wide.pth: G does not match this model .*shape"):
        es_utils.load_init(RRDBNet(nf=8, nb=1, gc=4), str(tmp_path / "wide.pth"))


def test_given_lr_hr_pairs_train(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "HR").mkdir(), (tmp_path / "LR").mkdir()
    for i in range(2):
        hr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(hr).save(tmp_path / f"HR/{i:04d}.png")
        Image.fromarray(es_data.bicubic_downsample(hr, 4)).save(tmp_path / f"LR/{i:04d}x4.png")
    out = tmp_path / "run"
    es_train.main(es_train.parse_opt(TINY + ["--hr-size", "32", "--data", str(tmp_path / "HR"), "--lr-dir",
                                             str(tmp_path / "LR"), "--max-steps", "2", "--out", str(out)]))
    assert load_file(out / "checkpoints/last.pt")["step"] == 2
    with pytest.raises(DataError, match="--lr-dir needs --data"):
        es_train.main(es_train.parse_opt(TINY + ["--lr-dir", str(tmp_path / "LR"), "--out", str(tmp_path / "x")]))


def test_evaluate_measures_models_and_interpolations_beside_bicubic(psnr_run, gan_run, tmp_path, capsys):
    """evaluate.py on a folder of HR images (--data; srgan's test measures the default held-out photos)."""
    rng = np.random.default_rng(1)
    (tmp_path / "HR").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (66, 75, 3), dtype=np.uint8)).save(tmp_path / f"HR/{i}.png")
    psnr_ckpt, gan_ckpt = psnr_run / "checkpoints/last.pt", gan_run / "checkpoints/last.pt"
    jsonl = tmp_path / "m.jsonl"
    es_evaluate.main(es_evaluate.parse_opt([
        "--checkpoint", str(psnr_ckpt), str(gan_ckpt), "--psnr-checkpoint", str(psnr_ckpt), "--gan-checkpoint",
        str(gan_ckpt), "--interp", "0", "1", "--data", str(tmp_path / "HR"), "--crops", str(tmp_path / "crops.png"),
        "--jsonl", str(jsonl), "--device", "cpu"]))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["what"] for r in records][-1] == "bicubic" and len(records) == 5
    assert {r["images"] for r in records} == {f"2 images of {tmp_path / 'HR'}"}
    by_stage = [r["psnr_y"] for r in records[:4]]
    assert by_stage[2] == pytest.approx(by_stage[0], abs=1e-4)  # alpha 0 is the PSNR model
    assert by_stage[3] == pytest.approx(by_stage[1], abs=1e-4)  # alpha 1 is the GAN model
    expected = []
    for i in range(2):  # the same figure computed by hand: HR cut to 64x72, its bicubic LR, bicubic back up
        hr = np.array(Image.open(tmp_path / f"HR/{i}.png"))[:64, :72]
        lr = torch.from_numpy(np.array(Image.fromarray(hr).resize((18, 16), Image.BICUBIC))).permute(2, 0, 1) / 255
        up = (torch.nn.functional.interpolate(lr[None].float(), scale_factor=4, mode="bicubic") * 2 - 1).clamp(-1, 1)
        expected.append(y_psnr_by_hand(up[0], torch.from_numpy(hr).permute(2, 0, 1) / 127.5 - 1, 4))
    assert records[-1]["psnr_y"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    width, height = Image.open(tmp_path / "crops.png").size
    assert width > 7 * 72 and height > 2 * 64  # 8 columns (LR, bicubic, four models, HR), 2 images
    with pytest.raises(SystemExit) as stop:
        es_evaluate.parse_opt(["--interp", "0.5", "--checkpoint", str(psnr_ckpt)])
    assert stop.value.code == 2 and "--psnr-checkpoint" in capsys.readouterr().err


def test_generate_interpolates_reads_released_weights_and_tiles_without_seams(psnr_run, gan_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).save(tmp_path / "in/odd.png")
    Image.fromarray(rng.integers(0, 256, (9, 7), dtype=np.uint8)).save(tmp_path / "in/grey.png")
    psnr_ckpt, gan_ckpt = psnr_run / "checkpoints/last.pt", gan_run / "checkpoints/last.pt"

    def generate(*args, out):
        es_generate.main(es_generate.parse_opt([*map(str, args), "--input", str(tmp_path / "in/odd.png"),
                                                "--out", str(out), "--device", "cpu"]))
        return np.asarray(Image.open(out)).astype(int)

    proc = run_script("esrgan", "generate", "--checkpoint", gan_ckpt, "--input", tmp_path / "in", "--out",
                      tmp_path / "folder", "--device", "cpu")
    assert proc.returncode == 0 and "1 of 2 images" in proc.stdout, proc.stderr
    assert Image.open(tmp_path / "folder/grey.png").size == (28, 36)
    gan = generate("--checkpoint", gan_ckpt, out=tmp_path / "gan.png")
    assert gan.shape == (180, 244, 3)
    interp = ["--psnr-checkpoint", psnr_ckpt, "--gan-checkpoint", gan_ckpt, "--interp"]
    assert np.array_equal(generate(*interp, "1", out=tmp_path / "a1.png"), gan)
    assert np.array_equal(generate(*interp, "0", out=tmp_path / "a0.png"),
                          generate("--checkpoint", psnr_ckpt, out=tmp_path / "psnr.png"))
    # a released-format state dict of the same G gives the same image
    torch.save(load_file(gan_ckpt)["models"]["G"], tmp_path / "released.pth")
    assert np.array_equal(generate("--checkpoint", tmp_path / "released.pth", out=tmp_path / "rel.png"), gan)
    # one RRDB reaches about 18 LR pixels: 56-pixel tiles (3 x 4 of them) with 20 of overlap give the untiled image
    tiled = generate("--checkpoint", gan_ckpt, "--tile", "56", "--tile-overlap", "20", out=tmp_path / "tiled.png")
    assert np.abs(tiled - gan).max() <= 1  # 8-bit rounding at most
    with pytest.raises(SystemExit) as stop:
        es_generate.parse_opt([*map(str, interp), "1.5", "--input", str(tmp_path / "in")])
    assert stop.value.code == 2 and "[0, 1]" in capsys.readouterr().err
    Image.new("RGB", (4, 4)).save(tmp_path / "picture.png")
    (tmp_path / "picture.png").rename(tmp_path / "not_weights.pth")
    with pytest.raises(CheckpointError, match="not_weights.pth"):
        es_generate.main(es_generate.parse_opt(["--checkpoint", str(tmp_path / "not_weights.pth"),
                                                "--input", str(tmp_path / "in")]))


# ------------------------------------------------------------------ data (esrgan/dataset.py)
def test_bicubic_lr_of_hr_crops_both_in_unit_range_and_keyed():
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: a point-sampling resize would keep them black or white
    lr = es_data.bicubic_downsample(stripes, 4)
    assert lr.shape == (16, 16, 3) and 100 < lr.mean() < 155 and lr.std() < 20  # antialiased, as imresize
    with pytest.raises(ValueError, match="exactly"):
        es_data.bicubic_downsample(np.zeros((30, 32, 3), np.uint8), 4)
    assert es_data.modcrop(np.zeros((30, 33, 3)), 4).shape == (28, 32, 3)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8) for _ in range(3)]
    ds = es_data.HRCrops(images, hr_size=24, scale=4, length=5, seed=1)
    lr, hr = ds[(2, 0)]
    assert lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24)
    assert float(hr.min()) >= 0 and float(hr.max()) <= 1 and float(hr.max()) > 0.9  # HR in [0, 1], as officially
    hr_uint8 = (hr * 255).round().permute(1, 2, 0).byte().numpy()
    assert torch.equal(lr, es_data.to_unit_tensor(es_data.bicubic_downsample(hr_uint8, 4)))
    assert torch.equal(ds[(2, 0)][1], hr) and not torch.equal(ds[(2, 1)][1], hr)
    with pytest.raises(DataError, match="multiple of the scale"):
        es_data.HRCrops(images, hr_size=30, scale=4)
    with pytest.raises(DataError, match="smaller than the HR crop"):
        es_data.HRCrops(images, hr_size=64, scale=4)[(0, 0)]
    assert len(es_data.training_photos()) == 8  # the ten bundled photos minus the two held out
    for lr, hr in es_data.held_out_images(4, max_side=64):
        assert hr.shape[1:] == (4 * lr.shape[1], 4 * lr.shape[2]) and float(hr.min()) < 0  # the measure's [-1, 1]


def write_pair_folders(tmp_path, sizes, scale=4, suffix="x4"):
    """HR folder and LR folder (DIV2K naming) made from random HR images by bicubic_downsample."""
    rng = np.random.default_rng(3)
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    hr_dir.mkdir(), lr_dir.mkdir()
    for i, (h, w) in enumerate(sizes):
        hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(hr).save(hr_dir / f"{i:04d}.png")
        Image.fromarray(es_data.bicubic_downsample(es_data.modcrop(hr, scale), scale)).save(
            lr_dir / f"{i:04d}{suffix}.png")
    return hr_dir, lr_dir


def test_paired_crops_keep_lr_and_hr_aligned_through_flips_and_rotations(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, [(50, 70), (64, 66)])  # 50x70 and 64x66: modcrop cuts HR
    ds = es_data.PairedCrops(es_data.paired_files(hr_dir, lr_dir, 4), hr_size=24, scale=4, length=4, seed=2)
    orientations = set()
    for epoch in range(10):
        lr, hr = ds[(epoch % 2, epoch)]
        assert lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24) and float(hr.min()) >= 0
        hr_uint8 = (hr * 255).round().permute(1, 2, 0).byte().numpy()
        # the given LR crop is the HR crop's own bicubic LR (up to the bicubic's edge pixels): same place, same
        # orientation; compare the interior, where PIL's border handling cannot differ
        made = es_data.to_unit_tensor(es_data.bicubic_downsample(hr_uint8, 4))
        assert (lr[:, 1:-1, 1:-1] - made[:, 1:-1, 1:-1]).abs().max() < 0.03, f"epoch {epoch}: LR and HR disagree"
        orientations.add(hr_uint8.tobytes())
    assert len(orientations) > 2
    assert torch.equal(ds[(1, 3)][0], ds[(1, 3)][0]) and not torch.equal(ds[(1, 3)][1], ds[(1, 4)][1])
    Image.new("RGB", (9, 10)).save(lr_dir / "0001x4.png")  # 9x10 is not 1/4 of 64x66
    with pytest.raises(DataError, match="is not 1/4 of"):
        es_data.PairedCrops(es_data.paired_files(hr_dir, lr_dir, 4), hr_size=16, scale=4)[(1, 0)]
    Image.new("RGB", (32, 32)).save(hr_dir / "0002.png")
    with pytest.raises(DataError, match="no LR image for 0002.png"):
        es_data.paired_files(hr_dir, lr_dir, 4)


# ------------------------------------------------------------------ measure, tiling, schedule (esrgan/utils.py)
def y_psnr_by_hand(output, target, border):
    """PSNR of BT.601 luma (MATLAB's rgb2ycbcr scale) on [0, 1] with `border` pixels cut, in float64."""
    def luma(x):
        x = ((x.double() + 1) / 2).clamp(0, 1)
        return (16 + 65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2])[border:-border, border:-border] / 255
    return float(10 * torch.log10(1 / ((luma(output) - luma(target)) ** 2).mean()))


def test_y_psnr_and_ssim_by_hand():
    torch.manual_seed(0)
    target = torch.rand(3, 20, 24) * 2 - 1
    output = (target + 0.1 * torch.randn_like(target)).clamp(-1, 1)
    assert es_utils.psnr_y(output, target, 4) == pytest.approx(y_psnr_by_hand(output, target, 4), abs=1e-4)
    assert float(es_utils.rgb_to_y(torch.ones(1, 3, 1, 1))) == pytest.approx(235 / 255)
    framed = target.clone()  # a difference only in the 4-pixel border is not measured
    framed[:, :4], framed[:, :, -4:] = -framed[:, :4], -framed[:, :, -4:]
    assert es_utils.ssim_y(framed, target, 4) == pytest.approx(1.0)
    assert es_utils.ssim_y(output, target, 4) < 0.99 and es_utils.ssim_y(framed, target, 2) < 0.99
    report = es_utils.y_report([output, framed], [target, target], 4)
    assert report["ssim_y"] == pytest.approx((es_utils.ssim_y(output, target, 4) + 1) / 2)


def test_tiled_upscaling_equals_the_untiled_one():
    """A small x2 net in [0, 1] (three 3x3 convolutions, then a sub-pixel step), through signed()
    as generate.py runs G: with an overlap of 4 the tiles leave no seam anywhere."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    image = torch.rand(3, 37, 53)
    whole = es_utils.upscale(es_utils.signed(net), image, "cpu")
    assert torch.allclose(whole, net(image.unsqueeze(0))[0] * 2 - 1)
    tiled = es_utils.upscale_tiled(es_utils.signed(net), image, "cpu", tile=16, overlap=4, scale=2)
    assert tiled.shape == whole.shape == (3, 74, 106)
    assert torch.allclose(tiled, whole, atol=1e-5)
    too_little = es_utils.upscale_tiled(es_utils.signed(net), image, "cpu", tile=16, overlap=1, scale=2)
    assert not torch.allclose(too_little, whole, atol=1e-3)  # the check can fail: a 1-pixel overlap shows seams
    with pytest.raises(UserError, match="larger than twice"):
        es_utils.upscale_tiled(net, image, "cpu", tile=8, overlap=4, scale=2)


@pytest.mark.parametrize("stage", ["psnr", "gan"])
def test_lr_schedule_is_the_papers_rule_at_every_step_and_across_a_resume(stage, monkeypatch):
    """Sec. 4.1's halvings, as train.py builds them and TrainLoop brings them to each step:
    the rate of (1-based) step s is exactly lr * 0.5 ** (number of milestones m with s > m),
    before and after a resume at any step (the paper's milestones, scaled down 10^4 times)."""
    monkeypatch.setattr(es_train, "PSNR_HALVING_EVERY", 20)
    monkeypatch.setattr(es_train, "GAN_MILESTONES", (5, 10, 20, 30))
    opt = es_train.parse_opt(["--stage", stage, "--iters", "100"] + (["--init", "x.pt"] if stage == "gan" else []))
    milestones = es_train.milestones(opt)
    assert milestones == ([20, 40, 60, 80] if stage == "psnr" else [5, 10, 20, 30])

    def schedule():
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=opt.lr)
        return optimizer, MultiStepLR(optimizer, milestones, gamma=es_train.LR_HALVING)

    for resume_every_step in (False, True):
        optimizer, sched = schedule()
        for step in range(1, opt.iters + 1):
            advance_schedules([sched], step - 1)  # what TrainLoop does before the step
            expected = opt.lr * 0.5 ** sum(step > m for m in milestones)
            assert optimizer.param_groups[0]["lr"] == expected, (step, resume_every_step)
            optimizer.step()  # the step (no gradients here: nothing moves)
            if resume_every_step:  # a run stopped here and resumed from its checkpoint's states
                saved_opt, saved_sched = optimizer.state_dict(), sched.state_dict()
                optimizer, sched = schedule()
                optimizer.load_state_dict(saved_opt), sched.load_state_dict(saved_sched)
        assert optimizer.param_groups[0]["lr"] == opt.lr / 16  # the check can fail: four halvings happened
