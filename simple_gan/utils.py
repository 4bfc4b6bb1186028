"""What only the simple GAN needs: its latent prior."""
from __future__ import annotations

import torch


def sample_z(n: int, z_dim: int, *, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) (the seed's choice; Goodfellow et al. leave the prior open), drawn on
    `device` directly unless an explicit CPU `generator` is given."""
    z = torch.randn(n, z_dim, generator=generator, device=device if generator is None else None)
    return z.to(device) if device is not None else z


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """z ~ N(0, I) (the seed's prior): what generate.py and evaluate.py feed G."""
    return sample_z(n, options["z_dim"], generator=generator)
