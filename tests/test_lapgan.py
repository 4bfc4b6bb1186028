"""LAPGAN end to end: train.py writes a checkpoint of every level, grids and TensorBoard events;
resume is exact; the class-conditional variant; generate.py (also from a given coarse image,
saving every level); evaluate.py; bad input gives one clear line."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from common.checkpoint import load_file
from common.errors import UserError
from lapgan import generate as lapgan_generate
from lapgan import train as lapgan_train
from tests.helpers import ROOT, assert_one_line_error, run_script

# 8 -> 16 -> 32 as in the default, at tiny widths
TINY = ["--image-size", "32", "--levels", "3", "--ngf", "8", "--ndf", "8", "--coarse-hidden-g", "32",
        "--coarse-hidden-d", "16", "--batch-size", "8", "--precision", "fp32", "--device", "cpu",
        "--log-every", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("lapgan") / "run"
    proc = run_script("lapgan", "train", *TINY, "--max-steps", "3", "--sample-every", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_script_writes_every_level_grid_events_and_options(tiny_run):
    out, proc = tiny_run
    assert "8x8: G" in proc.stdout and "32x32: G" in proc.stdout  # per-level parameter counts
    assert "steps 0->3" in proc.stdout  # the loop's total, cut by --max-steps
    payload = load_file(out / "checkpoints" / "last.pt")
    assert payload["step"] == 3 and payload["model_name"] == "lapgan"
    assert set(payload["models"]) == {"G", "D"}
    assert set(payload["optimizers"]) == {"G32", "G16", "G8", "D32", "D16", "D8"}
    for net in ("G", "D"):  # every level's weights
        assert {k.split(".")[1] for k in payload["models"][net]} == {"0", "1", "2"}
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["samples_0000002.png", "samples_0000003.png"]
    options = json.loads((out / "options.json").read_text())
    assert options["levels"] == 3 and options["channels"] == 3 and options["num_classes"] == 0


def test_tensorboard_events_hold_every_levels_losses_and_images(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tiny_run[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for size in (8, 16, 32):
        assert {f"train/loss_d_{size}", f"train/loss_g_{size}", f"train/D(x)_{size}"} <= tags
    assert [e.step for e in acc.Scalars("train/loss_d_32")] == [1, 2, 3]
    assert acc.Scalars("train/lr")[0].value == pytest.approx(0.02)
    assert "samples" in acc.Tags()["images"]


def test_generate_samples_every_level_and_from_a_given_coarse_image(tiny_run, tmp_path):
    from PIL import Image

    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    lapgan_generate.main(lapgan_generate.parse_opt(["--checkpoint", str(ckpt), "--n", "9", "--every-level",
                                                    str(tmp_path / "levels"), "--out", str(tmp_path / "g.png"),
                                                    "--device", "cpu"]))
    assert Image.open(tmp_path / "g.png").size == (3 * 34 + 2, 3 * 34 + 2)
    assert Image.open(tmp_path / "levels/level_08.png").size == (3 * 10 + 2, 3 * 10 + 2)
    assert Image.open(tmp_path / "levels/level_16.png").size == (3 * 18 + 2, 3 * 18 + 2)
    assert Image.open(tmp_path / "levels/pyramid.png").size == (3 * 34 + 2, 8 * 34 + 2)  # 8 rows x 3 levels
    # Fig. 4: every sample refines the same coarse image; only the finer levels' noise differs
    Image.new("RGB", (40, 30), (200, 40, 40)).save(tmp_path / "red.png")
    for start in ("8", "16"):
        lapgan_generate.main(lapgan_generate.parse_opt([
            "--checkpoint", str(ckpt), "--n", "4", "--coarse", str(tmp_path / "red.png"), "--start-size", start,
            "--out", str(tmp_path / f"from{start}.png"), "--every-level", str(tmp_path / f"lv{start}"),
            "--device", "cpu"]))
    assert sorted(p.name for p in (tmp_path / "lv8").glob("level_*")) == ["level_08.png", "level_16.png",
                                                                          "level_32.png"]
    assert sorted(p.name for p in (tmp_path / "lv16").glob("level_*")) == ["level_16.png", "level_32.png"]
    first = Image.open(tmp_path / "lv8/level_08.png").convert("RGB")
    assert first.getpixel((5, 5))[0] > 150 and first.getpixel((5, 5))[1] < 100  # the red start image itself


def test_generated_levels_match_the_cascade_and_do_not_depend_on_the_batch(tiny_run):
    G, options = lapgan_generate.load_generator(tiny_run[0] / "checkpoints" / "last.pt", torch.device("cpu"))
    from lapgan.utils import latents

    latent = latents(options, 5, torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(G(latent)[:2], G(latent[:2]))
        assert G(latent).shape == (5, 3, 32, 32)


def weights(path):
    payload = load_file(path)
    return payload["models"], payload["optimizers"]


def test_resume_is_exact(tmp_path):
    """4 steps in one run == 2 steps, stop, resume, 2 more: every level's weights and SGD momentum."""
    common = TINY + ["--data", "digits", "--seed", "3", "--sample-every", "100", "--save-every", "100"]
    lapgan_train.main(lapgan_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "a")]))
    lapgan_train.main(lapgan_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    lapgan_train.main(lapgan_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "b"),
                                                       "--resume", "auto"]))
    (ma, oa), (mb, ob) = weights(tmp_path / "a/checkpoints/last.pt"), weights(tmp_path / "b/checkpoints/last.pt")
    for net in ("G", "D"):
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
    for name in oa:
        for (_, va), (_, vb) in zip(oa[name]["state"].items(), ob[name]["state"].items()):
            assert torch.equal(va["momentum_buffer"], vb["momentum_buffer"]), name
    # and a 3-step run is not equal (the comparison can fail)
    lapgan_train.main(lapgan_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "c")]))
    mc, _ = weights(tmp_path / "c/checkpoints/last.pt")
    assert not torch.equal(ma["G"]["levels.0.main.0.weight"], mc["G"]["levels.0.main.0.weight"])


def test_class_conditional_variant_trains_and_generates_a_chosen_class(tmp_path):
    out = lapgan_train.main(lapgan_train.parse_opt(TINY + ["--data", "digits", "--conditional", "--max-steps", "1",
                                                           "--out", str(tmp_path / "cond")]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["options"]["num_classes"] == 10 and payload["options"]["channels"] == 1
    assert payload["models"]["G"]["levels.0.class_plane.linear.weight"].shape == (32 * 32, 10)
    assert payload["models"]["G"]["levels.2.main.0.weight"].shape == (32, 100 + 10)
    G, options = lapgan_generate.load_generator(out / "checkpoints/last.pt", torch.device("cpu"))
    opt = lapgan_generate.parse_opt(["--checkpoint", str(out / "checkpoints/last.pt"), "--n", "4",
                                     "--label", "7", "--device", "cpu", "--out", str(tmp_path / "s.png")])
    with torch.no_grad():
        levels = lapgan_generate.cascade_levels(G, options, opt, torch.device("cpu"))
        z, planes, labels = G.split(torch.cat([torch.zeros(4, G.nz + 16 * 16 + 32 * 32), torch.full((4, 1), 7.0)],
                                              dim=1))
        assert labels.tolist() == [7, 7, 7, 7]
    assert levels[-1].shape == (4, 1, 32, 32)
    lapgan_generate.main(opt)
    assert (tmp_path / "s.png").is_file()


def test_evaluate_measures_full_cascade_samples(tiny_run):
    from lapgan import evaluate as lapgan_evaluate

    records = lapgan_evaluate.main(lapgan_evaluate.parse_opt(["--checkpoint", str(tiny_run[0] / "checkpoints/last.pt"),
                                                              "--n", "32", "--device", "cpu"]))
    assert records[0]["model"] == "lapgan" and records[0]["n"] == 32 and records[0]["fid"] > 0
    assert set(records[0]["swd_levels"]) == {32, 16}


# -------------------------------------------------------------- bad input
def test_bad_pyramid_gives_one_clear_line(tmp_path):
    """Refused before any work: one line from the script (the geometry rules: test_lapgan_model.py)."""
    assert_one_line_error(run_script("lapgan", "train", *TINY, "--levels", "4", "--out", tmp_path / "x"),
                          "deeper than 32x32")
    with pytest.raises(UserError, match="--image-size 48 is not a power of two"):
        lapgan_train.main(lapgan_train.parse_opt(TINY + ["--image-size", "48", "--out", str(tmp_path / "y")]))
    assert not (tmp_path / "y").exists()


def test_bad_generate_input_gives_one_clear_line(tiny_run, tmp_path):
    ckpt = tiny_run[0] / "checkpoints/last.pt"
    (tmp_path / "notes.txt").write_text("not an image")
    # the module form from the root (the scripts' other form)
    proc = subprocess.run([sys.executable, "-m", "lapgan.generate", "--checkpoint", str(ckpt), "--coarse",
                           str(tmp_path / "notes.txt"), "--out", str(tmp_path / "a.png"), "--device", "cpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, "notes.txt")
    with pytest.raises(Exception, match="not class-conditional"):
        lapgan_generate.main(lapgan_generate.parse_opt(["--checkpoint", str(ckpt), "--label", "1",
                                                        "--out", str(tmp_path / "b.png"), "--device", "cpu"]))
    with pytest.raises(Exception, match="nothing to refine"):
        lapgan_generate.main(lapgan_generate.parse_opt(["--checkpoint", str(ckpt), "--coarse", "x.png",
                                                        "--start-size", "32", "--out", str(tmp_path / "d.png"),
                                                        "--device", "cpu"]))
    with pytest.raises(Exception, match="levels are 32, 16, 8"):
        lapgan_generate.main(lapgan_generate.parse_opt(["--checkpoint", str(ckpt), "--coarse", "x.png",
                                                        "--start-size", "4", "--out", str(tmp_path / "c.png"),
                                                        "--device", "cpu"]))


def test_conditional_on_unlabelled_data_is_refused(tmp_path):
    with pytest.raises(Exception, match="no class labels"):
        lapgan_train.main(lapgan_train.parse_opt(TINY + ["--conditional", "--out", str(tmp_path / "p")]))
