"""Device, precision and memory-format choices shared by every train.py.

`--device auto` picks cuda, then mps, then cpu. `--precision auto` picks what
benchmarks/throughput.py measured fastest without hurting results: bf16 autocast
on a CPU with native bfloat16 (oneDNN reports AVX512-BF16 / AMX), fp32 on other
CPUs (there bf16 convolutions fall back to slow reference kernels: 10-80x slower
on the project's AVX2 machine) and on GPUs (opt into AMP with bf16/fp16).
fp16 needs a GradScaler, and PyTorch only scales gradients reliably on CUDA,
so fp16 elsewhere is refused with a hint to use bf16. `--channels-last` unset
(auto) follows the model's own measured table (resolve_channels_last): the NHWC
format speeds some networks up and slows others down.
"""
from __future__ import annotations

import contextlib

import torch

from common.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def pick_device(name: str = "auto") -> torch.device:
    """Resolve `--device`: auto | cpu | cuda | cuda:N | mps."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine (try --device cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {name}: MPS is not available on this machine (try --device cpu)")
    return device


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN has native bfloat16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        import warnings

        warnings.warn("--precision bf16: this CPU has no native bfloat16 (no AVX512-BF16/AMX); "
                      "bf16 convolutions run far slower than fp32 here", stacklevel=2)
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device (its GradScaler); use --precision bf16 on "
                        f"{device.type}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("--precision bf16: this GPU has no bfloat16 support; use --precision fp16")
    return precision


def device_kind(device: torch.device, precision: str) -> str:
    """The kind of machine a memory-format choice was measured on: 'cuda', 'cpu-bf16' (bf16
    autocast on a CPU) or 'cpu-fp32' (fp32 on a CPU); other devices give their type ('mps')."""
    if device.type == "cpu":
        return "cpu-bf16" if precision == "bf16" else "cpu-fp32"
    return device.type


def resolve_channels_last(flag: bool | None, device: torch.device, precision: str = "fp32",
                          measured: dict[str, bool] | None = None) -> bool:
    """`--channels-last/--no-channels-last` force a memory format; unset (auto) looks up the
    model's own table {device kind: channels_last?}, which its folder fills from
    benchmarks/throughput.py: NHWC speeds up small convolutions at large batches and slows
    down a batch-1 U-Net or ResNet at 256x256 on a CPU, so no single default fits every model.
    A kind the table does not name (an unmeasured device) gets NCHW, PyTorch's default."""
    if flag is not None:
        return flag
    return bool((measured or {}).get(device_kind(device, precision), False))


class GradScaler(torch.amp.GradScaler):
    """torch's GradScaler, counting the updates whose gradients overflowed.

    GradScaler.step skips an optimizer step whose gradients hold an inf/NaN and update()
    then lowers the scale: that is how fp16 training finds its scale, not an error.
    `skipped_updates` lets common.loop tell such a step from a diverged run."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped_updates = 0

    def update(self, new_scale=None) -> None:
        if not self.is_enabled() or new_scale is not None:
            super().update(new_scale)
            return
        before = self.get_scale()
        super().update()
        if self.get_scale() < before:  # only an overflow lowers the scale (backoff_factor < 1)
            self.skipped_updates += 1


class Precision:
    """Autocast context and GradScaler for one `--precision` choice.

    A training step follows PyTorch's AMP recipe: forward passes and losses under
    `with prec.autocast():`, then per optimizer `opt.zero_grad()`,
    `prec.scaler.scale(loss).backward()` and `prec.scaler.step(opt)`, and one
    `prec.scaler.update()` per iteration after the last step. With fp32/bf16 the scaler
    is disabled and scale/step/update are a plain backward, a plain step and nothing.
    """

    def __init__(self, precision: str, device: torch.device):
        self.device = device
        self.mode = resolve_precision(precision, device)
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.mode]
        self.scaler = GradScaler(device.type, enabled=self.mode == "fp16")

    def autocast(self):
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def __repr__(self) -> str:
        return f"Precision({self.mode} on {self.device})"


def prepare_model(model: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """Move a model to `device`, in channels_last memory format when asked."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """`--compile`: torch.compile the module (checkpoints still hold the plain module)."""
    return torch.compile(model) if enabled else model


def to_input(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move a batch to the device; image batches (4-D) go channels_last when asked."""
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def adam(params, *, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """torch.optim.Adam with the update fused into one kernel where PyTorch has one for the
    parameters' device (CUDA; the CPU since torch 2.4), else the default implementation.
    The update is Adam's either way; at batch 1 on a CPU the default multi-tensor Adam can
    take half of a large generator's step (benchmarks/throughput.py measures both)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, ValueError):  # no fused kernel for this device or torch version
        return torch.optim.Adam(params, lr=lr, betas=betas)
