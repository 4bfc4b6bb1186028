"""benchmarks/quality.py end to end with a tiny budget: it trains through the folder's
train.py, evaluates through its evaluate.py, and rewrites only its own section."""
import importlib.util

from tests.helpers import ROOT


def load_quality():
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_runs_end_to_end_and_writes_its_table(tmp_path):
    quality = load_quality()
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nkept above\n")
    rows = quality.main(["--only", "simple_gan", "--budget-minutes", "0.02", "--n", "64",
                         "--runs", str(tmp_path / "runs"), "--results", str(results)])
    assert (tmp_path / "quality_rows.json").is_file()  # beside --results, never the repository's own
    assert [r["model"] for r in rows] == ["real data (A vs B)", "dcgan, 0 steps", "simple_gan"]
    reference, random_g, trained = rows
    assert trained["steps"] >= 1 and trained["n"] == reference["n"] == 64
    assert trained["precision"] in ("fp32", "bf16") and trained["hardware"] == reference["hardware"]
    assert reference["fid"] < trained["fid"] and reference["fid"] < random_g["fid"]
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\nkept above\n")
    assert text.count(quality.BEGIN) == 1 and "| simple_gan | digits 28x28 |" in text
    quality.write_results(results, quality.BEGIN + "\nnew\n" + quality.END)  # a second run replaces the section
    assert results.read_text().count(quality.BEGIN) == 1 and "| simple_gan |" not in results.read_text()
    assert "kept above" in results.read_text()


def test_rows_are_merged_by_name_so_one_entry_can_be_remeasured(tmp_path):
    quality = load_quality()
    path = tmp_path / "rows.json"
    old = [{"model": "dcgan", "data": "digits 32x32", "steps": 10, "fid": 50.0},
           {"model": "simple_gan", "data": "digits 28x28", "steps": 10, "fid": 900.0}]
    quality.merge_rows(path, old)
    merged = quality.merge_rows(path, [{"model": "simple_gan", "data": "digits 28x28", "steps": 20, "fid": 800.0},
                                       {"model": "real data (A vs B)", "data": "digits 28x28", "steps": "-",
                                        "fid": 14.0}])
    assert [(r["model"], r["fid"]) for r in merged] == [("real data (A vs B)", 14.0), ("dcgan", 50.0),
                                                        ("simple_gan", 800.0)]
    assert all("date" in r for r in merged) and quality.merge_rows(path, []) == merged  # kept on disk


def test_a_conditional_entry_reports_class_accuracy_in_its_column(tmp_path):
    quality = load_quality()
    results = tmp_path / "RESULTS.md"
    rows = quality.main(["--only", "cgan-mlp", "--budget-minutes", "0.02", "--n", "64", "--no-zero-step",
                         "--runs", str(tmp_path / "runs"), "--results", str(results)])
    reference, trained = rows
    assert trained["model"] == "cgan-mlp" and trained["steps"] >= 1
    assert 0.0 <= trained["class_accuracy"] <= 1.0 and "class_accuracy" not in reference
    line = next(x for x in results.read_text().splitlines() if x.startswith("| cgan-mlp |"))
    assert f"| {trained['class_accuracy']:.3f} |" in line  # the class-accuracy cell, not a dash
    reference_line = next(x for x in results.read_text().splitlines() if x.startswith("| real data"))
    assert reference_line.split("|")[11].strip() == "-"  # unconditional rows leave the column empty


def test_rows_from_different_machines_get_different_footnotes():
    quality = load_quality()
    base = {"data": "digits 32x32", "setting": "s", "budget": "10 min", "steps": 5, "fid": 1.0, "kid": 1.0,
            "ms_ssim": 0.3, "n": 10, "train_s": 1.0, "eval_s": 1.0, "date": "2026-11-24"}
    rows = [{**base, "model": "a", "hardware": "CPU one", "precision": "bf16"},
            {**base, "model": "b"},  # measured before rows stored their machine
            {**base, "model": "c", "hardware": "CPU one", "precision": "fp32"}]
    lines = quality.table(rows).splitlines()[2:]
    assert lines[0].endswith("| 2026-11-24 [1], bf16 |") and lines[2].endswith("| 2026-11-24 [1], fp32 |")
    assert lines[1].endswith("| 2026-11-24 [2], ? |")
    assert quality.machines(rows) == ["CPU one", quality.UNRECORDED]


def test_super_resolution_entries_chain_their_stages_and_sit_beside_bicubic(tmp_path):
    """srgan-psnr, then srgan-gan-mse started from its checkpoint (the entry's `init`); each gives
    a G row and a bicubic row with PSNR / SSIM on the Y channel, in the paired table."""
    quality = load_quality()
    results = tmp_path / "RESULTS.md"
    quality.ENTRIES["srgan-psnr"]["minutes"] = 0.02  # this process's copy of the table only
    rows = quality.main(["--only", "srgan-psnr", "srgan-gan-mse", "--budget-minutes", "0.02",
                         "--runs", str(tmp_path / "runs"), "--results", str(results)])
    assert [(r["model"], r["what"]) for r in rows] == [
        ("srgan-psnr", "G(LR) vs HR"), ("srgan-psnr", "baseline: bicubic"),
        ("srgan-gan-mse", "G(LR) vs HR"), ("srgan-gan-mse", "baseline: bicubic")]
    assert rows[1]["psnr"] == rows[3]["psnr"] == rows[1]["psnr_y"]  # one bicubic figure, on the Y channel
    assert rows[0]["steps"] == rows[1]["steps"] >= 1 and rows[2]["stage"] == "gan"
    assert "chelsea, china (whole), Y channel, 4-pixel border" in rows[0]["pairs"]
    text = results.read_text()
    assert "| srgan-gan-mse | photos 96x96 |" in text and "baseline: bicubic" in text


def test_a_photo_entry_is_measured_against_real_photos_not_digits(tmp_path):
    """progan trains on the embedded photo crops: its real-data reference row is photos at its size,
    and the digits-only 0-step DCGAN row is left out."""
    quality = load_quality()
    rows = quality.main(["--only", "progan", "--budget-minutes", "0.02", "--n", "64",
                         "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "RESULTS.md")])
    reference, trained = rows
    assert (reference["model"], reference["data"]) == ("real data (A vs B)", "photos 32x32")
    assert trained["model"] == "progan" and trained["data"] == "photos 32x32" and trained["steps"] >= 1
    assert reference["n"] == trained["n"] == 64 and "swd" in trained


def test_semantic_rows_get_their_own_table_beside_the_real_scenes():
    """pix2pixhd's evaluate.py records (generated + the real images' reference) land in the
    segmentation table, one shared reference row, and never in the FID or paired tables."""
    quality = load_quality()
    base = {"data": "scenes 256x128", "setting": "s", "budget": "10 min", "n": 100, "train_s": 600.0,
            "hardware": "cpu X", "precision": "bf16", "date": "2026-12-04"}
    generated = {**base, "model": "pix2pixhd", "what": "generated", "steps": 1200, "pixel_acc": 0.8123,
                 "mean_iou": 0.4567, "fid": 3.21}
    real = {**base, "model": quality.reference_name("pix2pixhd", {"what": quality.REAL_IMAGES}),
            "what": quality.REAL_IMAGES, "steps": 0, "pixel_acc": 0.95, "mean_iou": 0.7, "fid": 0.3}
    assert real["model"] == "real scenes" and quality.reference_name("pix2pixhd", generated) == "pix2pixhd"
    assert quality.row_key(generated) != quality.row_key(real) and quality.is_semantic(generated)
    text = quality.section([real, generated], quality.parse_opt([]), [])
    semantic = text[text.index("### Semantic synthesis"):]
    assert "| pix2pixhd | scenes 256x128 | s | 10 min | 1200 | 0.812 | 0.457 | 3.21 | 100 |" in semantic
    assert "| real scenes |" in semantic
    assert "| pix2pixhd |" not in text[:text.index("### Semantic synthesis")]  # not in the FID or paired tables
