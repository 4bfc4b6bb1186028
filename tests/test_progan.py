"""ProGAN training: the losses by hand, the growth schedule, the reals at a stage, one step of
each network, train.py end to end through every phase, exact resume mid-fade, generate.py,
evaluate.py, and the one-line errors."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from common.checkpoint import load_file
from common.device import Precision
from common.errors import DataError
from progan import train as pg_train
from progan.dataset import ImageStream
from progan.model import Discriminator, Generator
from progan.utils import growth_schedule, paper_batch_size, reals_at_stage, stage_at, total_steps
from tests.helpers import assert_one_line_error, run_script

CPU = torch.device("cpu")
FP32 = Precision("fp32", CPU)
# 4x4 -> 16x16 at toy widths: 5 phases (4; 8 fade, 8; 16 fade, 16) of 8 images, batch 4 -> 2 steps each
TINY = ["--max-resolution", "16", "--phase-images", "8", "--batch-size", "4", "--nz", "16", "--fmap-base", "64",
        "--fmap-max", "32", "--precision", "fp32", "--device", "cpu", "--log-every", "1"]


# ------------------------------------------------------------------ the losses
def test_discriminator_loss_by_hand():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    loss = pg_train.discriminator_loss(real, fake, torch.tensor(0.5), lambda_gp=10.0, drift=1e-3)
    # E[D(G(z))] - E[D(x)] + 10 * 0.5 + 0.001 * E[D(x)^2] = -0.5 - 2 + 5 + 0.001 * 5
    assert float(loss) == pytest.approx(-0.5 - 2.0 + 5.0 + 0.005)
    assert float(pg_train.generator_loss(fake)) == pytest.approx(0.5)


def test_defaults_are_the_papers():
    opt = pg_train.parse_opt(["--data", "/some/folder"])
    assert (opt.lr, opt.beta1, opt.beta2, opt.adam_eps) == (1e-3, 0.0, 0.99, 1e-8)
    assert (opt.lambda_gp, opt.drift, opt.ema_decay, opt.nz, opt.mbstd_group) == (10.0, 1e-3, 0.999, 512, 4)
    assert (opt.phase_images, opt.max_resolution, opt.fmap_base, opt.fmap_max) == (800_000, 1024, 8192, 512)
    assert [paper_batch_size(r) for r in (4, 128, 256, 512, 1024)] == [16, 16, 14, 6, 3]
    assert pg_train.parse_opt([]).max_resolution == 64  # the embedded photos


# ---------------------------------------------------------------- the schedule
def test_growth_schedule_phases_alpha_and_images():
    phases = growth_schedule(16, 100, batch_size=lambda r: {4: 10, 8: 10, 16: 8}[r])
    assert [(p.resolution, p.fade, p.steps) for p in phases] == [
        (4, False, 10), (8, True, 10), (8, False, 10), (16, True, 13), (16, False, 13)]
    assert total_steps(phases) == 56
    s = stage_at(phases, 11)  # the first step of the 8x8 fade: alpha 0, the old network
    assert (s.phase.resolution, s.alpha, s.images_seen, s.new_phase) == (8, 0.0, 100, True)
    assert stage_at(phases, 16).alpha == pytest.approx(0.5)
    assert stage_at(phases, 20).alpha == pytest.approx(0.9)
    s = stage_at(phases, 21)
    assert (s.phase.resolution, s.phase.fade, s.alpha, s.new_phase) == (8, False, 1.0, True)
    assert stage_at(phases, 31).images_seen == 300 and stage_at(phases, 32).images_seen == 308
    with pytest.raises(ValueError):
        stage_at(phases, 57)
    # Table 1's baseline: the final resolution from the start, one phase
    flat = growth_schedule(16, 100, final_images=1000, batch_size=lambda r: 10, start_resolution=16)
    assert [(p.resolution, p.fade, p.steps) for p in flat] == [(16, False, 100)]
    # the paper: 800k per phase, 16 per batch up to 128, then 14 / 6 / 3
    paper = growth_schedule(1024, 800_000)
    assert len(paper) == 17 and paper[-1].batch_size == 3 and paper[-1].steps == 266_667


def test_reals_at_stage():
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(reals_at_stage(x, 8, 1.0), F.avg_pool2d(x, 2))
    coarse = F.interpolate(F.avg_pool2d(x, 4), scale_factor=2, mode="nearest")
    assert torch.allclose(reals_at_stage(x, 8, 0.0), coarse, atol=1e-6)
    assert torch.allclose(reals_at_stage(x, 8, 0.5), 0.5 * coarse + 0.5 * F.avg_pool2d(x, 2), atol=1e-6)
    assert torch.equal(reals_at_stage(x, 16, 1.0), x)


def test_image_stream_is_addressed_by_position():
    data = [(torch.full((1,), float(i)), 0) for i in range(5)]
    stream = ImageStream(data, seed=1)
    whole = stream.batch(0, 12).flatten().tolist()
    assert sorted(whole[:5]) == [0, 1, 2, 3, 4] and sorted(whole[5:10]) == [0, 1, 2, 3, 4]  # epochs
    assert ImageStream(data, seed=1).batch(7, 3).flatten().tolist() == whole[7:10]


# ------------------------------------------------------------ one step of each
def nets():
    torch.manual_seed(0)
    G, D = Generator(16, 16, 3, 64, 32), Discriminator(16, 3, 64, 32)  # grown to 8x8 of 16x16
    for m in (G, D):
        m.set_stage(8, 0.5)
    return G, D


def test_discriminator_step_trains_only_d_and_gives_finite_losses():
    G, D = nets()
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.0, 0.99))
    g0, d0 = [p.clone() for p in G.parameters()], [p.clone() for p in D.parameters()]
    stats = pg_train.discriminator_step(G, D, opt_d, torch.randn(4, 3, 8, 8), torch.randn(4, 16), FP32, 10.0, 1e-3)
    assert all(torch.isfinite(v) for v in stats.values())
    assert all(torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    changed = [not torch.equal(a, b) for a, b in zip(d0, D.parameters())]
    assert any(changed)
    # the 16x16 blocks exist but are not used at 8x8: Adam leaves them alone
    unused = {n for n, _ in D.named_parameters() if n.startswith(("from_rgb.2", "blocks.2"))}
    assert unused and all(not c for (n, _), c in zip(D.named_parameters(), changed) if n in unused)


def test_generator_step_trains_only_g():
    G, D = nets()
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.99))
    d0 = [p.clone() for p in D.parameters()]
    before = G.to_rgb[1].weight.clone()
    stats = pg_train.generator_step(G, D, opt_g, torch.randn(4, 16), FP32)
    assert torch.isfinite(stats["loss_g"])
    assert all(torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    assert not torch.equal(before, G.to_rgb[1].weight)
    assert all(p.requires_grad for p in D.parameters())


def test_bf16_step_is_finite():
    G, D = nets()
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.0, 0.99))
    stats = pg_train.discriminator_step(G, D, opt_d, torch.randn(4, 3, 8, 8), torch.randn(4, 16),
                                        Precision("bf16", CPU), 10.0, 1e-3)
    assert all(torch.isfinite(v) for v in stats.values())


# ----------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("progan") / "run"
    proc = run_script("progan", "train", *TINY, "--sample-every", "4", "--eval-every", "4", "--eval-n", "32",
                      "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_script_grows_to_the_final_resolution(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, proc = tiny_run
    payload = load_file(out / "checkpoints" / "last.pt")
    assert payload["step"] == 10 and payload["model_name"] == "progan"
    assert payload["models"]["G"]["_extra_state"] == {"resolution": 16, "alpha": 1.0}
    assert payload["ema"]["module"]["_extra_state"] == {"resolution": 16, "alpha": 1.0}
    assert payload["optimizers"]["D"]["param_groups"][0]["betas"] == (0.0, 0.99)
    grids = sorted(p.name for p in (out / "samples").glob("*.png"))
    for tag in ("4x4_0000002", "8x8-fade_0000004", "8x8_0000006", "16x16-fade_0000008", "16x16_0000010"):
        assert f"{tag}.png" in grids  # a grid per phase
    with Image.open(out / "samples" / "16x16_0000010.png") as big:
        with Image.open(out / "samples" / "4x4_0000002.png") as small:
            assert big.size[0] > small.size[0]
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert [e.value for e in acc.Scalars("train/resolution")] == [4, 4, 8, 8, 8, 8, 16, 16, 16, 16]
    assert [e.value for e in acc.Scalars("train/alpha")][2:4] == [0.0, 0.5]
    assert {"train/loss_d", "train/gp", "train/loss_g", "train/kimg"} <= set(acc.Tags()["scalars"])
    # --eval-every 4: steps 4 (8x8 fade, alpha 0.5), 8 (16x16 fade) and 10 (the end); 8x8 is enlarged to 16x16
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][:3]
    assert [(r["step"], r["resolution"], r["alpha"]) for r in evals] == [(4, 8, 0.5), (8, 16, 0.5), (10, 16, 1.0)]
    assert all(r["n"] == 32 and "swd" in r for r in evals)


def test_generate_and_evaluate_the_checkpoint(tiny_run, tmp_path):
    out = tiny_run[0]
    ckpt = out / "checkpoints" / "last.pt"
    proc = run_script("progan", "generate", "--checkpoint", ckpt, "--n", "4", "--out", tmp_path / "g.png",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "16x16" in proc.stdout
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (2 * 16 + 3 * 2, 2 * 16 + 3 * 2)  # 2x2 grid, 2-pixel padding
    proc = run_script("progan", "generate", "--checkpoint", ckpt, "--interpolate", "--rows", "2", "--steps", "3",
                      "--out", tmp_path / "w.png", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    proc = run_script("progan", "evaluate", "--checkpoint", ckpt, "--n", "32", "--real", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-2]["what"] == "generated" and records[-2]["resolution"] == 16
    assert set(records[-2]["swd_levels"]) == {"16"} and records[-1]["what"] == "real A vs B"


def test_resume_mid_fade_is_exact(tmp_path):
    common = TINY + ["--seed", "3", "--sample-every", "100", "--save-every", "100"]
    # stop at step 7: inside the 16x16 fade (steps 7-8), alpha 0 there; then finish
    for out, steps, resume in [("a", 9, []), ("b", 7, []), ("b", 9, ["--resume", "auto"])]:
        pg_train.main(pg_train.parse_opt(common + ["--max-steps", str(steps), "--out", str(tmp_path / out)] + resume))
    a, b = (load_file(tmp_path / f"{x}/checkpoints/last.pt") for x in "ab")
    assert a["models"]["G"]["_extra_state"] == b["models"]["G"]["_extra_state"] == {"resolution": 16, "alpha": 1.0}
    for net in ("G", "D"):
        for key, value in a["models"][net].items():
            if torch.is_tensor(value):
                assert torch.equal(value, b["models"][net][key]), f"{net}.{key} differs after resume"
    for key, value in a["ema"]["module"].items():
        if torch.is_tensor(value):
            assert torch.equal(value, b["ema"]["module"][key]), f"EMA {key} differs after resume"
    sa, sb = a["optimizers"]["D"]["state"], b["optimizers"]["D"]["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def test_adam_restarts_at_each_phase(tmp_path):
    pg_train.main(pg_train.parse_opt(TINY + ["--max-steps", "3", "--out", str(tmp_path / "r")]))
    state = load_file(tmp_path / "r/checkpoints/last.pt")["optimizers"]["G"]["state"]
    # step 3 is the first of the 8x8 fade: the moments hold that one step only
    assert {int(s["step"]) for s in state.values()} == {1}


# ----------------------------------------------------------------- bad input
def test_max_resolution_not_a_power_of_two_is_one_line(tmp_path):
    proc = run_script("progan", "train", "--max-resolution", "48", "--out", tmp_path / "x")
    assert proc.returncode != 0 and "power of two" in proc.stderr and "Traceback" not in proc.stderr


def test_data_smaller_than_the_resolution_is_one_line(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "big.png")
    Image.new("RGB", (20, 30)).save(folder / "small.png")
    proc = run_script("progan", "train", *TINY[2:], "--data", folder, "--max-resolution", "32", "--out", tmp_path / "x")
    assert_one_line_error(proc, "small.png", "20x30")
    with pytest.raises(DataError, match="cifar10 holds images of at most 32x32"):
        pg_train.main(pg_train.parse_opt(["--data", "cifar10", "--max-resolution", "64", "--out", str(tmp_path / "y")]))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty"):
        pg_train.main(pg_train.parse_opt(["--data", str(empty), "--out", str(tmp_path / "z")]))


def test_a_checkpoint_of_another_model_is_one_line(tmp_path, tiny_run):
    other = tmp_path / "other.pt"
    torch.save({"format": 1, "model_name": "dcgan", "models": {}, "options": {}}, other)
    assert_one_line_error(run_script("progan", "generate", "--checkpoint", other, "--device", "cpu"), "dcgan")
