"""Sample quality under a fixed CPU budget: train each folder on the embedded data with
a fixed seed for --budget-minutes of wall-clock time, evaluate, write a markdown table.

    python benchmarks/quality.py                              # every entry, 10 minutes each
    python benchmarks/quality.py --only dcgan simple_gan      # some entries
    python benchmarks/quality.py --budget-minutes 1 --n 300 --results /tmp/R.md   # a quick look

Each trained entry runs the folder's own train.py (with --max-minutes) and then its
own evaluate.py, exactly as a user would, in a subprocess. The reference rows are the
real data against itself (half A against half B at the same n and size): the value a
perfect model would get. "dcgan, 0 steps" is the DCGAN generator as initialised
(Sec. 4: N(0, 0.02) weights), to show the scale from the other end.

The measured rows are kept in benchmarks/quality_rows.json, one per row name, so
`--only wgan` re-measures that entry (and the reference rows at its size) and keeps
every other row as it was, with the date it was measured. The table is rebuilt
from all rows into benchmarks/RESULTS.md (replacing the section this script owns)
and printed. Later folders add their line to ENTRIES.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name: folder, data, training arguments (paper settings unless the README says otherwise)
ENTRIES = {
    "dcgan": dict(folder="dcgan", data="digits", size=32,
                  args=["--image-size", "32", "--ngf", "32", "--ndf", "32", "--epochs", "100000"],
                  note="demo widths ngf=ndf=32, 32x32, batch 128"),
    "simple_gan": dict(folder="simple_gan", data="digits", size=28, args=["--epochs", "100000"],
                       note="--arch paper: the authors' MNIST model (ReLU G, maxout D), SGD lr 0.1, batch 100"),
    "simple_gan-seed": dict(folder="simple_gan", data="digits", size=28, args=["--arch", "seed", "--epochs", "100000"],
                            note="--arch seed: the reference repository's MLP, 28x28, batch 32"),
    "simple_gan-seed-dropout": dict(folder="simple_gan", data="digits", size=28,
                                    args=["--arch", "seed", "--dropout-d", "0.5", "--epochs", "100000"],
                                    note="--arch seed --dropout-d 0.5: the same MLP with dropout in D"),
    "wgan": dict(folder="wgan", data="digits", size=32,
                 args=["--image-size", "32", "--ngf", "32", "--ndf", "32", "--epochs", "100000"],
                 note="ngf=ndf=32, 32x32, Algorithm 1 defaults (RMSProp 5e-5, c 0.01, n_critic 5, batch 64)"),
    "wgan_gp": dict(folder="wgan_gp", data="digits", size=32,
                    args=["--image-size", "32", "--ngf", "32", "--ndf", "32"],
                    note="ngf=ndf=32, 32x32, Algorithm 1 defaults (Adam 1e-4, 0/0.9, lambda 10, n_critic 5, "
                         "batch 64), layer norm"),
    "cgan": dict(folder="cgan", data="digits", size=32, args=["--image-size", "32", "--epochs", "100000"],
                 note="the seed's conv cGAN (WGAN-GP, embedded labels), ngf=ndf=16, 32x32, batch 64"),
    "cgan-mlp": dict(folder="cgan", data="digits", size=28, args=["--arch", "mlp", "--epochs", "100000"],
                     note="the paper's MLP/maxout cGAN (Sec. 4.1), 28x28, SGD lr 0.1, batch 100"),
    # paired entries: evaluate.py measures the outputs against known targets and writes its own
    # trivial baseline beside them (the input itself); one table row per record it appends
    "pix2pix": dict(folder="pix2pix", data="colorize", size=256, paired=True, args=[],
                    note="paper settings: U-Net G, 70x70 PatchGAN, lambda 100, batch 1, jitter 286->256"),
    "pix2pix-edges": dict(folder="pix2pix", data="edges2photo", size=256, paired=True, args=[],
                          note="paper settings, edges -> photo (Canny edges of the photo)"),
    "cyclegan": dict(folder="cyclegan", data="photos", size=64, paired=True, args=[], eval_seed=False,
                     note="paper settings at the embedded 64x64 (6 residual blocks), lambda 10, identity 0.5, "
                          "pool 50, batch 1; target T(a), the hidden mapping"),
    # super-resolution entries: evaluate.py measures PSNR / SSIM on the Y channel (4-pixel border) of the
    # whole held-out photos beside bicubic upsampling; `minutes` overrides --budget-minutes, `init` names the
    # entry whose checkpoint starts this one (the GAN stages start from the PSNR stage)
    "srgan-psnr": dict(folder="srgan", data="photos", size=96, paired=True, sr=True, eval_seed=False, minutes=25,
                       args=["--stage", "psnr", "--eval-every", "500"],
                       note="SRResNet-MSE, paper settings (16 of 96x96, Adam lr 1e-4)"),
    "srgan-gan-mse": dict(folder="srgan", data="photos", size=96, paired=True, sr=True, eval_seed=False, init="srgan-psnr",
                          args=["--stage", "gan", "--content-loss", "mse"],
                          note="SRGAN-MSE (Table 1: MSE content + 1e-3 adversarial), paper settings, from srgan-psnr; "
                               "the VGG54 loss needs ImageNet weights this machine cannot download"),
    "esrgan-psnr": dict(folder="esrgan", data="photos", size=64, paired=True, sr=True, eval_seed=False, minutes=25,
                        args=["--stage", "psnr", "--nf", "32", "--nb", "4", "--gc", "16", "--hr-size", "64",
                              "--eval-every", "500"],
                        note="RRDBNet at CPU size (nf 32, 4 RRDBs, gc 16), L1, lr 2e-4, batch 16 of 64x64"),
    "esrgan-gan-noperc": dict(folder="esrgan", data="photos", size=128, paired=True, sr=True, eval_seed=False, init="esrgan-psnr",
                              args=["--stage", "gan", "--nf", "32", "--nb", "4", "--gc", "16", "--percep-weight", "0"],
                              note="RaGAN (5e-3) + L1 (1e-2) from esrgan-psnr, 128x128, batch 16, WITHOUT L_percep "
                                   "(no ImageNet VGG19 offline)"),
    # coarse-to-fine entries on the embedded photo crops at 32x32 (real reference: photos 32x32)
    "progan": dict(folder="progan", data="photos", size=32,
                   args=["--max-resolution", "32", "--fmap-base", "1024", "--fmap-max", "128", "--phase-images",
                         "6400", "--final-images", "100000000", "--ema-decay", "0.99"],
                   note="growing 4->32 (6,400 images per phase, then 32x32 to the end), widths 128 (fmap_base "
                        "1024), paper losses and Adam, batch 16, EMA 0.99 (0.999 averages over longer than a "
                        "400-step phase)"),
    "progan-no-growing": dict(folder="progan", data="photos", size=32,
                              args=["--max-resolution", "32", "--start-resolution", "32", "--fmap-base", "1024",
                                    "--fmap-max", "128", "--final-images", "100000000", "--ema-decay", "0.99"],
                              note="the same networks trained at 32x32 from the start (Table 1's baseline)"),
    "lapgan": dict(folder="lapgan", data="photos", size=32,
                   args=["--image-size", "32", "--optimizer", "adam", "--lr", "2e-4", "--batch-size", "64",
                         "--levels", "3", "--ngf", "16", "--ndf", "16", "--coarse-hidden-g", "600",
                         "--coarse-hidden-d", "300"],
                   note="3 levels 8->16->32, 16 maps, 600/300 units at 8x8, Adam 2e-4, batch 64"),
    "lapgan-single": dict(folder="lapgan", data="photos", size=32,
                          args=["--image-size", "32", "--optimizer", "adam", "--lr", "2e-4", "--batch-size", "64",
                                "--levels", "1", "--coarse-hidden-g", "176", "--coarse-hidden-d", "54"],
                          note="one level at 32x32 with as many parameters (the paper's single-GAN comparison)"),
    # semantic synthesis: evaluate.py segments G's images of held-out label maps with a segmenter
    # trained on real scenes and writes the real images' scores beside them (pix2pixHD Sec. 4.1)
    "pix2pixhd": dict(folder="pix2pixhd", data="scenes", size=None, shape="256x128", semantic=True,
                      args=["--ngf", "16", "--instance-feat", "--no-vgg-loss"],
                      note="G1 at CPU width (ngf 16, 9 blocks), 3 D, instance map, Sec. 3.4 encoder (random "
                           "styles), FM lambda 10, no VGG loss (no ImageNet VGG19 offline), batch 1"),
    "pix2pixhd-no-instance": dict(folder="pix2pixhd", data="scenes", size=None, shape="256x128", semantic=True,
                                  args=["--ngf", "16", "--instance-feat", "--no-vgg-loss", "--no-instance"],
                                  note="the same without the instance boundary map (Sec. 3.3 ablation)"),
    "pix2pixhd-single-D": dict(folder="pix2pixhd", data="scenes", size=None, shape="256x128", semantic=True,
                               args=["--ngf", "16", "--instance-feat", "--no-vgg-loss", "--num-D", "1"],
                               note="the same with one discriminator at full resolution (multi-scale D ablation)"),
}
BEGIN, END = "<!-- quality.py: begin -->", "<!-- quality.py: end -->"


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description="Quality of each model after a fixed CPU budget.")
    p.add_argument("--only", nargs="+", choices=list(ENTRIES), default=None, help="entries to run (default all)")
    p.add_argument("--budget-minutes", type=float, default=10.0, help="training time per entry (default 10)")
    p.add_argument("--n", type=int, default=None,
                   help="images per evaluation (default: half the embedded set, e.g. 898 digits)")
    p.add_argument("--seed", type=int, default=0, help="training and evaluation seed (default 0)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "quality"), help="run directories (default runs/quality)")
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "RESULTS.md"),
                   help="markdown file whose quality section is rewritten (default benchmarks/RESULTS.md)")
    p.add_argument("--rows", default=None,
                   help="JSON file of measured rows, merged by row name (default: beside --results, "
                        "quality_rows.json)")
    p.add_argument("--no-zero-step", action="store_true", help="skip the 'dcgan, 0 steps' row")
    return p.parse_args(argv)


def run(cmd: list[str]) -> float:
    """Run a command from the repository root, streaming its output; return its wall time."""
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    return time.perf_counter() - start


def last_record(path: Path) -> dict:
    return json.loads(path.read_text().splitlines()[-1])


def train_and_evaluate(name: str, entry: dict, opt) -> list[dict]:
    out = Path(opt.runs) / name
    jsonl = out / "quality.jsonl"
    # a fresh run, not a resumed one, with nothing of an earlier one (TensorBoard events, grids) left to mix in
    shutil.rmtree(out, ignore_errors=True)
    minutes = entry.get("minutes", opt.budget_minutes)
    init = ["--init", str(Path(opt.runs) / entry["init"] / "checkpoints/last.pt")] if "init" in entry else []
    train_s = run([sys.executable, f"{entry['folder']}/train.py", "--data", entry["data"], *entry["args"], *init,
                   "--seed", str(opt.seed), "--max-minutes", str(minutes), "--out", str(out),
                   "--sample-every", "1000000", "--save-every", "1000000"])
    evaluate = [sys.executable, f"{entry['folder']}/evaluate.py", "--checkpoint", str(out / "checkpoints/last.pt"),
                "--jsonl", str(jsonl)] + (["--seed", str(opt.seed)] if entry.get("eval_seed", True) else [])
    if not (entry.get("paired") or entry.get("sr") or entry.get("semantic")):
        evaluate += ["--features", "offline"]  # RESULTS.md's rows: the same features on every machine, online or not
    fixed_n = entry.get("paired") or entry.get("semantic")  # their evaluate.py's own held-out set
    eval_s = run(evaluate + (["--n", str(opt.n)] if opt.n and not fixed_n else []))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    if not fixed_n:
        records = records[-1:]  # the generated images' report
    if entry.get("sr"):
        records = [sr_record(r, records[0]) for r in records]
    shape = entry.get("shape") or f"{entry['size']}x{entry['size']}"
    trained = {"setting": entry["note"], "budget": f"{minutes:g} min", "train_s": train_s}
    return [{**record, "model": reference_name(name, record), "data": f"{entry['data']} {shape}",
             **(REAL_SCENES_ROW if record.get("what") == REAL_IMAGES else {**trained, "steps": record["step"]}),
             "eval_s": eval_s, **machine()}
            for record in records]


REAL_IMAGES = "real images (reference)"  # pix2pixhd/evaluate.py's reference record
REAL_SCENES_ROW = {"setting": "the segmenter on the real images of the same held-out scenes: the ceiling (FID: "
                              "against other real scenes, the floor)", "budget": "-", "steps": 0, "train_s": 0}


def reference_name(name: str, record: dict) -> str:
    """Semantic entries share one reference row (the same held-out scenes), named for what it is."""
    return "real scenes" if record.get("what") == REAL_IMAGES else name


def sr_record(record: dict, model_record: dict) -> dict:
    """A super-resolution evaluate.py record in the paired table's terms: PSNR / SSIM are on the Y
    channel with a scale-pixel border, as the SR papers report them; bicubic is the baseline."""
    what = "baseline: bicubic" if record["what"] == "bicubic" else "G(LR) vs HR"
    return {**record, "what": what, "psnr": record["psnr_y"], "ssim": record["ssim_y"], "step": model_record["step"],
            "pairs": f"{record['images']} (whole), Y channel, {record['scale']}-pixel border"}


def zero_step_dcgan(opt, size: int = 32) -> dict:
    """The DCGAN generator at initialisation, measured like the trained ones."""
    import torch

    from common import metrics
    from common.data import Digits
    from dcgan.model import Generator, init_weights
    from dcgan.utils import sample_z

    torch.manual_seed(opt.seed)
    G = Generator(100, 32, 1, size).apply(init_weights)
    start = time.perf_counter()
    evaluator = metrics.Evaluator(Digits(size), "digits", n=opt.n, seed=opt.seed)
    z = sample_z(evaluator.n, 100, generator=torch.Generator().manual_seed(opt.seed))
    report = evaluator(metrics.generate(G, z, "cpu"))
    return {"model": "dcgan, 0 steps", "data": f"digits {size}x{size}", "setting": "G as initialised (random)",
            "budget": "0", "steps": 0, "train_s": 0.0, "eval_s": time.perf_counter() - start, **report,
            **machine(precision="fp32")}


def real_reference(opt, size: int, data: str = "digits") -> dict:
    from common import metrics
    from common.data import build_dataset

    start = time.perf_counter()
    report = metrics.Evaluator(build_dataset(data, size, seed=opt.seed), data, n=opt.n, seed=opt.seed).real_vs_real()
    return {"model": "real data (A vs B)", "data": f"{data} {size}x{size}", "setting": "reference: the floor",
            "budget": "-", "steps": "-", "train_s": 0.0, "eval_s": time.perf_counter() - start, **report,
            **machine(precision="-")}


def fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


UNRECORDED = "not recorded (rows from before quality.py stored the machine)"


def machines(rows: list[dict]) -> list[str]:
    """The distinct machines of the rows, in order of first appearance: footnotes [1], [2], ..."""
    return list(dict.fromkeys(r.get("hardware", UNRECORDED) for r in rows))


def measured_on(row: dict, footnote: dict) -> str:
    """The last cell of every table: the date, the machine's footnote and the precision."""
    return f"{row.get('date', '-')} [{footnote[row.get('hardware', UNRECORDED)]}], {row.get('precision', '?')}"


def paired_table(rows: list[dict], footnote: dict) -> str:
    """The image-to-image rows: each model's outputs and the trivial baselines its evaluate.py
    measured beside them on the same held-out pairs."""
    lines = ["| model | data | setting | budget | steps | measured | L1 | PSNR dB | SSIM | pairs | train s "
             "| measured (machine, precision) |",
             "|---|---|---|---|---:|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['data']} | {r['setting']} | {r['budget']} | {r['steps']} | {r['what']} | "
                     f"{fmt(r.get('l1'), 4)} | {fmt(r['psnr'], 2)} | {fmt(r.get('ssim'), 3)} | {pairs(r)} "
                     f"| {r['train_s']:.0f} | {measured_on(r, footnote)} |")
    return "\n".join(lines)


def pairs(row: dict) -> str:
    """What a paired row was measured on (pix2pix's 'pairs', cyclegan's n and source)."""
    if "pairs" in row:
        return row["pairs"]
    return row.get("source", "-")


def is_paired(row: dict) -> bool:
    return "psnr" in row and "fid" not in row


def is_semantic(row: dict) -> bool:
    return "pixel_acc" in row


def semantic_table(rows: list[dict], footnote: dict) -> str:
    """The semantic-synthesis rows: segmentation scores of G's images of held-out label maps,
    beside the same segmenter on the real images (the reference row)."""
    lines = ["| model | data | setting | budget | steps | pixel acc. | mean IoU | FID | n | train s "
             "| measured (machine, precision) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['data']} | {r['setting']} | {r['budget']} | {r['steps']} | "
                     f"{fmt(r['pixel_acc'], 3)} | {fmt(r['mean_iou'], 3)} | {fmt(r.get('fid'), 2)} | {r['n']} "
                     f"| {r['train_s']:.0f} | {measured_on(r, footnote)} |")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    footnote = {h: i + 1 for i, h in enumerate(machines(rows))}
    rows = [r for r in rows if not is_paired(r) and not is_semantic(r)]
    lines = ["| model | data | setting | budget | steps | FID | KID | IS | SWD x1e3 | MS-SSIM | class acc. | n "
             "| train s | eval s | measured (machine, precision) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['data']} | {r['setting']} | {r['budget']} | {r['steps']} | "
                     f"{fmt(r['fid'], 2)} | {fmt(r['kid'], 2)} | {fmt(r.get('is'), 2)} | {fmt(r.get('swd'), 1)} | "
                     f"{fmt(r['ms_ssim'], 3)} | {fmt(r.get('class_accuracy'), 3)} | {r['n']} | {r['train_s']:.0f} | "
                     f"{r['eval_s']:.0f} | {measured_on(r, footnote)} |")
    return "\n".join(lines)


def hardware() -> str:
    """CPU, its vector capability (and native bf16, which decides --precision auto), torch, Python."""
    import torch

    from common.device import cpu_has_fast_bf16

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    vector = torch.backends.cpu.get_cpu_capability() + (", native bf16" if cpu_has_fast_bf16() else ", no native bf16")
    return (f"{cpu}, {os.cpu_count()} logical CPUs ({vector}), torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def machine(precision: str | None = None) -> dict:
    """Where a row was measured: the hardware and the precision its training used (`--precision
    auto`, as the folders' train.py resolve it on this machine's CPU, unless given)."""
    import torch

    from common.device import resolve_precision

    return {"hardware": hardware(), "precision": precision or resolve_precision("auto", torch.device("cpu"))}


def section(rows: list[dict], opt, argv: list[str]) -> str:
    features = sorted({r["features"] for r in rows if "features" in r})
    paired = [r for r in rows if is_paired(r)]
    return "\n".join([
        BEGIN,
        "## Quality under a fixed CPU budget",
        "",
        f"Command: `python benchmarks/quality.py {' '.join(argv)}`".replace("`python benchmarks/quality.py `",
                                                                            "`python benchmarks/quality.py`")
        + " (the last one; rows from earlier runs keep their date, and `--only NAME` re-measures one entry)",
        "Machines: " + "; ".join(f"[{i + 1}] {h}" for i, h in enumerate(machines(rows))) + ". Budgets are "
        "wall-clock, so compare steps and metrics between rows of the same machine.",
        f"Features: {'; '.join(features)}. FID/KID/IS here are **not** comparable with Inception-based values "
        "in papers; compare rows with each other and with the real-data row.",
        "",
        table(rows),
        "",
        "FID, KID (x1, polynomial kernel) and SWD (x1e3, averaged over the pyramid levels): lower is better, "
        "the real-data row is the floor at this n. IS: higher is better (10 classes: at most 10). "
        "MS-SSIM between random pairs of samples: diversity, to be read against the real-data row "
        "(higher = less diverse). Class acc.: for conditional models, the fraction of samples drawn for "
        "label k that the offline digit classifier calls k (labels 0-9 in turn). Train seconds include "
        "start-up; budgets are wall-clock.",
        "",
        "### Image-to-image translation against known targets",
        "",
        paired_table(paired, {h: i + 1 for i, h in enumerate(machines(rows))}),
        "",
        "Each model's evaluate.py measures its outputs on held-out pairs (whole photos never cropped for "
        "training) against their targets, beside the trivial baseline on the same pairs: the input itself "
        "(pix2pix: the grey photo, lightness without colour, or the edge map; CycleGAN: the untranslated crop; SRGAN and ESRGAN: bicubic "
        "upsampling of the LR image). L1 on [-1, 1], PSNR and SSIM on [0, 1] (super-resolution: on the Y "
        "channel with a border of scale pixels cropped, as the SR papers report them): lower L1, higher PSNR "
        "and SSIM are better.",
        "",
        "### Semantic synthesis, segmented (pix2pixHD Sec. 4.1)",
        "",
        semantic_table([r for r in rows if is_semantic(r)], {h: i + 1 for i, h in enumerate(machines(rows))}),
        "",
        "A segmentation network trained on real scenes only (pix2pixhd/segmentation.py, cached per machine) "
        "segments the images G made from the held-out label maps; pixel accuracy and mean IoU against those "
        "label maps (higher is better), beside the same network on the real images of the same scenes. FID on "
        "the offline conv-statistics features against the real held-out images (the real row: against other "
        "real scenes). Not comparable with the paper's PSPNet scores on Cityscapes.",
        END,
    ])


def write_results(path: Path, text: str) -> None:
    old = path.read_text() if path.is_file() else "# Benchmark results\n\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def row_key(row: dict) -> str:
    return f"{row['model']} | {row['data']}" + (f" | {row['what']}" if is_paired(row) or is_semantic(row) else "")


def merge_rows(path: Path, new_rows: list[dict]) -> list[dict]:
    """Rows measured now replace the same-named rows in `path`; the others are kept. Order:
    real-data references, the 0-step row, then the ENTRIES order (unknown names last)."""
    rows = {row_key(r): r for r in (json.loads(path.read_text()) if path.is_file() else [])}
    today = date.today().isoformat()
    rows.update({row_key(r): {**r, "date": today} for r in new_rows})
    order = list(ENTRIES)

    def rank(r: dict):
        if r["model"].startswith("real data") or r["model"] == "real scenes":
            return (0, r["data"])
        if r["steps"] == 0:
            return (1, r["model"])
        return (2, order.index(r["model"]) if r["model"] in order else len(order), r["model"])

    merged = sorted(rows.values(), key=rank)
    path.write_text(json.dumps(merged, indent=1) + "\n")
    return merged


def main(argv=None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    opt = parse_opt(argv)
    names = opt.only or list(ENTRIES)
    unconditional = [n for n in names if not ENTRIES[n].get("paired") and not ENTRIES[n].get("semantic")]
    rows = [real_reference(opt, size, data)
            for data, size in sorted({(ENTRIES[n]["data"], ENTRIES[n]["size"]) for n in unconditional})]
    if not opt.no_zero_step and any(ENTRIES[n]["data"] == "digits" for n in unconditional):
        rows.append(zero_step_dcgan(opt))
    rows_path = Path(opt.rows) if opt.rows else Path(opt.results).with_name("quality_rows.json")
    text = section(merge_rows(rows_path, rows), opt, argv)
    for name in names:  # each entry's rows are kept as soon as measured: a later failure loses none of them
        measured = train_and_evaluate(name, ENTRIES[name], opt)
        rows += measured
        text = section(merge_rows(rows_path, measured), opt, argv)
        write_results(Path(opt.results), text)
    write_results(Path(opt.results), text)
    print(text)
    print(f"wrote {opt.results}")
    return rows


if __name__ == "__main__":
    main()
