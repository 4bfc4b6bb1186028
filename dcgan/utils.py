"""What only DCGAN needs: its latent prior and the latent-space walk (Sec. 6.1)."""
from __future__ import annotations

import torch


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
