"""The flags every train.py (and every evaluate.py) shares, with the same names and meanings everywhere.

Paper hyper-parameters (batch size, learning rates, epochs, image size) are
declared in each train.py, next to the paper they come from; this adds the
plumbing flags only.
"""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def set_help(parser: argparse.ArgumentParser, flag: str, text: str) -> None:
    """Replace a shared flag's help (`--eval-every` or its dest `eval_every`) where a folder gives
    it another meaning: `--help` then says what the flag does there."""
    dest = flag.lstrip("-").replace("-", "_")
    for action in parser._actions:
        if action.dest == dest:
            action.help = text
            return
    raise ValueError(f"no flag {flag} to re-describe")


def non_negative_float(text: str) -> float:
    """A weight or rate where 0 switches the term off."""
    value = float(text)
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = off), got {text}")
    return value


def resolve_arch_defaults(opt: argparse.Namespace, defaults: dict[str, dict]) -> argparse.Namespace:
    """For a folder with several `--arch`es whose defaults differ: fill each flag left unset
    (None) with `defaults[opt.arch]`'s value, so options.json holds the resolved numbers."""
    for key, value in defaults[opt.arch].items():
        if getattr(opt, key) is None:
            setattr(opt, key, value)
    return opt


def add_common_args(parser: argparse.ArgumentParser, *, model: str, data: str, channels: int = 3,
                    log_every: int = 50, sample_every: int = 500, save_every: int = 1000) -> None:
    g = parser.add_argument_group("data, run directory and plumbing (same flags in every folder)")
    g.add_argument("--data", default=data,
                   help=f"digits | photos (embedded, offline) | mnist | fashion-mnist | cifar10 | celeba "
                        f"(torchvision, downloads into --data-root) | path to a folder of images "
                        f"(default: {data})")
    g.add_argument("--data-root", default="data", help="where torchvision datasets live (default: data)")
    g.add_argument("--channels", type=int, default=channels,
                   help=f"image channels for an image folder, 1 (grey) or 3 (RGB) (default {channels}); the embedded "
                        f"and torchvision datasets set their own")
    g.add_argument("--out", default=None,
                   help=f"run directory (default: runs/{model}-<data>); holds options.json, TensorBoard "
                        f"events, samples/ and checkpoints/")
    g.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many optimizer steps in total (demos, tests; default: no limit)")
    g.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop (and save) once this much wall-clock time has passed: a fixed compute budget "
                        "(benchmarks/quality.py; default: no limit)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="autocast precision; auto = bf16 on CPUs with native bfloat16 (AVX512-BF16/AMX), "
                        "fp32 otherwise (see benchmarks/throughput.py); fp16 needs CUDA (GradScaler)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="force the NHWC memory format on or off (default: auto, the format measured faster for "
                        "this model on this kind of device and precision: the folder README's Speed section)")
    g.add_argument("--compile", action="store_true", help="torch.compile the models")
    g.add_argument("--workers", type=int, default=0,
                   help="DataLoader worker processes (default 0: the embedded data sit in memory)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels (cudnn.benchmark off, torch.use_deterministic_algorithms): "
                        "a resumed GPU run then repeats an unbroken one exactly, at some cost in speed; on the "
                        "CPU resume is exact without it (default off)")
    g.add_argument("--resume", default=None, metavar="auto|PATH",
                   help="continue a run: auto = <out>/checkpoints/last.pt if it exists, or a path")
    g.add_argument("--log-every", type=positive_int, default=log_every,
                   help=f"TensorBoard scalars every N steps (default {log_every})")
    g.add_argument("--sample-every", type=positive_int, default=sample_every,
                   help=f"sample grid every N steps (default {sample_every}); one is always saved at the end")
    g.add_argument("--save-every", type=positive_int, default=save_every,
                   help=f"checkpoint every N steps (default {save_every}); one is always saved at the end")
    g.add_argument("--eval-every", type=int, default=0,
                   help="every N steps, FID/KID/SWD/MS-SSIM with the offline features to TensorBoard and "
                        "<out>/metrics.jsonl, as evaluate.py computes them (default 0: off)")
    g.add_argument("--eval-n", type=positive_int, default=None,
                   help="images per evaluation (default: half the data, at most 10,000; see common/metrics.py)")


def default_out(opt, model: str) -> str:
    """runs/<model>-<data name> unless --out was given."""
    if opt.out:
        return opt.out
    from pathlib import Path

    name = Path(opt.data).name if opt.data not in ("", ".") else "data"
    return str(Path("runs") / f"{model}-{name}")


def add_evaluate_args(parser: argparse.ArgumentParser, *, model: str) -> None:
    """The flags every evaluate.py shares (common/metrics.py does the measuring)."""
    from common.metrics import INCEPTION_FILE

    parser.add_argument("--checkpoint", required=True, help=f"a checkpoint written by {model}/train.py")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="generated (and real) images (default: half the data, at most 10,000)")
    parser.add_argument("--features", default="auto", choices=["auto", "offline", "inception"],
                        help="auto (default): Inception when its weights are cached or can be downloaded, else "
                             "the offline features, said so; inception: torch-fidelity's InceptionV3 (downloaded "
                             "once when online); offline: the project's own features, no download")
    parser.add_argument("--inception-weights", default=None, metavar="PATH",
                        help=f"{INCEPTION_FILE} (default: torch hub's checkpoints folder)")
    parser.add_argument("--real", action="store_true", help="also report real half A against half B (reference)")
    parser.add_argument("--data-root", default=None, help="override the data root stored in the checkpoint")
    parser.add_argument("--jsonl", default=None, help="append results here (default: <run>/metrics.jsonl)")
    parser.add_argument("--seed", type=int, default=0, help="seed for z and the metrics' random draws (default 0)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
