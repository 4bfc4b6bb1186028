"""DCGAN: architecture against the paper, one step, end to end, resume, generate, bad input."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn

from common.checkpoint import load_file
from common.device import Precision
from common.errors import NonFiniteLossError
from dcgan import generate as dcgan_generate
from dcgan import train as dcgan_train
from dcgan.model import Discriminator, Generator, init_weights
from dcgan.utils import interpolate_z, sample_z
from tests.helpers import ROOT, assert_one_line_error, in_process, run_script

TINY = ["--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--precision", "fp32",
        "--device", "cpu", "--log-every", "1"]


# ------------------------------------------------------------- architecture
def expected_generator_params(nz: int, ngf: int, c: int, size: int) -> int:
    """Count from the paper's layer table: 4x4 kernels, BN (2 params/channel) after every
    hidden layer, no bias before BN, a bias on the output layer."""
    n = int(math.log2(size // 4))
    widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 1024, 512, 256, 128
    total = nz * widths[0] * 16 + 2 * widths[0]
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + 2 * w_out
    return total + widths[-1] * c * 16 + c


def expected_discriminator_params(ndf: int, c: int, size: int) -> int:
    n = int(math.log2(size // 4))
    widths = [ndf * 2 ** i for i in range(n)]  # e.g. 128, 256, 512, 1024
    total = c * widths[0] * 16 + widths[0]  # input layer: bias, no BN
    for w_in, w_out in zip(widths, widths[1:]):
        total += w_in * w_out * 16 + 2 * w_out
    return total + widths[-1] * 16 + 1  # 4x4 conv to one logit, with bias


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_generator_is_12_65M_and_half_width_matches_pytorch_example():
    G = Generator(nz=100, ngf=128, channels=3, image_size=64)
    assert n_params(G) == expected_generator_params(100, 128, 3, 64)
    assert abs(n_params(G) / 1e6 - 12.65) < 0.01  # the "about 12.65M"
    G_half = Generator(nz=100, ngf=64, channels=3, image_size=64)
    D_half = Discriminator(ndf=64, channels=3, image_size=64)
    assert round(n_params(G_half) / 1e6, 2) == 3.58
    assert round(n_params(D_half) / 1e6, 2) == 2.77
    for c, size in [(1, 64), (3, 32), (1, 32)]:
        assert n_params(Generator(100, 128, c, size)) == expected_generator_params(100, 128, c, size)
        assert n_params(Discriminator(128, c, size)) == expected_discriminator_params(128, c, size)


def feature_shapes(model: nn.Module, x: torch.Tensor, kind) -> list[tuple]:
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.modules() if isinstance(m, kind)]
    model(x)
    for h in hooks:
        h.remove()
    return shapes


def test_generator_layer_shapes_follow_figure_1():
    G = Generator(100, 128, 3, 64).eval()
    shapes = feature_shapes(G, torch.rand(2, 100) * 2 - 1, nn.ConvTranspose2d)
    assert shapes == [(1024, 4, 4), (512, 8, 8), (256, 16, 16), (128, 32, 32), (3, 64, 64)]
    G32 = Generator(100, 128, 1, 32).eval()
    assert feature_shapes(G32, torch.zeros(2, 100), nn.ConvTranspose2d) == [
        (512, 4, 4), (256, 8, 8), (128, 16, 16), (1, 32, 32)]


def test_discriminator_layer_shapes_and_one_logit():
    D = Discriminator(128, 3, 64).eval()
    x = torch.randn(2, 3, 64, 64)
    assert feature_shapes(D, x, nn.Conv2d) == [(128, 32, 32), (256, 16, 16), (512, 8, 8), (1024, 4, 4), (1, 1, 1)]
    assert D(x).shape == (2,)


def test_batchnorm_placement_and_activations_follow_section_3():
    G, D = Generator(100, 32, 3, 64), Discriminator(32, 3, 64)
    g_layers, d_layers = list(G.main), list(D.main)
    # G: every transposed conv but the last is followed by BatchNorm + ReLU; the output is Tanh
    for i, layer in enumerate(g_layers[:-2]):
        if isinstance(layer, nn.ConvTranspose2d):
            assert isinstance(g_layers[i + 1], nn.BatchNorm2d) and isinstance(g_layers[i + 2], nn.ReLU)
    assert isinstance(g_layers[-2], nn.ConvTranspose2d) and isinstance(g_layers[-1], nn.Tanh)
    # D: no BatchNorm on the input layer, LeakyReLU(0.2) everywhere, no pooling, no Linear
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, nn.LeakyReLU))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Linear)) for m in [*G.modules(), *D.modules()])


def test_output_is_really_64x64_in_tanh_range():
    G = Generator(100, 16, 3, 64)
    out = G(sample_z(4, 100))
    assert out.shape == (4, 3, 64, 64)
    assert out.abs().max() <= 1.0


def test_init_follows_section_4():
    torch.manual_seed(0)
    G = Generator(100, 64, 3, 64)
    G.apply(init_weights)
    conv_w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    bn_w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(conv_w.mean()) < 1e-3 and abs(conv_w.std() - 0.02) < 1e-3
    assert abs(bn_w.mean() - 1.0) < 5e-3 and abs(bn_w.std() - 0.02) < 5e-3
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in G.modules()
               if isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d)) and m.bias is not None)


def test_bad_image_size_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        Generator(100, 8, 1, 48)


def test_uniform_prior_and_straight_line_interpolation():
    z = sample_z(1000, 100, "uniform", generator=torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and abs(float(z.mean())) < 0.02
    a, b = torch.zeros(3), torch.ones(3)
    path = interpolate_z(a, b, 5)
    torch.testing.assert_close(path[:, 0], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))


# ---------------------------------------------------------------- one step
def test_one_training_step_updates_both_networks_with_finite_losses():
    torch.manual_seed(0)
    G, D = Generator(100, 8, 1, 16), Discriminator(8, 1, 16)
    G.apply(init_weights)
    D.apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    losses = dcgan_train.train_step(G, D, opt_g, opt_d, torch.rand(8, 1, 16, 16) * 2 - 1, sample_z(8, 100),
                                    Precision("fp32", torch.device("cpu")))
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    assert all(p.requires_grad for p in D.parameters())  # the G step gives D back its gradients


def test_losses_match_the_gan_objective():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    expected_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    torch.testing.assert_close(dcgan_train.discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(dcgan_train.generator_loss(fake), -torch.log(sig(fake)).mean())


# -------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dcgan") / "run"
    proc = run_script("dcgan", "train", *TINY, "--max-steps", "3", "--sample-every", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_script_writes_checkpoint_grid_events_and_options(tiny_run):
    out, proc = tiny_run
    assert str(out.resolve()) in proc.stdout  # the run directory is printed
    payload = load_file(out / "checkpoints" / "last.pt")
    assert payload["step"] == 3 and payload["model_name"] == "dcgan"
    assert set(payload["models"]) == {"G", "D"} and set(payload["optimizers"]) == {"G", "D"}
    assert {"torch", "numpy", "python"} <= set(payload["rng"][0]) and "scaler" in payload
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in payload["models"]["G"])
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["samples_0000002.png", "samples_0000003.png"]
    assert list(out.glob("events.out.tfevents.*"))
    options = json.loads((out / "options.json").read_text())
    assert options["ngf"] == 8 and options["channels"] == 1 and options["image_size"] == 16


def test_tensorboard_events_hold_losses_and_images(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tiny_run[0]))
    acc.Reload()
    assert {"train/loss_d", "train/loss_g"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("train/loss_d")] == [1, 2, 3]
    assert "samples" in acc.Tags()["images"]


def test_generate_grid_individual_and_interpolation(tiny_run, tmp_path):
    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    proc = run_script("dcgan", "generate", "--checkpoint", ckpt, "--n", "9", "--out", tmp_path / "g.png",
                      "--individual", tmp_path / "each", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size == (3 * 18 + 2, 3 * 18 + 2)  # 3x3 grid of 16px + 2px padding
    assert len(list((tmp_path / "each").glob("*.png"))) == 9
    dcgan_generate.main(dcgan_generate.parse_opt(["--checkpoint", str(ckpt), "--interpolate", "--rows", "2",
                                                  "--steps", "5", "--out", str(tmp_path / "walk.png"),
                                                  "--device", "cpu"]))
    assert Image.open(tmp_path / "walk.png").size == (5 * 18 + 2, 2 * 18 + 2)


def test_generate_is_deterministic_and_batch_independent(tiny_run):
    G, _ = dcgan_generate.load_generator(tiny_run[0] / "checkpoints" / "last.pt", torch.device("cpu"))
    z = sample_z(6, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(G(z)[:2], G(z[:2]))  # eval mode: no batch statistics


def weights(path):
    payload = load_file(path)
    return payload["models"], payload["optimizers"]


def test_resume_is_exact(tmp_path):
    """4 steps in one run == 2 steps, stop, resume, 2 more: same weights bit for bit."""
    common = TINY + ["--seed", "3", "--sample-every", "100", "--save-every", "100"]
    dcgan_train.main(dcgan_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "a")]))
    dcgan_train.main(dcgan_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    dcgan_train.main(dcgan_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "b"),
                                                     "--resume", "auto"]))
    (ma, oa), (mb, ob) = weights(tmp_path / "a/checkpoints/last.pt"), weights(tmp_path / "b/checkpoints/last.pt")
    for net in ("G", "D"):
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
        for (ka, va), (kb, vb) in zip(oa[net]["state"].items(), ob[net]["state"].items()):
            assert torch.equal(va["exp_avg"], vb["exp_avg"]) and torch.equal(va["exp_avg_sq"], vb["exp_avg_sq"])
    # and a 3-step run is not equal (the comparison can fail)
    dcgan_train.main(dcgan_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "c")]))
    mc, _ = weights(tmp_path / "c/checkpoints/last.pt")
    assert not torch.equal(ma["G"]["main.0.weight"], mc["G"]["main.0.weight"])


def test_ema_is_saved_and_used_for_generation(tmp_path):
    out = tmp_path / "ema"
    dcgan_train.main(dcgan_train.parse_opt(TINY + ["--max-steps", "2", "--ema-decay", "0.9", "--out", str(out)]))
    payload = load_file(out / "checkpoints/last.pt")
    assert "ema" in payload
    ema_w, live_w = payload["ema"]["module"]["main.0.weight"], payload["models"]["G"]["main.0.weight"]
    assert not torch.equal(ema_w, live_w)
    G, _ = dcgan_generate.load_generator(out / "checkpoints/last.pt", torch.device("cpu"))
    assert torch.equal(G.state_dict()["main.0.weight"], ema_w)


# ------------------------------------------------------------- measurement
def test_evaluate_prints_and_appends_json_lines_naming_the_features(tiny_run):
    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    proc = run_script("dcgan", "evaluate", "--checkpoint", ckpt, "--n", "64", "--real", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "generated (step 3): FID" in proc.stdout and "real A vs B: FID" in proc.stdout
    records = [json.loads(line) for line in (tiny_run[0] / "metrics.jsonl").read_text().splitlines()]
    generated, real = records[-2:]
    assert generated["what"] == "generated" and real["what"] == "real A vs B"
    assert generated["step"] == 3 and generated["model"] == "dcgan" and generated["n"] == 64
    assert all(r["features"].startswith("offline digit features") for r in (generated, real))
    assert real["fid"] < generated["fid"]  # three steps of training are far from the data
    assert list(generated["swd_levels"]) == ["16"]  # JSON keys are strings


def test_evaluate_with_inception_offline_names_the_missing_file(tiny_run, tmp_path, monkeypatch):
    from common.metrics import INCEPTION_FILE

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    proc = run_script("dcgan", "evaluate", "--checkpoint", tiny_run[0] / "checkpoints" / "last.pt",
                      "--features", "inception", "--n", "16", "--device", "cpu")
    assert_one_line_error(proc, INCEPTION_FILE, "--features offline")


def test_eval_every_logs_metrics_and_leaves_training_unchanged(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    common = TINY + ["--seed", "2", "--max-steps", "4", "--sample-every", "100", "--save-every", "100"]
    dcgan_train.main(dcgan_train.parse_opt(common + ["--out", str(tmp_path / "plain")]))
    dcgan_train.main(dcgan_train.parse_opt(common + ["--out", str(tmp_path / "eval"), "--eval-every", "3",
                                                     "--eval-n", "64"]))
    plain, evaluated = weights(tmp_path / "plain/checkpoints/last.pt"), weights(tmp_path / "eval/checkpoints/last.pt")
    for key, value in plain[0]["G"].items():
        assert torch.equal(value, evaluated[0]["G"][key]), f"evaluation changed training: G.{key}"
    records = [json.loads(line) for line in (tmp_path / "eval/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 4]  # every 3 steps, and once at the end
    acc = EventAccumulator(str(tmp_path / "eval"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("eval_offline/fid")] == [3, 4]
    assert not (tmp_path / "plain/metrics.jsonl").exists()


def test_max_minutes_stops_early_and_saves(tmp_path):
    out = tmp_path / "budget"
    dcgan_train.main(dcgan_train.parse_opt(TINY + ["--max-steps", "50", "--max-minutes", "1e-6", "--out", str(out)]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 1  # the budget is checked after each step
    assert (out / "samples/samples_0000001.png").is_file()


# ----------------------------------------------------------- safety nets
def test_non_finite_loss_stops_naming_step_and_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss, calls = dcgan_train.generator_loss, {"n": 0}

    def poisoned(logits):
        calls["n"] += 1
        loss = real_loss(logits)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(dcgan_train, "generator_loss", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*last.pt"):
        dcgan_train.main(dcgan_train.parse_opt(TINY + ["--max-steps", "5", "--save-every", "2", "--out", str(out)]))
    assert load_file(out / "checkpoints/last.pt")["step"] == 2  # nothing saved after the NaN


def test_out_of_memory_prints_a_hint(tmp_path, monkeypatch, capsys):
    from common.errors import run_main

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(dcgan_train, "train_step", oom)
    with pytest.raises(SystemExit) as exc:
        run_main(lambda: dcgan_train.main(dcgan_train.parse_opt(TINY + ["--out", str(tmp_path / "oom")])))
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "--batch-size" in err and "Traceback" not in err


def test_help_names_the_paper_defaults():
    proc = run_script("dcgan", "train", "--help")
    assert proc.returncode == 0
    for text in ("default 128, Sec. 4", "default 2e-4", "default 0.5", "--max-steps", "--resume", "--precision"):
        assert text in " ".join(proc.stdout.split()), text


def test_runs_as_a_module_from_the_root(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dcgan.train", *TINY, "--max-steps", "1", "--out",
                           str(tmp_path / "m")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m/checkpoints/last.pt").is_file()


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "not_image"])
def test_bad_data_gives_one_clear_line(tmp_path, case):
    folder = tmp_path / case
    if case != "missing":
        folder.mkdir()
    if case in ("corrupt", "not_image"):
        from PIL import Image

        Image.new("RGB", (20, 20), (10, 200, 30)).save(folder / "good.png")
    if case == "corrupt":
        (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg" * 10)
    if case == "not_image":
        (folder / "notes.txt").write_text("hello")
    needle = {"missing": "no such file", "empty": "empty", "corrupt": "broken.jpg", "not_image": "notes.txt"}[case]
    proc = run_script("dcgan", "train", *TINY, "--data", folder, "--out", tmp_path / "out")
    assert_one_line_error(proc, needle)


def test_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    from simple_gan import train as simple_train

    simple = simple_train.main(simple_train.parse_opt(["--max-steps", "1", "--batch-size", "8", "--device", "cpu",
                                                       "--out", str(tmp_path / "simple")]))
    ckpt = str(simple / "checkpoints/last.pt")
    generate = dcgan_generate.parse_opt(["--checkpoint", ckpt, "--out", str(tmp_path / "x.png")])
    assert_one_line_error(in_process(capsys, lambda: dcgan_generate.main(generate)), "simple_gan")
    train = dcgan_train.parse_opt(TINY + ["--resume", ckpt, "--out", str(tmp_path / "y")])
    assert_one_line_error(in_process(capsys, lambda: dcgan_train.main(train)), "simple_gan")


def test_checkpoint_of_another_shape_names_the_option(tiny_run, tmp_path):
    ckpt = tiny_run[0] / "checkpoints/last.pt"
    proc = run_script("dcgan", "train", *[a if a != "8" else "16" for a in TINY], "--resume", ckpt,
                      "--out", tmp_path / "z")
    assert_one_line_error(proc, "ngf=8 in checkpoint, 16 now")


def test_three_channel_photos_train_and_generate(tmp_path):
    """The embedded photos (3 channels) go through the same code path as CIFAR-10 / CelebA."""
    out = dcgan_train.main(dcgan_train.parse_opt(TINY + ["--data", "photos", "--max-steps", "1",
                                                         "--out", str(tmp_path / "rgb")]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["options"]["channels"] == 3
    g_state = payload["models"]["G"]
    output_layer = [k for k in g_state if k.endswith("weight")][-1]
    assert g_state[output_layer].shape[1] == 3  # the output layer makes 3 channels
    G, _ = dcgan_generate.load_generator(out / "checkpoints/last.pt", torch.device("cpu"))
    assert G(sample_z(2, 100)).shape == (2, 3, 16, 16)
    # and they are measured with the conv-statistics features (the digit head means nothing on photos)
    from dcgan import evaluate as dcgan_evaluate

    records = dcgan_evaluate.main(dcgan_evaluate.parse_opt(["--checkpoint", str(out / "checkpoints/last.pt"),
                                                            "--n", "32", "--device", "cpu"]))
    assert records[0]["features"].startswith("offline conv-statistics") and "is" not in records[0]
    assert records[0]["n"] == 32 and records[0]["fid"] > 0
