"""Does simple_gan's discriminator memorise the 1,797 embedded digits? A diagnosis, not a test.

    python benchmarks/simple_gan_memorisation.py                        # --arch seed, 60,000 steps
    python benchmarks/simple_gan_memorisation.py --arch paper --steps 12000 --every 1500
    python benchmarks/simple_gan_memorisation.py --arch seed --beta1 0.5
    python benchmarks/simple_gan_memorisation.py --arch seed --dropout-d 0.5     # the seed's D with dropout

Trains with simple_gan/train.py's own models, optimizers and train_step on 80% of the digits
and keeps 20% (359 images) that D never sees. Every --every steps it prints D's mean output on
the training digits, on the held-out digits and on G's samples, and the offline FID of 898
samples against the real digits (common/metrics.py). A D that tells the training digits from
unseen real ones (D(train) well above D(held out)) has memorised them, not learnt what a digit
is; when D(held out) falls to D(G(z)), unseen real digits look as fake to it as G's samples.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common import metrics
from common.data import Digits
from common.device import Precision
from simple_gan.train import ARCH_DEFAULTS, build_models, build_optimizers, parse_opt, train_step
from simple_gan.utils import apply_sgd_schedule, sample_z


@torch.no_grad()
def d_mean(D, x: torch.Tensor) -> float:
    """Mean D(x) (a probability) in eval mode (no dropout), in chunks."""
    D.eval()
    value = torch.cat([torch.sigmoid(D(c)) for c in x.split(512)]).mean().item()
    D.train()
    return value


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="seed", choices=list(ARCH_DEFAULTS))
    p.add_argument("--steps", type=int, default=60_000)
    p.add_argument("--every", type=int, default=6_000)
    p.add_argument("--beta1", type=float, default=None, help="--arch seed: Adam beta1 (default the seed's 0.9)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--dropout-d", type=float, default=None,
                   help="train.py's --dropout-d (default: paper 0.5, seed 0; the seed's D with 0.5 is the fix)")
    p.add_argument("--seed", type=int, default=0)
    opt_in = p.parse_args()
    argv = ["--arch", opt_in.arch, "--seed", str(opt_in.seed), "--device", "cpu", "--precision", "fp32"]
    argv += ["--beta1", str(opt_in.beta1)] if opt_in.beta1 is not None else []
    argv += ["--lr", str(opt_in.lr)] if opt_in.lr is not None else []
    argv += ["--dropout-d", str(opt_in.dropout_d)] if opt_in.dropout_d is not None else []
    opt = parse_opt(argv)
    torch.manual_seed(opt.seed)

    digits = Digits(opt.image_size)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(123))
    n_train = int(0.8 * len(digits))
    train_x, held_x = digits.images[order[:n_train]], digits.images[order[n_train:]]
    G, D = build_models(vars(opt) | {"channels": 1}, torch.utils.data.TensorDataset(train_x, torch.zeros(n_train)))
    opt_g, opt_d = build_optimizers(opt, G, D)
    prec = Precision("fp32", torch.device("cpu"))
    evaluator = metrics.Evaluator(digits, "digits", device="cpu")
    eval_z = sample_z(evaluator.n, opt.z_dim, opt.z_dist, generator=torch.Generator().manual_seed(1))
    steps_per_epoch = n_train // opt.batch_size
    print(f"simple_gan --arch {opt.arch}: lr {opt.lr}, batch {opt.batch_size}"
          + (f", beta1 {opt.beta1}" if opt.arch == "seed" else "") + f", D dropout {opt.dropout_d}"
          + f"; {n_train} training digits, "
          f"{len(held_x)} held out; D(.) = mean sigmoid output, eval mode")
    print("| step | D(train) | D(held out) | D(train) - D(held out) | D(G(z)) | FID (offline) | s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    start = time.perf_counter()
    perm, k = torch.randperm(n_train), 0
    for step in range(1, opt_in.steps + 1):
        if k + opt.batch_size > n_train:
            perm, k = torch.randperm(n_train), 0
        real = train_x[perm[k:k + opt.batch_size]]
        k += opt.batch_size
        if opt.arch == "paper":  # the authors' SGD schedule; --arch seed trains with Adam
            apply_sgd_schedule(opt, step, steps_per_epoch, (opt_g, opt_d))
        train_step(G, D, opt_g, opt_d, real, sample_z(real.shape[0], opt.z_dim, opt.z_dist), prec)
        if step % opt_in.every == 0:
            fakes = metrics.generate(G, eval_z, "cpu")
            d_train, d_held, d_fake = d_mean(D, train_x), d_mean(D, held_x), d_mean(D, fakes[:len(held_x)])
            fid = evaluator(fakes)["fid"]
            print(f"| {step:,} | {d_train:.3f} | {d_held:.3f} | {d_train - d_held:+.3f} | {d_fake:.3f} | {fid:.1f} "
                  f"| {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
