"""ESRGAN's two stages: the PSNR-oriented RRDBNet (L1), then ESRGAN from it (perceptual + RaGAN +
L1); losses by hand, exact resume in both stages across their lr halvings, the VGG and --init
rules, released weights, network interpolation, evaluation beside bicubic, tiled generation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from common.checkpoint import load_file
from esrgan import train as es_train
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
    es_train.main(es_train.parse_opt(TINY + ["--hr-size", "32", "--max-steps", "3", "--out", str(out)]))
    return out


@pytest.fixture(scope="module")
def gan_run(psnr_run, random_vgg, tmp_path_factory):
    out = tmp_path_factory.mktemp("esrgan") / "gan"
    es_train.main(es_train.parse_opt(TINY + ["--stage", "gan", "--init", str(psnr_run / "checkpoints/last.pt"),
                                             "--vgg-weights", str(random_vgg), "--max-steps", "2", "--out", str(out)]))
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


def test_gan_stage_rules_are_one_line_each(psnr_run, tmp_path, monkeypatch):
    proc = run_script("esrgan", "train", *TINY, "--stage", "gan", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "--init PATH" in proc.stderr
    proc = run_script("esrgan", "train", *TINY, "--stage", "gan", "--init", "x.pt", "--hr-size", "96")
    assert proc.returncode == 2 and "--hr-size 128" in proc.stderr
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    proc = run_script("esrgan", "train", *TINY, "--stage", "gan", "--init", psnr_run / "checkpoints/last.pt",
                      "--out", tmp_path / "novgg")
    assert_one_line_error(proc, "vgg19-dcbb9e9d.pth", "--vgg-weights PATH")
    assert not (tmp_path / "novgg").exists()  # stopped before anything was written


def test_init_accepts_released_psnr_weights_and_refuses_a_gan_stage(gan_run, random_vgg, tmp_path):
    torch.manual_seed(1)
    released = tmp_path / "RRDB_PSNR_x4.pth"
    torch.save(RRDBNet(nf=8, nb=1, gc=4).state_dict(), released)  # the official release is a plain state dict
    out = tmp_path / "from_released"
    es_train.main(es_train.parse_opt(TINY + ["--stage", "gan", "--init", str(released), "--vgg-weights",
                                             str(random_vgg), "--max-steps", "1", "--out", str(out)]))
    g = load_file(out / "checkpoints/last.pt")["models"]["G"]["conv_first.weight"]
    assert torch.allclose(g, torch.load(released, weights_only=True)["conv_first.weight"], atol=2e-4)
    proc = run_script("esrgan", "train", *TINY, "--stage", "gan", "--init", gan_run / "checkpoints/last.pt",
                      "--vgg-weights", random_vgg, "--out", tmp_path / "o")
    assert_one_line_error(proc, "not a --stage psnr checkpoint of esrgan")
    torch.save(RRDBNet(nf=16, nb=1, gc=4).state_dict(), tmp_path / "wide.pth")
    proc = run_script("esrgan", "train", *TINY, "--stage", "gan", "--init", tmp_path / "wide.pth",
                      "--vgg-weights", random_vgg, "--out", tmp_path / "w")
    assert_one_line_error(proc, "shape")


def test_given_lr_hr_pairs_train(tmp_path):
    from common import superres

    rng = np.random.default_rng(0)
    (tmp_path / "HR").mkdir(), (tmp_path / "LR").mkdir()
    for i in range(2):
        hr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(hr).save(tmp_path / f"HR/{i:04d}.png")
        Image.fromarray(superres.bicubic_downsample(hr, 4)).save(tmp_path / f"LR/{i:04d}x4.png")
    out = tmp_path / "run"
    es_train.main(es_train.parse_opt(TINY + ["--hr-size", "32", "--data", str(tmp_path / "HR"), "--lr-dir",
                                             str(tmp_path / "LR"), "--max-steps", "2", "--out", str(out)]))
    assert load_file(out / "checkpoints/last.pt")["step"] == 2
    proc = run_script("esrgan", "train", *TINY, "--lr-dir", tmp_path / "LR", "--out", tmp_path / "x")
    assert_one_line_error(proc, "--lr-dir needs --data")


def test_evaluate_measures_models_and_interpolations_beside_bicubic(psnr_run, gan_run, tmp_path):
    from common import metrics, superres

    psnr_ckpt, gan_ckpt = psnr_run / "checkpoints/last.pt", gan_run / "checkpoints/last.pt"
    jsonl = tmp_path / "m.jsonl"
    proc = run_script("esrgan", "evaluate", "--checkpoint", psnr_ckpt, gan_ckpt, "--psnr-checkpoint", psnr_ckpt,
                      "--gan-checkpoint", gan_ckpt, "--interp", "0", "1", "--crops", tmp_path / "crops.png",
                      "--jsonl", jsonl, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["what"] for r in records][-1] == "bicubic" and len(records) == 5
    by_stage = [r["psnr_y"] for r in records[:4]]
    assert by_stage[2] == pytest.approx(by_stage[0], abs=1e-4)  # alpha 0 is the PSNR model
    assert by_stage[3] == pytest.approx(by_stage[1], abs=1e-4)  # alpha 1 is the GAN model
    expected = []
    for lr, hr in superres.held_out_images(4):
        up = (superres.bicubic_upsample(lr.unsqueeze(0), 4) * 2 - 1).clamp(-1, 1)
        expected.append(metrics.psnr(up, hr.unsqueeze(0), y_channel=True, crop_border=4))
    assert records[-1]["psnr_y"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    width, height = Image.open(tmp_path / "crops.png").size
    assert width > 7 * 96 and height > 2 * 96  # 8 columns (LR, bicubic, four models, HR), 2 photos
    proc = run_script("esrgan", "evaluate", "--interp", "0.5", "--checkpoint", psnr_ckpt)
    assert proc.returncode == 2 and "--psnr-checkpoint" in proc.stderr


def test_generate_interpolates_reads_released_weights_and_tiles_without_seams(psnr_run, gan_run, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).save(tmp_path / "in/odd.png")
    Image.fromarray(rng.integers(0, 256, (9, 7), dtype=np.uint8)).save(tmp_path / "in/grey.png")
    psnr_ckpt, gan_ckpt = psnr_run / "checkpoints/last.pt", gan_run / "checkpoints/last.pt"

    def generate(*args, out):
        proc = run_script("esrgan", "generate", *args, "--input", tmp_path / "in/odd.png", "--out", out,
                          "--device", "cpu")
        assert proc.returncode == 0, proc.stderr
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
    # one RRDB reaches about 18 LR pixels: 44-pixel tiles with 20 of overlap give the untiled image
    tiled = generate("--checkpoint", gan_ckpt, "--tile", "44", "--tile-overlap", "20", out=tmp_path / "tiled.png")
    assert np.abs(tiled - gan).max() <= 1  # 8-bit rounding at most
    proc = run_script("esrgan", "generate", *interp, "1.5", "--input", tmp_path / "in")
    assert proc.returncode == 2 and "[0, 1]" in proc.stderr
    Image.new("RGB", (4, 4)).save(tmp_path / "picture.png")
    (tmp_path / "picture.png").rename(tmp_path / "not_weights.pth")
    proc = run_script("esrgan", "generate", "--checkpoint", tmp_path / "not_weights.pth", "--input", tmp_path / "in")
    assert_one_line_error(proc, "not_weights.pth")
