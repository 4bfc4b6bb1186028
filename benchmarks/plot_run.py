"""Plot a training scalar from a run's TensorBoard events beside the metrics that
evaluate.py / `train.py --eval-every` wrote to the run's metrics.jsonl.

    python benchmarks/plot_run.py runs/wgan-digits --scalar train/wasserstein_estimate \
        --metrics fid swd --out wgan/assets/wasserstein_vs_fid.png

Top panel: the scalar at every logged step (thin) and its moving median over
--smooth steps (thick). Bottom panel: each metric at the steps it was measured.
Needs matplotlib (`pip install matplotlib`), which the training code does not.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Plot a run's scalar beside its evaluation metrics.")
    p.add_argument("run", help="run directory (TensorBoard events and metrics.jsonl)")
    p.add_argument("--scalar", default="train/wasserstein_estimate", help="TensorBoard scalar tag")
    p.add_argument("--metrics", nargs="+", default=["fid", "swd"], help="keys of metrics.jsonl records")
    p.add_argument("--smooth", type=int, default=25, help="moving-median window in logged points (default 25)")
    p.add_argument("--title", default=None, help="figure title (default: the run directory)")
    p.add_argument("--out", required=True, help="PNG to write")
    return p.parse_args(argv)


def read_scalar(run: Path, tag: str) -> tuple[list[int], list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})  # 0 = keep every point
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        sys.exit(f"error: {run} has no scalar {tag!r}; it has {sorted(acc.Tags()['scalars'])}")
    events = acc.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def read_metrics(run: Path, keys: list[str]) -> dict[str, tuple[list[int], list[float]]]:
    path = run / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    records = [r for r in records if r.get("what", "generated") == "generated"]
    by_step = {r["step"]: r for r in records}  # the last record per step wins
    return {k: ([s for s in sorted(by_step) if k in by_step[s]], [by_step[s][k] for s in sorted(by_step)
                                                                   if k in by_step[s]]) for k in keys}


def moving_median(values: list[float], window: int) -> list[float]:
    half = max(window // 2, 0)
    return [statistics.median(values[max(0, i - half):i + half + 1]) for i in range(len(values))]


def main(argv=None) -> Path:
    opt = parse_opt(argv)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("error: plotting needs matplotlib: pip install matplotlib")
    run = Path(opt.run)
    steps, values = read_scalar(run, opt.scalar)
    metrics = read_metrics(run, opt.metrics)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    top.plot(steps, values, lw=0.5, alpha=0.4, color="tab:blue")
    top.plot(steps, moving_median(values, opt.smooth), lw=2, color="tab:blue",
             label=f"{opt.scalar} (moving median of {opt.smooth})")
    top.legend(loc="upper right", fontsize=8)
    top.set_title(opt.title or str(run), fontsize=10)
    for i, (key, (ms, mv)) in enumerate(metrics.items()):
        axis = bottom if i == 0 else bottom.twinx()
        if i > 1:
            axis.spines["right"].set_position(("axes", 1.0 + 0.12 * (i - 1)))
        color = f"C{i + 1}"
        axis.plot(ms, mv, "o-", color=color, label=key)
        axis.set_ylabel(key, color=color)
    bottom.set_xlabel("step (generator iterations)")
    fig.tight_layout()
    out = Path(opt.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
