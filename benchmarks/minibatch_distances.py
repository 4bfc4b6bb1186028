"""The L1 distances of minibatch discrimination (dcgan/model.py, Salimans et al. 2016, Sec. 3.2)
two ways: torch.cdist(p=1), which the layer uses, against broadcasting M_i - M_j to
(n, n, B, C). Prints the median time of each, forward only and forward + backward.

    python benchmarks/minibatch_distances.py                 # demo size: n 128, A 2,048, B 100, C 5
    python benchmarks/minibatch_distances.py --n 64 --features 16384
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.utils.benchmark import Timer

from dcgan.model import MinibatchDiscrimination


def broadcast_distances(layer: MinibatchDiscrimination, f: torch.Tensor) -> torch.Tensor:
    """[b, i, j] = ||M_{i,b} - M_{j,b}||_L1 through an (n, n, B, C) difference tensor."""
    n = f.shape[0]
    M = (f @ layer.T.view(layer.in_features, -1)).view(n, layer.kernels, layer.kernel_dims)
    return (M.unsqueeze(0) - M.unsqueeze(1)).abs().sum(3).permute(2, 0, 1)


def forward_backward(distances, f: torch.Tensor) -> None:
    f = f.detach().requires_grad_(True)
    torch.exp(-distances(f)).sum().backward()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=128, help="minibatch size (default 128)")
    p.add_argument("--features", type=int, default=2048, help="A, the length of f(x_i) (default 2,048)")
    p.add_argument("--kernels", type=int, default=100, help="B (default 100)")
    p.add_argument("--dims", type=int, default=5, help="C (default 5)")
    p.add_argument("--min-time", type=float, default=3.0, help="seconds per measurement (default 3)")
    opt = p.parse_args(argv)
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(opt.features, opt.kernels, opt.dims)
    f = torch.randn(opt.n, opt.features)
    ways = {"cdist": layer.distances, "broadcast": lambda x: broadcast_distances(layer, x)}
    with torch.no_grad():
        torch.testing.assert_close(ways["broadcast"](f), ways["cdist"](f), rtol=1e-4, atol=1e-3)  # same numbers
    print(f"n={opt.n}, A={opt.features}, B={opt.kernels}, C={opt.dims}; {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    for label, stmt in [("forward", "with torch.no_grad(): fn(f)"), ("forward+backward", "forward_backward(fn, f)")]:
        times = {}
        for name, fn in ways.items():
            timer = Timer(stmt, globals=dict(fn=fn, f=f, torch=torch, forward_backward=forward_backward))
            times[name] = timer.blocked_autorange(min_run_time=opt.min_time).median
        print(f"{label:17s} cdist {times['cdist'] * 1e3:7.1f} ms   broadcast {times['broadcast'] * 1e3:7.1f} ms   "
              f"cdist is {times['broadcast'] / times['cdist']:.1f}x faster")


if __name__ == "__main__":
    main()
