"""What every generate.py and evaluate.py shares: their flags, loading a generator from a
checkpoint, writing grids and single images, and the evaluation records.

A folder keeps only what is its own: how its generator is built from the stored options
(a `build(options)` function) and what it samples (z, labels, an interpolation).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
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


@dataclass
class Samples:
    """What a folder's draw() returns when a plain tensor is not enough: the images, the
    grid's columns, the single images' file names and a note for the terminal line."""

    images: torch.Tensor
    nrow: int | None = None
    names: list[str] | None = None
    note: str = ""


def from_prior(latents: Callable) -> Callable:
    """draw() for an unconditional G: --n latents from `latents(options, n, torch.Generator)`
    seeded with --seed, through G in batches."""
    def draw(G, options: dict, opt, device) -> torch.Tensor:
        return in_batches(G, latents(options, opt.n, torch.Generator().manual_seed(opt.seed)), device)
    return draw


def generate_script(model: str, description: str, build: Callable[[dict], torch.nn.Module], draw: Callable, *,
                    add_args: Callable | None = None, ema: bool = False, **parser_kw) -> tuple[Callable, Callable]:
    """(parse_opt, main) of a generate.py. main(opt) rebuilds G with `build(options)` from
    --checkpoint (the EMA weights if the run kept some, unless --no-ema, where `ema`), has
    `draw(G, options, opt, device)` make the images (a tensor, or Samples for a layout of
    its own) and writes them (write_images). `add_args(parser)` adds the folder's flags."""
    def parse_opt(argv=None):
        parser = generate_parser(model, description, **parser_kw)
        if ema:
            parser.add_argument("--no-ema", action="store_true", help="use the raw G weights even if an EMA was saved")
        if add_args is not None:
            add_args(parser)
        return parser.parse_args(argv)

    def main(opt) -> Path:
        from common.device import pick_device

        device = pick_device(opt.device)
        G, options = load_generator(opt.checkpoint, model, build, device,
                                    use_ema=ema and not getattr(opt, "no_ema", False))
        with torch.no_grad():
            samples = draw(G, options, opt, device)
        if isinstance(samples, torch.Tensor):
            samples = Samples(samples)
        return write_images(samples.images, opt, nrow=samples.nrow, names=samples.names, note=samples.note)

    return parse_opt, main


def run_script(parse_opt: Callable, main: Callable) -> None:
    """`if __name__ == "__main__"`: main(parse_opt()) with one-line errors (common.errors.run_main)."""
    from common.errors import run_main

    run_main(lambda: main(parse_opt()))


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


def evaluate_script(model: str, description: str, build: Callable[[dict], torch.nn.Module], latents: Callable,
                    build_dataset: Callable, *, ema: bool = False) -> tuple[Callable, Callable]:
    """(parse_opt, main) of an evaluate.py for an unconditional G: `build(options)` rebuilt
    from --checkpoint, fed `latents(options, n, torch.Generator)`, its images measured
    against the run's training data (`build_dataset(options)`), printed and appended to
    <run>/metrics.jsonl (common.metrics)."""
    def parse_opt(argv=None):
        parser = evaluate_parser(model, description)
        if ema:
            parser.add_argument("--no-ema", action="store_true", help="use the raw G weights even if an EMA was saved")
        return parser.parse_args(argv)

    def main(opt) -> list[dict]:
        from common import metrics
        from common.device import pick_device

        device = pick_device(opt.device)
        payload = load_for_inference(opt.checkpoint, model)
        G, options = load_generator(opt.checkpoint, model, build, device, payload=payload,
                                    use_ema=ema and not getattr(opt, "no_ema", False))
        reference = evaluator(opt, build_dataset(stored_data(options, opt.data_root)), options, device)
        z = latents(options, reference.n, torch.Generator().manual_seed(opt.seed))
        records = evaluation_records(opt, payload, reference, metrics.generate(G, z, device), model)
        metrics.report_records(records, opt.checkpoint, opt.jsonl)
        return records

    return parse_opt, main


def evaluation_records(opt, payload: dict, evaluator, images: torch.Tensor, model: str, **fields) -> list[dict]:
    """The generated images' report and, with --real, real half A against B, each naming
    the model, checkpoint, step and data (`fields`: more keys for both, e.g. the arch)."""
    common = {"model": model, "checkpoint": str(opt.checkpoint), "step": payload.get("step"),
              "data": payload["options"]["data"], **fields}
    records = [{**common, "what": "generated", **evaluator(images)}]
    if opt.real:
        records.append({**common, "what": "real A vs B", **evaluator.real_vs_real()})
    return records
