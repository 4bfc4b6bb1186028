"""Compare training runs: mean and spread of each logged loss over the last steps, and
their final sample grids side by side (e.g. the same seed in two precision modes).

    python benchmarks/compare_runs.py runs/demo runs/demo-nchw --last 500 --grid compare.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--last", type=int, default=500, help="average over the last N steps (default 500)")
    p.add_argument("--grid", default=None, help="write the runs' last sample grids side by side here")
    opt = p.parse_args()
    import statistics

    data = {run: scalars(run) for run in opt.runs}
    tags = sorted(set.intersection(*(set(d) for d in data.values())))
    print("| run | final step | " + " | ".join(t.split("/")[-1] for t in tags) + " |")
    print("|---|---:|" + "---:|" * len(tags))
    for run, d in data.items():
        end = max(s for s, _ in d[tags[0]])
        cells = []
        for tag in tags:
            values = [v for s, v in d[tag] if s > end - opt.last]
            cells.append(f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}")
        print(f"| {run} | {end} | " + " | ".join(cells) + " |")
    if opt.grid:
        from PIL import Image

        grids = [Image.open(sorted((run / "samples").glob("*.png"))[-1]).convert("RGB") for run in opt.runs]
        gap = 8
        canvas = Image.new("RGB", (sum(g.width for g in grids) + gap * (len(grids) - 1), max(g.height for g in grids)),
                           (255, 255, 255))
        x = 0
        for g in grids:
            canvas.paste(g, (x, 0))
            x += g.width + gap
        canvas.save(opt.grid)
        print(f"wrote {opt.grid}")


if __name__ == "__main__":
    main()
