"""Run directory, logging, sample grids, progress bar and the safety nets.

runs/<name>/
  options.json        the resolved options of the run
  events.out.tfevents TensorBoard scalars (losses) and image grids
  samples/step_*.png  sample grids
  checkpoints/last.pt the latest checkpoint (see common.checkpoint)
Only rank 0 writes; other ranks get a Run whose methods do nothing.
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import torch

from common.errors import NonFiniteLossError


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices).

    deterministic=False lets cuDNN benchmark and pick the fastest kernels, which may
    differ from run to run: exact resume then holds on the CPU only. deterministic=True
    (--deterministic) turns benchmarking off and asks for deterministic algorithms
    everywhere (an op without one warns, naming itself), with cuBLAS's fixed workspace."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's deterministic mode needs it
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        if torch.are_deterministic_algorithms_enabled():  # switching it off imports torch's compiler
            torch.use_deterministic_algorithms(False)    # (seconds of start-up), so only when it is on
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.deterministic = False


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def options_dict(opt) -> dict:
    """argparse Namespace -> JSON-safe dict (also what checkpoints store)."""
    return {k: _jsonable(v) for k, v in vars(opt).items()}


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (Tanh output) -> [0, 1], clamped, float32 on CPU."""
    return ((x.detach().float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0)


def _grid_png(images: torch.Tensor, nrow: int | None) -> tuple[bytes, int, int, int]:
    """A batch in [-1, 1] as one PNG-encoded grid (torchvision's layout and rounding, as its
    save_image): the bytes, height, width and channels."""
    import io

    from PIL import Image
    from torchvision.utils import make_grid

    nrow = nrow or max(1, int(math.sqrt(images.shape[0])))
    grid = make_grid(to_image_range(images), nrow=nrow, padding=2, pad_value=1.0)
    array = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue(), array.shape[0], array.shape[1], array.shape[2]


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save a batch in [-1, 1] as one PNG grid (nrow defaults to a square)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_grid_png(images, nrow)[0])
    return path


def native_tensorboard_checksums() -> bool:
    """Give TensorBoard's event writer a CRC-32C in C. Without TensorFlow, tensorboard checksums
    every event record in pure Python: a sample grid of 256x256 images costs it about a second,
    on the writer's thread, holding the GIL while training goes on. The crc32c package
    (requirements.txt) computes the same checksum; the masking is TFRecord's, as tensorboard's
    own. False (and nothing changed) where either package lacks what this needs."""
    try:
        import crc32c
        from tensorboard.summary.writer import record_writer
    except ImportError:
        return False
    if not hasattr(record_writer, "masked_crc32c"):
        return False

    def masked_crc32c(data: bytes) -> int:
        crc = crc32c.crc32c(data)
        return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

    record_writer.masked_crc32c = masked_crc32c
    return True


class Run:
    """The files of one training run; every method is a no-op off rank 0."""

    def __init__(self, directory: str | Path, options: dict, is_main: bool = True):
        self.directory = Path(directory)
        self.is_main = is_main
        self.checkpoints = self.directory / "checkpoints"
        self.samples = self.directory / "samples"
        self.writer = None
        if is_main:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            self.samples.mkdir(parents=True, exist_ok=True)
            (self.directory / "options.json").write_text(json.dumps(options, indent=2, sort_keys=True) + "\n")
            from torch.utils.tensorboard import SummaryWriter

            native_tensorboard_checksums()
            self.writer = SummaryWriter(str(self.directory))
            print(f"run directory: {self.directory.resolve()}")

    def log_scalars(self, step: int, scalars: dict) -> None:
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, float(value), step)

    def sample_path(self, step: int, tag: str = "samples") -> Path:
        return self.samples / f"{tag}_{step:07d}.png"

    def save_samples(self, step: int, images: torch.Tensor, nrow: int | None = None, tag: str = "samples") -> Path | None:
        """Write samples/<tag>_<step>.png and the same grid to TensorBoard. The PNG is encoded
        once and TensorBoard gets its bytes: encoding a grid of 256x256 images takes about as
        long as one pass of a generator on a CPU."""
        if not self.is_main:
            return None
        png, height, width, channels = _grid_png(images, nrow)
        path = self.sample_path(step, tag)
        path.write_bytes(png)
        if self.writer is not None:
            from tensorboard.compat.proto.summary_pb2 import Summary

            image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
            self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
        return path

    def progress(self, total: int, initial: int):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, disable=not self.is_main, dynamic_ncols=True,
                    unit="step", desc=self.directory.name)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            print(f"run directory: {self.directory.resolve()}  "
                  f"(tensorboard --logdir {self.directory})")


def check_finite(step: int, losses: dict, last_checkpoint: Path) -> dict:
    """Losses as floats; a NaN/inf stops the run naming the step and the last good checkpoint."""
    values = {k: float(v) for k, v in losses.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        where = (f"the last good checkpoint is {last_checkpoint} (continue with --resume auto, "
                 f"perhaps with a lower learning rate)" if last_checkpoint.is_file()
                 else "no checkpoint was saved before it")
        raise NonFiniteLossError(f"non-finite loss at step {step} ({', '.join(f'{k}={values[k]}' for k in bad)}); "
                                 f"stopped without saving; {where}")
    return values


class GracefulStop:
    """First Ctrl-C asks the loop to stop after the current step (it then saves a
    checkpoint); a second one interrupts at once. Single-process runs only:
    under torchrun every rank must stop at the same step, so Ctrl-C is left alone."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.requested = False
        self._previous = None

    def __enter__(self):
        import signal
        import threading

        if self.enabled and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class TimeBudget:
    """`--max-minutes`: tells the loop when the wall-clock budget is spent. Under torchrun,
    rank 0's clock decides for every rank (a broadcast), so all ranks stop at the same step."""

    def __init__(self, minutes: float | None, info=None):
        import time

        self.seconds = None if minutes is None else 60.0 * minutes
        self.info = info
        self.start = time.monotonic()

    def spent(self) -> bool:
        import time

        if self.seconds is None:
            return False
        over = time.monotonic() - self.start >= self.seconds
        if self.info is not None and self.info.enabled:
            import torch.distributed as dist

            flag = torch.tensor([float(over)], device=self.info.device)
            dist.broadcast(flag, src=0)
            over = bool(flag.item())
        return over
