"""What only ProGAN needs: the growth schedule (Sec. 3 and Appendix A.1), the real images at
the network's current stage, and the latent prior.

The schedule is a pure function of the step number, so resuming at any step, mid-fade
included, restores the resolution, alpha and the number of real images shown exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Appendix A.1: "minibatch size 16 for resolutions 4^2-128^2 and then gradually decrease the
# size according to 256^2 -> 14, 512^2 -> 6, and 1024^2 -> 3"
PAPER_BATCH = {256: 14, 512: 6, 1024: 3}
PAPER_BATCH_UP_TO_128 = 16


def paper_batch_size(resolution: int) -> int:
    return PAPER_BATCH.get(resolution, PAPER_BATCH_UP_TO_128)


@dataclass(frozen=True)
class Phase:
    """A stretch of training at one resolution: fading its new blocks in (alpha 0 -> 1) or
    stabilising (alpha 1). Steps first_step + 1 .. first_step + steps belong to it."""

    resolution: int
    fade: bool
    batch_size: int
    steps: int
    first_step: int
    images_before: int  # real images shown before the phase

    @property
    def last_step(self) -> int:
        return self.first_step + self.steps


@dataclass(frozen=True)
class Stage:
    """Where step `step` trains: its phase, alpha, and real images shown before it."""

    phase: Phase
    alpha: float
    images_seen: int
    new_phase: bool  # the first step of a phase (Adam's moments are reset there)


def growth_schedule(max_resolution: int, phase_images: int, *, final_images: int | None = None,
                    batch_size=paper_batch_size, start_resolution: int = 4) -> list[Phase]:
    """Sec. 3: 4x4 stabilises for `phase_images` real images; each later resolution fades in
    over `phase_images`, then stabilises for `phase_images` (`final_images` at the last one).
    The paper shows 800k images per phase (Appendix A.1); `batch_size(r)` the minibatch.
    `start_resolution` skips the coarser stages (the official lod_initial_resolution);
    equal to `max_resolution`, it is Table 1's baseline without growing."""
    if start_resolution > max_resolution:
        raise ValueError(f"the start resolution {start_resolution} is above the final one {max_resolution}")
    phases, step, images = [], 0, 0
    resolution = start_resolution
    while resolution <= max_resolution:
        for fade in ([False] if resolution == start_resolution else [True, False]):
            length = final_images if (resolution == max_resolution and not fade and final_images) else phase_images
            batch = batch_size(resolution)
            steps = max(1, math.ceil(length / batch))
            phases.append(Phase(resolution, fade, batch, steps, step, images))
            step, images = step + steps, images + steps * batch
        resolution *= 2
    return phases


def total_steps(phases: list[Phase]) -> int:
    return phases[-1].last_step


def stage_at(phases: list[Phase], step: int) -> Stage:
    """The stage of step `step` (1-based): alpha rises linearly from 0 at a fade's first step
    (the network is then the old one, upsampled) towards 1, by real images shown (Sec. 3)."""
    for phase in phases:
        if step <= phase.last_step:
            done = step - 1 - phase.first_step  # steps of this phase already taken
            alpha = done / phase.steps if phase.fade else 1.0
            return Stage(phase, alpha, phase.images_before + done * phase.batch_size, done == 0)
    raise ValueError(f"step {step} is past the schedule's end ({total_steps(phases)})")


def reals_at_stage(images: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Real images as the network sees them: 2x2-averaged down to `resolution` and, during a
    fade-in, blended with their own half-resolution copy by the same alpha as G's output
    (the official code's process_reals), so D compares like with like."""
    factor = images.shape[-1] // resolution
    x = F.avg_pool2d(images, factor) if factor > 1 else images
    if alpha < 1.0:
        coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(coarse, x, alpha)
    return x


def sample_z(n: int, nz: int, *, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I); G's first pixel norm puts it on the hypersphere (Appendix A.1). Drawn on
    `device` unless an explicit CPU `generator` is given (fixed latents), then moved."""
    where = device if generator is None else None
    z = torch.randn(n, nz, generator=generator, device=where)
    return z.to(device) if device is not None else z


def latents(options: dict, n: int, generator: torch.Generator) -> torch.Tensor:
    """What generate.py and evaluate.py feed G."""
    return sample_z(n, options["nz"], generator=generator)
