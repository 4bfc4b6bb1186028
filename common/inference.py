"""What every generate.py and evaluate.py shares: their flags, loading a generator from a
checkpoint, writing grids and single images, and the evaluation records.

A folder keeps only what is its own: how its generator is built from the stored options
(a `build(options)` function) and what it samples (z, labels, an interpolation).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch

from common.checkpoint import load_for_inference, load_state_checked
from common.cli import positive_int
from common.errors import CheckpointError, UserError

GRID_NAME = "samples.png"  # the grid's name when --out is a folder


# ------------------------------------------------------------------ the flags
def writable_extensions() -> set[str]:
    """Image file extensions PIL can write (.png, .jpg, .webp, ...)."""
    from PIL import Image

    Image.init()
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}


def grid_path(text: str) -> Path:
    """`--out`: a file whose extension names an image format PIL writes, or a folder (an
    existing one, one written with a trailing slash, or a name without an extension),
    in which case the grid is <folder>/samples.png. Anything else is refused here, before
    any sampling, with the reason."""
    path = Path(text)
    if path.is_dir() or text.endswith(("/", "\\")) or not path.suffix:
        return path / GRID_NAME
    if path.suffix.lower() not in writable_extensions():
        raise argparse.ArgumentTypeError(f"{text}: {path.suffix!r} is not an image format this can write; "
                                         f"name a .png / .jpg / .webp file, or a folder (the grid is then "
                                         f"{GRID_NAME} inside it)")
    return path


def individual_folder(text: str) -> Path:
    """`--individual`: a folder for one PNG per image; an existing file there is refused."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder for the single images")
    return path


def add_generate_args(parser: argparse.ArgumentParser, *, model: str, n: int = 64,
                      n_help: str = "number of samples") -> None:
    """The flags every generate.py shares."""
    parser.add_argument("--checkpoint", required=True, help=f"a checkpoint written by {model}/train.py")
    parser.add_argument("--n", type=positive_int, default=n, help=f"{n_help} (default {n})")
    parser.add_argument("--out", type=grid_path, default=Path(GRID_NAME),
                        help=f"the grid: an image file (.png, .jpg, ...) or a folder to write {GRID_NAME} in "
                             f"(default {GRID_NAME})")
    parser.add_argument("--individual", type=individual_folder, default=None, metavar="DIR",
                        help="also write each image as DIR/00000.png ...")
    parser.add_argument("--seed", type=int, default=0, help="random seed for z (default 0)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")


def add_ema_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-ema", action="store_true", help="use the raw G weights even if an EMA was saved")


def generate_parser(model: str, description: str, *, ema: bool = False, **kw) -> argparse.ArgumentParser:
    """A generate.py's parser with the shared flags (and --no-ema where the run may keep an
    EMA of G); the folder adds its own."""
    parser = argparse.ArgumentParser(description=description)
    add_generate_args(parser, model=model, **kw)
    if ema:
        add_ema_arg(parser)
    return parser


def evaluate_parser(model: str, description: str, *, ema: bool = False) -> argparse.ArgumentParser:
    """An evaluate.py's parser with the shared flags (common.cli.add_evaluate_args)."""
    from common.cli import add_evaluate_args

    parser = argparse.ArgumentParser(description=description)
    add_evaluate_args(parser, model=model)
    if ema:
        add_ema_arg(parser)
    return parser


# ------------------------------------------------------------- many input files
def each_input(files: list, work: Callable, *, out, what: str = "image") -> list:
    """`work(f)` for every input file, under a progress bar (shown for more than one file). A
    file that cannot be used (a UserError about it: unreadable, too small, out-of-range labels)
    gets its line and is skipped; the others are still written, and the run then ends with a
    SkippedInputs error (exit status 5) that says how many were skipped. A single input file's
    error is its own one line. Returns what `work`
    returned for the files that were used."""
    import sys

    from tqdm import tqdm

    from common.errors import CheckpointError, SkippedInputs, UserError

    done, skipped = [], 0
    bar = tqdm(files, desc=f"{what}s", unit=what, disable=len(files) < 2, dynamic_ncols=True, file=sys.stderr)
    for f in bar:
        try:
            done.append(work(f))
        except CheckpointError:  # about the model, not this file: every other file would fail alike
            raise
        except UserError as exc:
            if len(files) == 1:  # the one file asked for: its own line is the whole story
                raise
            skipped += 1
            tqdm.write(f"skipped {f}: {exc}", file=sys.stderr)
    if skipped:
        raise SkippedInputs(f"skipped {skipped} of {len(files)} {what}(s), each said why above; the other "
                            f"{len(done)} were written to {out}")
    return done


# ------------------------------------------------------------- the generator
def load_generator(path, model_name: str, build: Callable[[dict], torch.nn.Module], device, *,
                   payload: dict | None = None, use_ema: bool = False) -> tuple[torch.nn.Module, dict]:
    """G rebuilt by `build(options)` from the options stored in the checkpoint, with its
    weights (the EMA's where `use_ema` and the run kept one), on `device` in eval mode.
    `payload`: the checkpoint already read by load_for_inference, to read it only once."""
    payload = payload or load_for_inference(path, model_name)
    options = payload["options"]
    try:
        G = build(options)
    except KeyError as exc:
        raise CheckpointError(f"{path}: options lack {exc}, needed to rebuild the generator") from exc
    state = payload["ema"]["module"] if use_ema and "ema" in payload else payload["models"]["G"]
    load_state_checked(G, state, what="G", path=path)
    return G.to(device).eval(), options


@torch.no_grad()
def in_batches(G: torch.nn.Module, z: torch.Tensor, device, batch_size: int = 256) -> torch.Tensor:
    """G(z) chunk by chunk, as fp32 on the CPU (memory stays bounded for any --n)."""
    return torch.cat([G(chunk.to(device)).float().cpu() for chunk in z.split(batch_size)])


def square_columns(n: int) -> int:
    """Columns of a near-square grid of n images."""
    return max(1, int(math.sqrt(n)))


# ------------------------------------------------------------------- output
def write_images(images: torch.Tensor, opt, *, nrow: int | None = None, names: list[str] | None = None,
                 note: str = "") -> Path:
    """The grid at --out (nrow columns, default near-square) and, with --individual, one PNG
    per image (`names`, default 00000.png ...); prints where they went."""
    from common.run import save_grid

    out = Path(opt.out)
    try:
        save_grid(images, out, nrow=nrow or square_columns(images.shape[0]))
        if opt.individual:
            folder = Path(opt.individual)
            for i, image in enumerate(images):
                save_grid(image.unsqueeze(0), folder / (names[i] if names else f"{i:05d}.png"), nrow=1)
    except OSError as exc:  # a read-only folder, a full disk
        raise UserError(f"cannot write the images: {exc}") from exc
    size = "x".join(str(s) for s in images.shape[-2:])
    print(f"wrote {out} ({images.shape[0]} images, {size}{'; ' + note if note else ''})")
    if opt.individual:
        print(f"wrote {images.shape[0]} images to {opt.individual}/")
    return out


# --------------------------------------------------------------- evaluation
def stored_data(options: dict, data_root: str | None = None) -> SimpleNamespace:
    """The options a folder's build_dataset needs, as the checkpoint stored them
    (`data_root` overrides where torchvision datasets live)."""
    return SimpleNamespace(**{**options, "data_root": data_root or options.get("data_root", "data")})


def evaluator(opt, dataset, options: dict, device):
    """The common.metrics.Evaluator for evaluate.py's flags and the run's training data."""
    from common import metrics

    return metrics.Evaluator(dataset, options["data"], n=opt.n, features=opt.features, device=device,
                             inception_weights=opt.inception_weights, seed=opt.seed)


def evaluation_records(opt, payload: dict, evaluator, images: torch.Tensor, model: str, **fields) -> list[dict]:
    """The generated images' report and, with --real, real half A against B, each naming
    the model, checkpoint, step and data (`fields`: more keys for both, e.g. the arch)."""
    common = {"model": model, "checkpoint": str(opt.checkpoint), "step": payload.get("step"),
              "data": payload["options"]["data"], **fields}
    records = [{**common, "what": "generated", **evaluator(images)}]
    if opt.real:
        records.append({**common, "what": "real A vs B", **evaluator.real_vs_real()})
    return records


def evaluate_samples(opt, model: str, build: Callable[[dict], torch.nn.Module], latents: Callable,
                     build_dataset: Callable, *, use_ema: bool = False) -> list[dict]:
    """evaluate.py's measure of an unconditional G: rebuilt by `build(options)` from --checkpoint
    (its EMA weights where `use_ema` and the run kept some), fed `latents(options, n, generator)`
    seeded with --seed, its images measured against the run's training data (`build_dataset`;
    half B of a fixed split, and half A too with --real), printed and appended to
    <run>/metrics.jsonl (or --jsonl)."""
    from common import metrics
    from common.device import pick_device

    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, model)
    G, options = load_generator(opt.checkpoint, model, build, device, payload=payload, use_ema=use_ema)
    reference = evaluator(opt, build_dataset(stored_data(options, opt.data_root)), options, device)
    z = latents(options, reference.n, torch.Generator().manual_seed(opt.seed))  # the same z for every evaluation
    records = evaluation_records(opt, payload, reference, metrics.generate(G, z, device), model)
    metrics.report_records(records, opt.checkpoint, opt.jsonl)
    return records
