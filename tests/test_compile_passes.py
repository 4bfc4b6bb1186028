"""--compile: every forward pass of a training step runs the compiled module.

Each model is compiled with a backend that counts how often its compiled graph runs
(fullgraph=True, so one forward is one run). A pass through a module whose
torch.compile wrapper was stripped (as common.distributed.unwrap used to do for the
critic step's fakes and the generator step's pass through D) would not be counted.
"""
from __future__ import annotations

import importlib

import pytest
import torch

from common.device import Precision

CPU = torch.device("cpu")
FP32 = Precision("fp32", CPU)


def counted(model: torch.nn.Module) -> tuple[torch.nn.Module, list]:
    """torch.compile(model) with a backend that counts the runs of its compiled graphs."""
    runs = []

    def backend(graph_module, example_inputs):
        def run(*args):
            runs.append(1)
            return graph_module.forward(*args)
        return run

    return torch.compile(model, backend=backend, fullgraph=True), runs


def nets(folder: str, **kw):
    model = importlib.import_module(f"{folder}.model")
    if folder == "simple_gan":
        return model.Generator(8, 16, 1, 8), model.Discriminator(16, 1, 8)
    if folder == "dcgan":
        return model.Generator(8, 4, 1, 16), model.Discriminator(4, 1, 16)
    if folder == "cgan":
        return model.build_models(dict(arch="conv", nz=8, num_classes=10, embed_size=4, ngf=2, ndf=4, channels=1,
                                       image_size=16))
    return model.Generator(8, 4, 1, 16), model.Critic(4, 1, 16, "layer" if folder == "wgan_gp" else "batch")


@pytest.mark.parametrize("folder", ["simple_gan", "dcgan"])
def test_gan_step_runs_every_pass_compiled(folder):
    train = importlib.import_module(f"{folder}.train")
    (G, g_runs), (D, d_runs) = (counted(m) for m in nets(folder))
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    size = 8 if folder == "simple_gan" else 16
    train.train_step(G, D, opt_g, opt_d, torch.rand(4, 1, size, size) * 2 - 1, torch.randn(4, 8), FP32)
    assert len(g_runs) == 1  # G(z), once, reused by the G step
    assert len(d_runs) == 3  # D(x), D(G(z)) in the D step, D(G(z)) in the G step


@pytest.mark.parametrize("folder", ["wgan", "wgan_gp", "cgan"])
def test_critic_and_generator_steps_run_every_pass_compiled(folder):
    train = importlib.import_module(f"{folder}.train")
    (G, g_runs), (C, c_runs) = (counted(m) for m in nets(folder))
    opt_g, opt_c = torch.optim.Adam(G.parameters()), torch.optim.Adam(C.parameters())
    real, z = torch.rand(4, 1, 16, 16) * 2 - 1, torch.randn(4, 8)
    if folder == "cgan":
        labels = torch.tensor([0, 3, 5, 9])
        train.critic_step(G, C, opt_c, real, labels, z, FP32, 10.0)
        critic_passes = 3  # C(x|y), C(G(z|y)|y), C(x_hat|y)
    elif folder == "wgan":
        train.critic_step(G, C, opt_c, real, z, FP32, 0.01)
        critic_passes = 2  # C(x), C(G(z)): two batches, as the authors' code
    else:
        train.critic_step(G, C, opt_c, real, z, FP32, 10.0)
        critic_passes = 2  # C([x, G(z)]) in one call, C(x_hat) in another
    assert (len(g_runs), len(c_runs)) == (1, critic_passes)  # the fakes come from the compiled G
    if folder == "cgan":
        train.generator_step(G, C, opt_g, z, labels, FP32, train.wgan_generator_loss)
    else:
        train.generator_step(G, C, opt_g, z, FP32)
    assert (len(g_runs), len(c_runs)) == (2, critic_passes + 1)  # the G step's critic pass is compiled too
