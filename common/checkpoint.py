"""One checkpoint file per save, holding everything a run needs to continue.

A checkpoint is a plain dict of tensors, numbers and strings, so it loads with
`torch.load(..., weights_only=True)`: a file that holds arbitrary pickled Python
objects is refused instead of executed. It holds every model (the unwrapped
module: no `module.` / `_orig_mod.` prefixes), every optimizer, the GradScaler,
the EMA, step and epoch, the RNG states of torch / CUDA / numpy / python (of every
rank under torchrun), and the run's options.

Writes are atomic: the file is written to a temporary name in the same folder,
flushed to disk, then renamed over the old one, so a crash mid-save leaves the
previous checkpoint intact.
"""
from __future__ import annotations

import os
import pickle
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from common.distributed import unwrap_all
from common.errors import CheckpointError

FORMAT_VERSION = 1
LAST = "last.pt"
_PREFIXES = ("module.", "_orig_mod.")


# --------------------------------------------------------------------------- RNG
def rng_state() -> dict:
    """RNG states of torch (CPU and every CUDA device), numpy and python, as tensors/ints."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_s = state["numpy"]
    np.random.set_state(("MT19937", np_s["keys"].numpy().astype(np.uint32), np_s["pos"],
                         np_s["has_gauss"], np_s["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------- save / load
def atomic_save(payload: dict, path: str | Path) -> Path:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
        _fsync_dir(path.parent)  # make the rename itself durable
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_file(path: str | Path) -> dict:
    """Load a checkpoint safely (weights_only=True); a missing, empty, truncated or corrupt
    file, or one that holds pickled Python objects, is a one-line CheckpointError that
    says which of these it is."""
    payload = load_tensors(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION or "models" not in payload:
        raise CheckpointError(f"{path} is not a checkpoint written by this project")
    return payload


def load_tensors(path: str | Path):
    """torch.load(path, weights_only=True) with load_file's one-line errors, for any file of
    tensors (a checkpoint, or released weights: a plain state dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    unreadable = _unreadable(path)
    if unreadable:
        raise CheckpointError(f"{path} is not a usable checkpoint: {unreadable}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _pickles_objects(path):  # well formed, but it holds objects that are not tensors
            raise CheckpointError(f"refusing to load {path}: it holds arbitrary Python objects, not only "
                                  f"tensors (loading it could run code); only checkpoints written by this "
                                  f"project are accepted") from exc
        raise CheckpointError(f"{path} is not a usable checkpoint: it is corrupt (its contents cannot be "
                              f"decoded)") from exc
    except (RuntimeError, EOFError, OSError, ValueError, UnicodeDecodeError, KeyError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"{path} is not a usable checkpoint: it is truncated or corrupt ({detail})") from exc
    return payload


# what the pickle inside a torch.save file of tensors and plain containers refers to
_TENSOR_MODULES = ("torch", "collections", "builtins", "_codecs")


def _pickles_objects(path: Path) -> bool:
    """True when the file is well formed but its pickle refers to classes or functions
    beyond tensors and plain containers (read with pickletools, which decodes without
    executing anything): the pickle inside a torch.save archive, or a plain pickle file."""
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                stream = io.BytesIO(archive.read(name))
            for op, arg, _ in pickletools.genops(stream):
                if op.name == "GLOBAL" and not str(arg).split(" ")[0].startswith(_TENSOR_MODULES):
                    return True
                if op.name in ("STACK_GLOBAL", "INST", "OBJ"):  # torch.save writes none of these
                    return True
            return False
        with open(path, "rb") as f:
            return any(op.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ") for op, _, _ in pickletools.genops(f))
    except Exception:  # noqa: BLE001 - not a valid pickle stream: corrupt
        return False


def _unreadable(path: Path) -> str:
    """Why `path` cannot be a torch.save file, judged from its bytes ('' if it may be one).
    torch.save writes a zip archive (PK...) whose index sits at the end, so a cut-off
    write leaves a file that starts like a zip but is not one; the legacy format is a
    pickle (first byte 0x80)."""
    import zipfile

    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes; an interrupted copy or save?)"
    with open(path, "rb") as f:
        head = f.read(4)
    if zipfile.is_zipfile(path) or head[:1] == b"\x80":
        return ""
    if head == b"PK\x03\x04":
        return f"it is truncated ({size:,} bytes, cut off before the end of the archive; an interrupted copy or save?)"
    return "it is not a PyTorch file at all (corrupt, or another kind of file)"


def strip_prefixes(state_dict: dict) -> dict:
    """Drop a DDP (`module.`) or torch.compile (`_orig_mod.`) prefix shared by every key."""
    changed = True
    while changed and state_dict:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
                changed = True
    return state_dict


def check_model_name(payload: dict, model_name: str, path: str | Path) -> None:
    found = payload.get("model_name")
    if found != model_name:
        raise CheckpointError(f"{path} is a checkpoint of {found!r}, not of {model_name!r}: "
                              f"point --checkpoint/--resume at a {model_name} run")


def state_mismatch(module: torch.nn.Module, state_dict: dict) -> str:
    """'' when `state_dict` fits `module`, else a one-line description of what differs."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and torch.is_tensor(v)  # not a module's extra state
              and (not torch.is_tensor(state_dict[k]) or tuple(state_dict[k].shape) != tuple(v.shape))]
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} shape(s) differ, e.g. {shapes[0]}")
    if missing:
        parts.append(f"{len(missing)} missing key(s), e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]}")
    return "; ".join(parts)


def _fit_keys(module: torch.nn.Module, state_dict: dict) -> dict:
    """Strip wrapper prefixes only when the keys do not already fit the model."""
    return state_dict if set(state_dict) == set(module.state_dict()) else strip_prefixes(state_dict)


def checked_state(module: torch.nn.Module, state_dict: dict, *, what: str, path: str | Path,
                  option_diff: str = "") -> dict:
    """`state_dict` with wrapper prefixes fitted to `module`; a key or shape mismatch
    raises a CheckpointError naming what differs (and the options behind it) in one line."""
    state_dict = _fit_keys(module, state_dict)
    problem = state_mismatch(module, state_dict)
    if problem:
        hint = f"; options that differ: {option_diff}" if option_diff else ""
        raise CheckpointError(f"{path}: {what} does not match this model ({problem}){hint}")
    return state_dict


def load_state_checked(module: torch.nn.Module, state_dict: dict, *, what: str, path: str | Path,
                       option_diff: str = "") -> None:
    """load_state_dict, but a key or shape mismatch names what differs in one line."""
    module.load_state_dict(checked_state(module, state_dict, what=what, path=path, option_diff=option_diff))


def renamed_state(state: dict, theirs: Callable[[str], str], own: dict, *, path: str | Path, what: str) -> dict:
    """A state dict saved by another code base (released weights), its keys renamed to ours:
    `theirs(key)` is the other code's name for our key, `own` is our module's state dict. The
    first key that does not fit, in our module's order (missing, of another shape, or
    unexpected), is a one-line CheckpointError naming it. BatchNorm's num_batches_tracked,
    which PyTorch before 0.4.1 did not save, is filled with 0 where it is missing."""
    names = {key: theirs(key) for key in own}
    renamed = {}
    for key, value in own.items():
        theirs_key = names[key]
        if theirs_key not in state:
            if key.endswith("num_batches_tracked"):
                renamed[key] = torch.zeros_like(value)
                continue
            raise CheckpointError(f"{path}: {what} lacks {theirs_key} (and perhaps more): it is not the whole network, "
                                  f"or another configuration")
        tensor = state[theirs_key]
        if not torch.is_tensor(tensor) or tuple(tensor.shape) != tuple(value.shape):
            shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
            raise CheckpointError(f"{path}: {what} has {theirs_key} of shape {shape}, where this network needs "
                                  f"{tuple(value.shape)}: another configuration")
        renamed[key] = tensor
    known = set(names.values())
    unexpected = [k for k in state if k not in known]
    if unexpected:
        raise CheckpointError(f"{path}: {what} has {unexpected[0]}, which this network has no place for "
                              f"({len(unexpected)} such key(s)): another configuration")
    return renamed


def describe_option_diff(saved: dict, current: dict, keys: Iterable[str]) -> str:
    diffs = [f"{k}={saved.get(k)!r} in checkpoint, {current.get(k)!r} now" for k in keys
             if k in saved and saved.get(k) != current.get(k)]
    return ", ".join(diffs)


def _cloned(tree):
    """A copy of the tensors of a nested dict/list (the rest as it is)."""
    if isinstance(tree, torch.Tensor):
        return tree.clone()
    if isinstance(tree, dict):
        return {k: _cloned(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cloned(v) for v in tree)
    return tree


class PendingSave:
    """One checkpoint file being written (atomic_save), on a thread or at once; `wait()`
    returns its path once it is on disk and re-raises what went wrong. `seconds` and
    `nbytes` say what the write cost, for the run's last lines."""

    def __init__(self, path: Path, payload: dict | None, background: bool):
        self.path, self.seconds, self.nbytes = path, 0.0, 0
        self._error: BaseException | None = None
        self._thread = None
        if payload is None:  # not rank 0: nothing to write
            return
        if background:
            self._thread = threading.Thread(target=self._write, args=(payload,), name="checkpoint", daemon=False)
            self._thread.start()
        else:
            self._write(payload)

    def _write(self, payload: dict) -> None:
        start = time.perf_counter()
        try:
            atomic_save(payload, self.path)
            self.nbytes = self.path.stat().st_size
        except BaseException as error:  # handed to the caller by wait()
            self._error = error
        self.seconds = time.perf_counter() - start

    def wait(self) -> Path:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.path

    def describe(self) -> str:
        """'654 MiB, written in 2.1 s' (empty where nothing was written here)."""
        if not self.nbytes:
            return ""
        mib = self.nbytes / 2**20
        return f"{mib:,.{0 if mib >= 10 else 1}f} MiB, written in {self.seconds:.1f} s"


# ------------------------------------------------------------------ Checkpointer
class Checkpointer:
    """Saves and restores one training run's complete state.

    `models`/`optimizers` are dicts name -> object; `scaler` a GradScaler; `ema` an
    object with state_dict/load_state_dict; `states` any other objects with
    state_dict/load_state_dict that a run needs to continue exactly (learning-rate
    schedulers, CycleGAN's image pools). `arch_options` name the options that
    decide tensor shapes, so a mismatch can say e.g. "ngf=64 in checkpoint, 128 now".
    Under torchrun every rank calls `save` (RNG states are gathered); rank 0 writes.
    """

    def __init__(self, directory: str | Path, *, model_name: str, models: dict, optimizers: dict,
                 options: dict, scaler=None, ema=None, arch_options: Iterable[str] = (),
                 is_main: bool = True, states: dict | None = None):
        self.directory = Path(directory)
        self.model_name = model_name
        self.models = {k: unwrap_all(m) for k, m in models.items()}
        self.optimizers = optimizers
        self.scaler = scaler
        self.ema = ema
        self.states = dict(states or {})
        self.options = options
        self.arch_options = tuple(arch_options)
        self.is_main = is_main
        self.last_save: PendingSave | None = None

    @property
    def last_path(self) -> Path:
        return self.directory / LAST

    def state(self, step: int, epoch: int) -> dict:
        rngs = [rng_state()]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rngs = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(rngs, rng_state())
        payload: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "model_name": self.model_name,
            "step": int(step),
            "epoch": int(epoch),
            "models": {k: m.state_dict() for k, m in self.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "rng": rngs,
            "options": dict(self.options),
        }
        if self.scaler is not None:
            payload["scaler"] = self.scaler.state_dict()
        if self.ema is not None:
            payload["ema"] = self.ema.state_dict()
        if self.states:
            payload["states"] = {k: s.state_dict() for k, s in self.states.items()}
        return payload

    def save(self, step: int, epoch: int, name: str = LAST) -> Path:
        return self.save_in_background(step, epoch, name, background=False).wait()

    def save_in_background(self, step: int, epoch: int, name: str = LAST, *, background: bool = True) -> "PendingSave":
        """Take the run's state now and write it while the caller goes on (the end of a run
        draws its last grid meanwhile: a large G's checkpoint takes seconds to write). The
        state holds the live parameters and optimizer moments, which nothing changes before
        `wait()`; buffers and the EMA are copied, because drawing a grid in the paper's test
        mode updates BatchNorm's running statistics before restoring them."""
        payload = self.state(step, epoch)  # collective under torchrun: every rank calls it
        if background:
            for key, module in self.models.items():
                buffers = {n for n, _ in module.named_buffers()}
                payload["models"][key] = {k: v.clone() if k in buffers else v for k, v in payload["models"][key].items()}
            if "ema" in payload:
                payload["ema"] = _cloned(payload["ema"])
        pending = PendingSave(self.directory / name, payload if self.is_main else None, background)
        self.last_save = pending
        return pending

    def load(self, path: str | Path) -> dict:
        """Restore everything from `path`; return the payload (step, epoch, options)."""
        payload = load_file(path)
        check_model_name(payload, self.model_name, path)
        diff = describe_option_diff(payload.get("options", {}), self.options, self.arch_options)
        states = {}
        for name, module in self.models.items():  # check everything before changing anything
            if name not in payload["models"]:
                raise CheckpointError(f"{path} holds no weights for {name!r}")
            states[name] = checked_state(module, payload["models"][name], what=name, path=path, option_diff=diff)
        for name, obj in self.states.items():
            if name not in payload.get("states", {}):
                raise CheckpointError(f"{path} holds no state for {name!r}")
            if set(payload["states"][name]) != set(obj.state_dict()):  # e.g. a schedule of an older version
                raise CheckpointError(f"{path}: its {name!r} state does not fit this code's (keys "
                                      f"{sorted(payload['states'][name])} vs {sorted(obj.state_dict())})")
        for name, module in self.models.items():
            module.load_state_dict(states[name])
        for name, optimizer in self.optimizers.items():
            if name not in payload["optimizers"]:
                raise CheckpointError(f"{path} holds no state for optimizer {name!r}")
            optimizer.load_state_dict(payload["optimizers"][name])
        if self.scaler is not None and "scaler" in payload:
            self.scaler.load_state_dict(payload["scaler"])
        if self.ema is not None:
            if "ema" not in payload:
                raise CheckpointError(f"{path} has no EMA weights but this run uses an EMA")
            self.ema.load_state_dict(payload["ema"])
        for name, obj in self.states.items():
            obj.load_state_dict(payload["states"][name])
        rank = torch.distributed.get_rank() if (torch.distributed.is_available()
                                                and torch.distributed.is_initialized()) else 0
        rngs = payload["rng"]
        if rank < len(rngs):
            set_rng_state(rngs[rank])
        return payload

    def resume(self, resume: str | None) -> tuple[int, int]:
        """`--resume auto|PATH`: restore and return (step, epoch); (0, 0) for a fresh start."""
        if not resume:
            return 0, 0
        if resume == "auto":
            if not self.last_path.is_file():
                if self.is_main:
                    print(f"--resume auto: no checkpoint at {self.last_path}, starting from step 0")
                return 0, 0
            path = self.last_path
        else:
            path = Path(resume)
        payload = self.load(path)
        if self.is_main:
            print(f"resumed from {path} at step {payload['step']}")
        return payload["step"], payload["epoch"]


def load_for_inference(path: str | Path, model_name: str) -> dict:
    """Load a checkpoint for generate.py: checks it belongs to `model_name`."""
    payload = load_file(path)
    check_model_name(payload, model_name, path)
    return payload
