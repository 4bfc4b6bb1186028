"""What only WGAN needs: its latent prior and the critic's schedule of iterations."""
from __future__ import annotations

import torch

# The authors' code, not Algorithm 1: a near-optimal critic early on and now and then.
EXTRA_CRITIC_ITERS, EXTRA_FIRST, EXTRA_EVERY = 100, 25, 500


def sample_z(n: int, nz: int, dist: str = "normal", *, device=None, generator: torch.Generator | None = None):
    """z ~ N(0, I) as in the authors' code, or U[-1, 1] (DCGAN's prior).

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


def critic_iterations(step: int, n_critic: int, extra: bool = False) -> int:
    """Critic iterations before generator step `step` (1-based): n_critic (Algorithm 1), or
    with `extra` the authors' 100 for the first 25 generator steps and every 500th after."""
    if extra and (step <= EXTRA_FIRST or (step - 1) % EXTRA_EVERY == 0):
        return EXTRA_CRITIC_ITERS
    return n_critic


def batches_before(step: int, n_critic: int, extra: bool = False) -> int:
    """Real batches the critic has read once `step` generator steps are done: where a
    resumed run picks up the data stream. Equals sum(critic_iterations(s) for s <= step)."""
    total = step * n_critic
    if extra and step > 0:
        # steps 1..25, then the steps s > 25 with s - 1 a multiple of 500 (500 > 25, so no overlap)
        boosted = min(step, EXTRA_FIRST) + (step - 1) // EXTRA_EVERY
        total += boosted * (EXTRA_CRITIC_ITERS - n_critic)
    return total


def generator_iterations_in(batches: int, n_critic: int, extra: bool = False) -> int:
    """The number of whole generator steps whose critic iterations fit in `batches` real batches."""
    lo, hi = 0, batches  # batches_before is increasing: the last step that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if batches_before(mid, n_critic, extra) <= batches:
            lo = mid
        else:
            hi = mid - 1
    return lo


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """z ~ p(z) as the run drew it (--z-dist; default N(0, I), the authors' code): what generate.py and evaluate.py feed G."""
    return sample_z(n, options["nz"], options.get("z_dist", "normal"), generator=generator)
