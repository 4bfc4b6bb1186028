"""torchrun with 2 CPU processes (gloo): DDP training runs, rank 0 alone writes, and
checkpoints hold the unwrapped module."""
from __future__ import annotations

import os
import subprocess
import sys

import torch

from common.checkpoint import load_file
from tests.helpers import ROOT


def test_torchrun_two_processes_gloo(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "dcgan.train", "--device", "cpu", "--precision", "fp32", "--image-size", "16", "--ngf", "8",
         "--ndf", "8", "--batch-size", "8", "--max-steps", "3", "--save-every", "2", "--log-every", "1",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 3
    for net in ("G", "D"):
        assert not any(k.startswith(("module.", "_orig_mod.")) for k in payload["models"][net])
        assert all(torch.isfinite(v).all() for v in payload["models"][net].values() if v.is_floating_point())
    assert len(payload["rng"]) == 2  # every rank's RNG state, so a resume is exact per rank
    assert not torch.equal(payload["rng"][0]["torch"], payload["rng"][1]["torch"])
    assert len(list(out.glob("events.out.tfevents.*"))) == 1  # rank 0 alone logs
    assert proc.stdout.count("run directory:") == 2  # printed once at start, once at the end, by rank 0
    # 1797 digits / 2 ranks / batch 8 = 112 steps per epoch on each rank
    assert "112 steps/epoch" in proc.stdout

    # resume under torchrun continues from step 3 to 4
    proc2 = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "dcgan.train", "--device", "cpu", "--precision", "fp32", "--image-size", "16", "--ngf", "8",
         "--ndf", "8", "--batch-size", "8", "--max-steps", "4", "--resume", "auto", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc2.returncode == 0, proc2.stdout[-3000:] + proc2.stderr[-3000:]
    assert load_file(out / "checkpoints/last.pt")["step"] == 4


def test_torchrun_wgan_and_wgan_gp(tmp_path):
    """The critic loops under DDP: WGAN's clipping, and WGAN-GP's penalty (a double backward
    through the DDP-wrapped critic)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for folder in ("wgan", "wgan_gp"):
        out = tmp_path / folder
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", f"{folder}.train", "--device", "cpu", "--precision", "fp32", "--image-size", "16", "--ngf", "8",
             "--ndf", "8", "--batch-size", "8", "--n-critic", "2", "--max-steps", "2", "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        payload = load_file(out / "checkpoints/last.pt")
        assert payload["step"] == 2 and len(payload["rng"]) == 2
        assert all(torch.isfinite(v).all() for v in payload["models"]["C"].values() if v.is_floating_point())


def test_torchrun_pix2pix_and_cyclegan(tmp_path):
    """The image-to-image steps under DDP: pix2pix's D called on the real and the fake pair
    before one backward, CycleGAN's generators called three times each before one backward;
    the keyed (index, epoch) sampler sharded across ranks."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    runs = {"pix2pix": (["--load-size", "36", "--epoch-length", "6"], ("G", "D")),
            "cyclegan": (["--epoch-size", "6"], ("G_AB", "G_BA", "D_A", "D_B"))}
    for folder, (extra, nets) in runs.items():
        out = tmp_path / folder
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", f"{folder}.train", "--device", "cpu", "--precision", "fp32", "--image-size", "32", "--ngf", "8",
             "--ndf", "8", "--max-steps", "3", *extra, "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "3 steps/epoch" in proc.stdout  # 6 items / 2 ranks / batch 1
        payload = load_file(out / "checkpoints/last.pt")
        assert payload["step"] == 3 and len(payload["rng"]) == 2
        for net in nets:
            assert not any(k.startswith(("module.", "_orig_mod.")) for k in payload["models"][net])
            assert all(torch.isfinite(v).all() for v in payload["models"][net].values() if v.is_floating_point())
