"""benchmarks/gpu_check.sh on a machine without a GPU: one clear line and exit 2, nothing run."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script would run for minutes")
def test_gpu_check_without_a_gpu_says_so_and_exits_2(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHON=sys.executable, GPU_CHECK_DIR=str(tmp_path)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no CUDA device" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing was started


def test_gpu_check_script_parses():
    proc = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
