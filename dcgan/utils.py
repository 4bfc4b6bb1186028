"""What only DCGAN needs: its latent prior, the latent-space walk (Sec. 6.1), and the
historical average of Salimans et al. 2016 (Sec. 3.3) for the Improved Techniques toolbox."""
from __future__ import annotations

import torch
import torch.nn as nn


def sample_z(n: int, nz: int, dist: str = "uniform", *, device=None, generator: torch.Generator | None = None):
    """z ~ U[-1, 1]^nz as in the paper (Fig. 1), or N(0, I) as in the PyTorch example.

    Drawn directly on `device` (no host-to-device copy in the training step), except with
    an explicit CPU `generator` (fixed latents), whose draws are then moved."""
    where = device if generator is None else None
    if dist == "uniform":
        z = torch.rand(n, nz, generator=generator, device=where) * 2.0 - 1.0
    elif dist == "normal":
        z = torch.randn(n, nz, generator=generator, device=where)
    else:
        raise ValueError(f"unknown latent distribution {dist!r} (uniform | normal)")
    return z.to(device) if device is not None else z


def interpolate_z(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Points on the straight line from z0 to z1 (Sec. 6.1, Fig. 4): (steps, nz)."""
    t = torch.linspace(0.0, 1.0, steps, device=z0.device).unsqueeze(1)
    return (1.0 - t) * z0.unsqueeze(0) + t * z1.unsqueeze(0)


class HistoricalAverage(nn.Module):
    """Historical averaging (Salimans et al. 2016, Sec. 3.3): each player's cost gets
    lambda * ||theta - (1/t) sum_{i=1..t} theta[i]||^2, theta[i] its parameters at past time i.

    Holds the running mean of a model's parameters as buffers (one per parameter, named
    after it with '.' -> '__') and the number of snapshots t in `count`, so registering it
    as an extra model in the Checkpointer saves and restores it: resume is exact.

    Snapshots: the parameters as initialised (t = 1), then after every optimizer step
    (`update`). When a step's cost is computed the mean therefore covers every value the
    parameters have had, the current one included, so the penalty is 0 at the first step.
    The mean is a constant in the penalty (no gradient flows into the history), so the
    penalty's gradient is 2 * lambda * (theta - mean): it pulls theta back towards its past.
    Parameters only: BatchNorm running statistics are not a player's parameters.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        for name, p in model.named_parameters():
            self.register_buffer(self._key(name), p.detach().clone())  # theta[1]: the initial parameters
        self.register_buffer("count", torch.ones((), dtype=torch.int64))  # t

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "__")  # buffer names cannot hold dots

    def mean(self, name: str) -> torch.Tensor:
        """(1/t) sum_{i<=t} theta[i] for the parameter called `name`."""
        return getattr(self, self._key(name))

    @torch.no_grad()
    def restart(self, model: nn.Module) -> None:
        """Start the history afresh at the model's current parameters: theta[1] = theta, t = 1."""
        for name, p in model.named_parameters():
            self.mean(name).copy_(p.detach())
        self.count.fill_(1)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Add the current parameters as snapshot t + 1: mean += (theta - mean) / (t + 1)."""
        self.count += 1
        weight = 1.0 / float(self.count)
        for name, p in model.named_parameters():
            self.mean(name).lerp_(p.detach().to(self.mean(name).dtype), weight)

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """||theta - (1/t) sum_{i<=t} theta[i]||^2 over all of the model's parameters, in fp32."""
        terms = [(p.float() - self.mean(name).float()).square().sum() for name, p in model.named_parameters()]
        return torch.stack(terms).sum()


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """z ~ p(z) as the run drew it (--z-dist; default U[-1, 1], Fig. 1): what generate.py and evaluate.py feed G."""
    return sample_z(n, options["nz"], options.get("z_dist", "uniform"), generator=generator)
