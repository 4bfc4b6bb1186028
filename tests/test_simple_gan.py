"""Simple GAN: architecture, one step, end to end, resume, generate, bad input."""
from __future__ import annotations

import contextlib

import json

import pytest
import torch
import torch.nn as nn

from common.checkpoint import load_file
from common.inference import load_generator
from common.device import Precision, cpu_has_fast_bf16
from simple_gan import train as sg_train
from simple_gan.model import Discriminator, Generator, build_generator
from simple_gan.utils import sample_z
from tests.helpers import assert_one_line_error, run_script

TINY = ["--batch-size", "16", "--device", "cpu", "--precision", "fp32", "--log-every", "1"]


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_architecture_matches_the_seed_table():
    G, D = Generator(), Discriminator()
    assert [type(m) for m in G.main] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.Tanh]
    assert [type(m) for m in D.main] == [nn.Linear, nn.LeakyReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in G.main if isinstance(m, nn.Linear)] == [(64, 256), (256, 784)]
    assert [(m.in_features, m.out_features) for m in D.main if isinstance(m, nn.Linear)] == [(784, 128), (128, 1)]
    assert all(m.negative_slope == 0.01 for m in [*G.modules(), *D.modules()] if isinstance(m, nn.LeakyReLU))
    assert sum(p.numel() for p in G.parameters()) == linear_params(64, 256) + linear_params(256, 784) == 218_128
    assert sum(p.numel() for p in D.parameters()) == linear_params(784, 128) + linear_params(128, 1) == 100_609
    x = G(sample_z(5, 64))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (5,)


def test_one_step_updates_weights_with_finite_losses():
    torch.manual_seed(0)
    G, D = Generator(), Discriminator()
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 3e-4), torch.optim.Adam(D.parameters(), 3e-4)
    before = [p.detach().clone() for p in [*G.parameters(), *D.parameters()]]
    losses = sg_train.train_step(G, D, opt_g, opt_d, torch.rand(8, 1, 28, 28) * 2 - 1, sample_z(8, 64),
                                 Precision("fp32", torch.device("cpu")))
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, [*G.parameters(), *D.parameters()]))


def test_bf16_step_is_finite():
    G, D = Generator(), Discriminator()
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 3e-4), torch.optim.Adam(D.parameters(), 3e-4)
    with pytest.warns(UserWarning) if not cpu_has_fast_bf16() else contextlib.nullcontext():
        prec = Precision("bf16", torch.device("cpu"))
    losses = sg_train.train_step(G, D, opt_g, opt_d, torch.rand(8, 1, 28, 28) * 2 - 1, sample_z(8, 64), prec)
    assert all(torch.isfinite(v) for v in losses.values())


def test_defaults_are_the_seeds():
    opt = sg_train.parse_opt([])
    assert (opt.lr, opt.batch_size, opt.z_dim, opt.image_size, opt.epochs) == (3e-4, 32, 64, 28, 50)


def test_end_to_end_resume_exact_and_generate(tmp_path):
    args = TINY + ["--seed", "5", "--sample-every", "2", "--save-every", "100"]
    sg_train.main(sg_train.parse_opt(args + ["--max-steps", "6", "--out", str(tmp_path / "a")]))
    sg_train.main(sg_train.parse_opt(args + ["--max-steps", "3", "--out", str(tmp_path / "b")]))
    sg_train.main(sg_train.parse_opt(args + ["--max-steps", "6", "--out", str(tmp_path / "b"), "--resume", "auto"]))
    a, b = load_file(tmp_path / "a/checkpoints/last.pt"), load_file(tmp_path / "b/checkpoints/last.pt")
    assert a["step"] == b["step"] == 6
    for net in ("G", "D"):
        for key, value in a["models"][net].items():
            assert torch.equal(value, b["models"][net][key]), f"{net}.{key}"
    assert (tmp_path / "a/samples/samples_0000006.png").is_file()
    assert list((tmp_path / "a").glob("events.out.tfevents.*"))
    proc = run_script("simple_gan", "generate", "--checkpoint", tmp_path / "a/checkpoints/last.pt",
                      "--n", "16", "--out", tmp_path / "g.png", "--individual", tmp_path / "each", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "each").glob("*.png"))) == 16
    G, _ = load_generator(tmp_path / "a/checkpoints/last.pt", "simple_gan", build_generator, torch.device("cpu"))
    assert torch.equal(G.state_dict()["main.0.weight"], a["models"]["G"]["main.0.weight"])


def test_evaluate_reports_the_offline_metrics(tmp_path):
    out = tmp_path / "run"
    sg_train.main(sg_train.parse_opt(TINY + ["--max-steps", "2", "--out", str(out)]))
    proc = run_script("simple_gan", "evaluate", "--checkpoint", out / "checkpoints/last.pt", "--n", "50",
                      "--device", "cpu", "--jsonl", tmp_path / "m.jsonl")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "m.jsonl").read_text())
    assert record["model"] == "simple_gan" and record["n"] == 50 and record["step"] == 2
    assert {"fid", "kid", "is", "swd", "ms_ssim"} <= set(record)
    assert list(record["swd_levels"]) == ["28", "14"]  # the pyramid of a 28x28 image
    assert not (out / "metrics.jsonl").exists()  # --jsonl chose another file


def test_fake_mnist_trains(tmp_path):
    """--data mnist reads torchvision's layout (files made here: no download)."""
    import numpy as np

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 8)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            (2051).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + n.to_bytes(4, "big")
                                                          + labels.tobytes())
    out = sg_train.main(sg_train.parse_opt(TINY + ["--data", "mnist", "--data-root", str(tmp_path),
                                                   "--max-steps", "2", "--out", str(tmp_path / "run")]))
    assert load_file(out / "checkpoints/last.pt")["options"]["data"] == "mnist"


def test_bad_input_is_one_line(tmp_path):
    assert_one_line_error(run_script("simple_gan", "train", "--data", tmp_path / "nope", "--out", tmp_path / "o"),
                          "no such file")
    bogus = tmp_path / "bogus.pt"
    import pickle

    bogus.write_bytes(pickle.dumps({"format": 1, "models": {}, "payload": print}))
    assert_one_line_error(run_script("simple_gan", "generate", "--checkpoint", bogus), "arbitrary Python objects")


@pytest.mark.slow
def test_compile_flag_trains_and_saves_plain_weights(tmp_path):
    """--compile wraps the models in torch.compile; the checkpoint still holds the plain module."""
    out = sg_train.main(sg_train.parse_opt(TINY + ["--compile", "--max-steps", "2", "--out", str(tmp_path / "c")]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 2
    assert not any(k.startswith("_orig_mod.") for k in payload["models"]["G"])
    G, _ = load_generator(out / "checkpoints/last.pt", "simple_gan", build_generator, torch.device("cpu"))
    assert torch.equal(G.state_dict()["main.0.weight"], payload["models"]["G"]["main.0.weight"])
