"""Shared test helpers: run a folder's script as users do, in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(folder: str, script: str, *args: str, cwd: Path | None = None, timeout: int = 300,
               env: dict | None = None):
    """`cd <folder> && python <script>.py args` (the way the READMEs say to run it); `cwd` runs it
    in another folder (a copy), `env` sets variables for it (None removes one)."""
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return subprocess.run([sys.executable, f"{script}.py", *map(str, args)], cwd=cwd or ROOT / folder,
                          capture_output=True, text=True, timeout=timeout, env=environment)


def in_process(capsys, fn):
    """`fn()` under run_main, in this process (as `python train.py` runs main), shaped like a finished
    subprocess (returncode, stdout, stderr): for one-line-error checks that need no new interpreter."""
    from types import SimpleNamespace

    from common.errors import run_main

    code = 0
    try:
        run_main(fn)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


def assert_one_line_error(proc, *needles: str) -> str:
    """Non-zero exit, no traceback, and a final stderr line 'error: ...' containing the needles."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def write_random_vgg(folder: Path) -> Path:
    """A VGG19 weights file (torchvision's keys, through relu5_4) with random values, given
    explicitly as --vgg-weights: tests never rely on a silent fallback, and a user's run has none."""
    import torch

    from common.vgg import build_features

    path = Path(folder) / "vgg19_random.pth"
    torch.manual_seed(0)
    torch.save({f"features.{k}": v for k, v in build_features("relu5_4").state_dict().items()}, path)
    return path


def fake_downloads(monkeypatch, tmp_path, make_state) -> list[str]:
    """An online machine with an empty torch hub cache under tmp_path, whose downloads write
    `make_state()` with torch.save and are recorded: returns the list of URLs fetched."""
    import torch

    import common.pretrained as pretrained

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.delenv(pretrained.NO_DOWNLOAD, raising=False)
    urls: list[str] = []

    def download(url, dst, hash_prefix, progress):
        urls.append(url)
        torch.save(make_state(), dst)

    monkeypatch.setattr(pretrained, "DOWNLOAD", download)
    return urls
