"""common.device: device, precision, channels_last choices."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from common.device import (Precision, cpu_has_fast_bf16, pick_device, prepare_model, resolve_channels_last,
                           resolve_precision, to_input)
from common.errors import UserError

CPU = torch.device("cpu")


def test_pick_cpu():
    assert pick_device("cpu") == CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_pick_cuda_without_cuda_is_a_user_error():
    with pytest.raises(UserError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(UserError):
        pick_device("cuda:1")


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(),
                    reason="an accelerator is available here")
def test_auto_falls_back_to_cpu():
    assert pick_device("auto") == CPU


def test_fp16_on_cpu_is_refused():
    with pytest.raises(UserError, match="bf16"):
        Precision("fp16", CPU)


def test_unknown_precision_is_refused():
    with pytest.raises(UserError, match="fp64"):
        resolve_precision("fp64", CPU)


def _conv_out_dtype(prec: Precision) -> torch.dtype:
    conv = nn.Conv2d(1, 2, 3)
    with prec.autocast():
        return conv(torch.randn(1, 1, 5, 5)).dtype


def test_fp32_autocast_keeps_float32():
    prec = Precision("fp32", CPU)
    assert prec.mode == "fp32" and prec.dtype == torch.float32
    assert _conv_out_dtype(prec) == torch.float32


def test_bf16_autocast_gives_bfloat16():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec = Precision("bf16", CPU)
    assert prec.mode == "bf16" and prec.dtype == torch.bfloat16
    assert _conv_out_dtype(prec) == torch.bfloat16


def test_bf16_warns_exactly_without_native_bf16():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_precision("bf16", CPU) == "bf16"
    slow = [w for w in caught if "bfloat16" in str(w.message)]
    assert bool(slow) == (not cpu_has_fast_bf16())


def test_auto_precision_on_cpu():
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_fast_bf16() else "fp32")


def test_channels_last_auto_follows_the_models_table_per_device_kind():
    table = {"cpu-fp32": False, "cpu-bf16": True, "cuda": True}
    assert resolve_channels_last(None, CPU, "fp32", table) is False
    assert resolve_channels_last(None, CPU, "bf16", table) is True
    assert resolve_channels_last(None, torch.device("cuda"), "fp16", table) is True
    assert resolve_channels_last(None, torch.device("cuda"), "fp32", {"cpu-fp32": True}) is False  # unmeasured
    assert resolve_channels_last(None, torch.device("mps"), "fp32", table) is False
    assert resolve_channels_last(None, CPU, "fp32") is False  # no table: PyTorch's NCHW


def test_channels_last_flag_forces_either_format():
    table = {"cpu-fp32": False, "cpu-bf16": True}
    assert resolve_channels_last(True, CPU, "fp32", table) is True
    assert resolve_channels_last(False, CPU, "bf16", table) is False
    assert resolve_channels_last(True, torch.device("mps")) is True


def test_to_input_channels_last():
    x = torch.randn(2, 3, 4, 5)
    assert not x.is_contiguous(memory_format=torch.channels_last)
    y = to_input(x, CPU, channels_last=True)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, x)
    z = to_input(x, CPU, channels_last=False)
    assert z.is_contiguous() and torch.equal(z, x)
    v = torch.randn(2, 3)
    assert torch.equal(to_input(v, CPU, channels_last=True), v)


def test_prepare_model_channels_last():
    m = prepare_model(nn.Conv2d(3, 4, 3), CPU, channels_last=True)
    assert m.weight.is_contiguous(memory_format=torch.channels_last)
    assert not m.weight.is_contiguous()


@pytest.mark.parametrize("mode", ["fp32", "bf16"])
def test_scaler_is_a_pass_through_off_fp16(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec = Precision(mode, CPU)
    assert not prec.scaler.is_enabled()
    x = torch.tensor(3.0, requires_grad=True)
    assert prec.scaler.scale(x) is x


def test_adam_is_adam_fused_or_not():
    from common.device import adam as cdev_adam

    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = cdev_adam(a.parameters(), lr=1e-2, betas=(0.5, 0.999)), torch.optim.Adam(b.parameters(), 1e-2, (0.5, 0.999))
    for _ in range(3):
        for m, o in ((a, opt_a), (b, opt_b)):
            o.zero_grad()
            m(torch.ones(2, 4)).square().sum().backward()
            o.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6)
    assert opt_a.param_groups[0]["betas"] == (0.5, 0.999)
