"""What only the simple GAN needs: its latent prior."""
from __future__ import annotations

import torch


def sample_z(n: int, z_dim: int, *, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) (the seed's choice; Goodfellow et al. leave the prior open)."""
    z = torch.randn(n, z_dim, generator=generator)
    return z.to(device) if device is not None else z
