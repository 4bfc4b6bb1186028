"""common.run and common.errors: run directory, sample grids, NaN guard, one-line errors."""
from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from common.errors import DataError, NonFiniteLossError, UserError, run_main
from common.run import Run, check_finite, save_grid, to_image_range


# ------------------------------------------------------------- check_finite
def test_check_finite_returns_floats(tmp_path):
    out = check_finite(3, {"loss_d": torch.tensor(1.5), "loss_g": 2, "gp": 0.25}, tmp_path / "last.pt")
    assert out == {"loss_d": 1.5, "loss_g": 2.0, "gp": 0.25}
    assert all(type(v) is float for v in out.values())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_without_checkpoint(tmp_path, bad):
    with pytest.raises(NonFiniteLossError) as info:
        check_finite(1234, {"loss_d": 0.5, "loss_g": torch.tensor(bad)}, tmp_path / "last.pt")
    msg = str(info.value)
    assert "1234" in msg and "loss_g" in msg and "loss_d" not in msg
    assert "no checkpoint" in msg
    assert str(tmp_path / "last.pt") not in msg


def test_check_finite_with_checkpoint(tmp_path):
    last = tmp_path / "last.pt"
    last.write_bytes(b"x")
    with pytest.raises(NonFiniteLossError) as info:
        check_finite(77, {"loss_d": math.nan}, last)
    msg = str(info.value)
    assert "77" in msg and "loss_d" in msg and str(last) in msg and "--resume" in msg
    assert "no checkpoint" not in msg
    assert info.value.exit_code == 3


# ---------------------------------------------------------------------- Run
def test_run_directory(tmp_path):
    options = {"lr": 0.0002, "batch_size": 8, "data": "digits", "betas": [0.5, 0.999], "out": None,
               "compile": False}
    directory = tmp_path / "runs" / "demo"
    run = Run(directory, options, is_main=True)
    assert json.loads((directory / "options.json").read_text()) == options
    assert (directory / "checkpoints").is_dir() and (directory / "samples").is_dir()

    images = -torch.ones(8, 1, 8, 8)
    images[0] = 1.0  # first tile white, second black
    path = run.save_samples(5, images, nrow=4)
    assert path.parent == directory / "samples" and path.suffix == ".png" and "5" in path.name
    with Image.open(path) as im:
        assert im.size == (4 * 8 + 5 * 2, 2 * 8 + 3 * 2)  # 4 x 2 tiles, 2 px padding
        rgb = im.convert("RGB")
        assert rgb.getpixel((2, 2)) == (255, 255, 255)  # inside tile 0
        assert rgb.getpixel((2 + 10, 2)) == (0, 0, 0)  # inside tile 1
        assert rgb.getpixel((0, 0)) == (255, 255, 255)  # padding (pad_value 1 -> white)

    run.log_scalars(1, {"loss_d": 0.5, "loss_g": torch.tensor(1.0)})
    run.close()
    events = list(directory.glob("events.out.tfevents*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    logged = EventAccumulator(str(events[0]), size_guidance={IMAGES: 0}).Reload().Images("samples")
    assert [e.step for e in logged] == [5]  # TensorBoard holds the very PNG of samples/
    assert logged[0].encoded_image_string == path.read_bytes()
    assert (logged[0].width, logged[0].height) == (4 * 8 + 5 * 2, 2 * 8 + 3 * 2)


def test_save_grid_writes_what_torchvision_writes(tmp_path):
    from torchvision.utils import save_image

    images = torch.linspace(-1.2, 1.2, 6 * 3 * 5 * 7).reshape(6, 3, 5, 7)  # out of range too: clamped
    ours = save_grid(images, tmp_path / "ours.png", nrow=3)
    save_image(to_image_range(images), tmp_path / "torchvision.png", nrow=3, padding=2, pad_value=1.0)
    assert ours.read_bytes() == (tmp_path / "torchvision.png").read_bytes()


def test_run_off_rank0_writes_nothing(tmp_path):
    directory = tmp_path / "rank1"
    run = Run(directory, {"a": 1}, is_main=False)
    assert run.save_samples(1, torch.zeros(4, 1, 8, 8)) is None
    run.log_scalars(1, {"loss": 1.0})
    run.close()
    assert not directory.exists()


# ----------------------------------------------------------------- run_main
def test_user_error_is_one_line_exit_2(capsys):
    def main():
        raise DataError("--data nope: no such file or directory")

    with pytest.raises(SystemExit) as info:
        run_main(main)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: --data nope: no such file or directory\n"


def test_non_finite_loss_exit_3(capsys):
    with pytest.raises(SystemExit) as info:
        run_main(lambda: check_finite(9, {"loss": math.nan}, __import__("pathlib").Path("/nonexistent/x.pt")))
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: non-finite loss at step 9") and err.count("\n") == 1


def test_out_of_memory_exit_4(capsys):
    def main():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(SystemExit) as info:
        run_main(main)
    assert info.value.code == 4
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--batch-size" in err and err.count("\n") == 1


def test_dataloader_worker_error_is_unwrapped(capsys):
    text = ("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
            "  File \"x.py\", line 1, in f\ncommon.errors.DataError: cannot read image a.png (broken)\n")

    with pytest.raises(SystemExit) as info:
        run_main(lambda: (_ for _ in ()).throw(RuntimeError(text)))
    assert info.value.code == 2
    assert capsys.readouterr().err == "error: cannot read image a.png (broken)\n"


def test_other_errors_propagate(capsys):
    def main():
        raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        run_main(main)
    assert capsys.readouterr().err == ""


def test_success_does_not_exit():
    calls = []
    run_main(lambda: calls.append(1))
    assert calls == [1]
    assert issubclass(DataError, UserError)


def test_native_tensorboard_checksums_are_tensorboards_own(tmp_path):
    """The C CRC-32C given to tensorboard's writer computes its pure-Python checksum, and an
    event file written with it reads back through tensorboard's own CRC-checking reader."""
    import os

    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as python_crc
    from tensorboard.summary.writer import record_writer

    from common.run import native_tensorboard_checksums

    assert native_tensorboard_checksums()
    assert record_writer.masked_crc32c is not python_crc
    for data in (b"", b"a", bytes(range(256)), os.urandom(10_000)):
        assert record_writer.masked_crc32c(data) == python_crc(data)

    run = Run(tmp_path / "run", {}, is_main=True)
    run.save_samples(1, torch.rand(4, 3, 16, 16) * 2 - 1)
    run.log_scalars(1, {"loss": 0.25})
    run.close()
    (events,) = (tmp_path / "run").glob("events.out.tfevents*")
    reader = PyRecordReader_New(str(events))
    records = 0
    while True:
        try:
            reader.GetNext()  # raises DataLossError on a checksum that does not match
        except Exception as error:
            assert type(error).__name__ == "OutOfRangeError", error
            break
        records += 1
    assert records >= 3  # the file version, the image, the scalar
