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
    assert [r["model"] for r in rows] == ["real data (A vs B)", "dcgan, 0 steps", "simple_gan"]
    reference, random_g, trained = rows
    assert trained["steps"] >= 1 and trained["n"] == reference["n"] == 64
    assert reference["fid"] < trained["fid"] and reference["fid"] < random_g["fid"]
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\nkept above\n")
    assert text.count(quality.BEGIN) == 1 and "| simple_gan | digits 28x28 |" in text
    quality.write_results(results, quality.BEGIN + "\nnew\n" + quality.END)  # a second run replaces the section
    assert results.read_text().count(quality.BEGIN) == 1 and "| simple_gan |" not in results.read_text()
    assert "kept above" in results.read_text()
