"""Clear errors for bad input, and the guard that turns them into one line.

Anything the user can fix (a missing folder, a corrupt image, a checkpoint of
another model, a NaN loss) raises `UserError`; `run_main` prints its message as a
single line on stderr and exits non-zero instead of showing a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable


class UserError(Exception):
    """An error whose message alone tells the user what to do."""

    exit_code = 2


class DataError(UserError):
    """Bad `--data`: missing or empty folder, unreadable image, unknown dataset."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, unsafe, or of another model/shape."""


class SkippedInputs(UserError):
    """Some inputs of a generate.py could not be used (each said why); the others were written."""

    exit_code = 5


class NonFiniteLossError(UserError):
    """A loss became NaN/inf; training stops before anything bad is saved."""

    exit_code = 3


OOM_HINT = ("out of memory: try a smaller --batch-size, --precision bf16 (CPU/GPU) or fp16 (CUDA), "
            "or a smaller --image-size")


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):  # torch.OutOfMemoryError since 2.5 is the same class
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _first_line_of_worker_error(exc: BaseException) -> str | None:
    """DataLoader workers re-raise our errors wrapped in a long traceback text;
    the last non-empty line is the original `DataError: message`."""
    text = str(exc)
    if "DataLoader worker" not in text:
        return None
    for line in reversed(text.strip().splitlines()):
        for name in ("DataError: ", "UserError: "):
            if line.startswith(name) or f".{name}" in line:
                return line.split(name, 1)[1]
    return None


def run_main(main: Callable[[], object]) -> None:
    """Call `main()`; user errors become one stderr line and an exit code."""
    try:
        main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - only to translate two well-known cases
        message = _first_line_of_worker_error(exc)
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(DataError.exit_code)
        if is_out_of_memory(exc):
            print(f"error: {OOM_HINT} ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
            sys.exit(4)
        raise
