"""What only the simple GAN needs: its latent priors and the data's mean image."""
from __future__ import annotations

import math

import torch

Z_DISTS = ("normal", "uniform")


def sample_z(n: int, z_dim: int, dist: str = "normal", *, device=None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) (the seed's choice; the paper leaves p_z open), or "uniform": U[-sqrt 3,
    sqrt 3]^z_dim, unit variance, the authors' code's noise for MNIST (--arch paper). Drawn on
    `device` directly unless an explicit CPU `generator` is given."""
    where = device if generator is None else None
    if dist == "normal":
        z = torch.randn(n, z_dim, generator=generator, device=where)
    elif dist == "uniform":
        z = (torch.rand(n, z_dim, generator=generator, device=where) * 2.0 - 1.0) * math.sqrt(3.0)
    else:
        raise ValueError(f"unknown latent distribution {dist!r} ({' | '.join(Z_DISTS)})")
    return z.to(device) if device is not None else z


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """z from the run's prior (--z-dist; a checkpoint from before it drew N(0, I)): what
    generate.py and evaluate.py feed G."""
    return sample_z(n, options["z_dim"], options.get("z_dist", "normal"), generator=generator)


@torch.no_grad()
def mean_image01(dataset, limit: int = 10_000) -> torch.Tensor:
    """The mean training image in [0, 1], over at most `limit` images at evenly spaced indices
    (no RNG, so the run's random stream is untouched): for PaperGenerator.init_output_bias."""
    idx = torch.linspace(0, len(dataset) - 1, min(limit, len(dataset))).long()
    total = sum(dataset[int(i)][0].double() for i in idx)
    return ((total / len(idx)) + 1.0) / 2.0
