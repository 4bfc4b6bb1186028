"""What only WGAN-GP needs here: its latent prior (the penalty itself is common.penalty)."""
from __future__ import annotations

import torch


def sample_z(n: int, nz: int, dist: str = "normal", *, device=None, generator: torch.Generator | None = None):
    """z ~ N(0, I) as in the authors' code, or U[-1, 1].

    Drawn directly on `device`, except with an explicit CPU `generator` (fixed latents),
    whose draws are then moved."""
    where = device if generator is None else None
    if dist == "normal":
        z = torch.randn(n, nz, generator=generator, device=where)
    elif dist == "uniform":
        z = torch.rand(n, nz, generator=generator, device=where) * 2.0 - 1.0
    else:
        raise ValueError(f"unknown latent distribution {dist!r} (normal | uniform)")
    return z.to(device) if device is not None else z


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """z ~ p(z) as the run drew it (--z-dist; default N(0, I), the authors' code): what generate.py and evaluate.py feed G."""
    return sample_z(n, options["nz"], options.get("z_dist", "normal"), generator=generator)
