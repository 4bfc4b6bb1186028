"""Sec. 3.4 after training: the k-means looks of a pix2pixHD model trained with --instance-feat
(the official code's separate script encode_features.py).

    python cluster_features.py --checkpoint runs/g1/checkpoints/last.pt     # -> runs/g1/features_clustered.npz
    python cluster_features.py --checkpoint runs/g1/checkpoints/step_0005000.pt --out styles_5000.npz

The encoder E maps every training scene (scaled as in training, neither flipped nor cropped)
to its instance-averaged features; for each class, k-means (k = 10) over the features of its
instances larger than 1/64 of the image gives that class's looks. generate.py and evaluate.py
read them (`--style random | cluster=K`; `--styles NPZ` for a file elsewhere than the run's).

train.py already runs this step (utils.write_styles) when an --instance-feat run ends; run
the script for a checkpoint copied out of a run, another k (--k), the data at another path
(--data), or a run that was killed before it ended.
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import argparse

from common.checkpoint import load_for_inference
from common.cli import positive_int
from common.device import pick_device
from common.errors import UserError, run_main
from .utils import MODEL_NAME, N_CLUSTERS, STYLES_FILE, load_encoder, styles_path, write_styles


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Sec. 3.4: cluster the instance features of a pix2pixHD model trained "
                                            "with --instance-feat into the looks generate.py --style picks from.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by pix2pixhd/train.py --instance-feat")
    p.add_argument("--out", default=None, metavar="NPZ",
                   help=f"where to write the centres (default: the run's {STYLES_FILE}, beside checkpoints/, "
                        f"where generate.py looks for them)")
    p.add_argument("--k", type=positive_int, default=N_CLUSTERS,
                   help=f"clusters per class (default {N_CLUSTERS}, the official --n_clusters)")
    p.add_argument("--data", default=None,
                   help="the training data (default: the run's --data; give it when the run's folder path does not "
                        "resolve from here)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    return p.parse_args(argv)


def main(opt) -> Path:
    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, MODEL_NAME)
    E = load_encoder(opt.checkpoint, payload, device)
    if E is None:
        raise UserError(f"{opt.checkpoint} was trained without --instance-feat: it has no features to cluster")
    options = {**payload["options"], **({"data": opt.data} if opt.data else {})}
    path = Path(opt.out) if opt.out else styles_path(opt.checkpoint)
    print(write_styles(E, options, device, path, opt.k))
    return path


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
