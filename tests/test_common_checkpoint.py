"""common.checkpoint: round trip, atomic writes, safe loading, mismatch messages."""
from __future__ import annotations

import copy
import os
import pickle
import random
import threading

import numpy as np
import pytest
import torch
from torch import nn

import common.checkpoint as ckpt_mod
from common.checkpoint import Checkpointer, load_file, strip_prefixes
from common.ema import EMA
from common.errors import CheckpointError


# ----------------------------------------------------------------- helpers
def assert_same(a, b, where="state"):
    """Recursive exact equality of nested dicts/lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def one_step(model, opt, x):
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()


def make_run(seed: int):
    torch.manual_seed(seed)
    g, d = nn.Linear(3, 4), nn.Linear(4, 1)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-2)
    return g, d, opt_g, opt_d


def draw_all():
    return (torch.rand(5), np.random.rand(5), np.random.standard_normal(3),
            [random.random() for _ in range(5)], random.gauss(0.0, 1.0))


def assert_draws_equal(a, b):
    assert torch.equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[3] == b[3]
    assert a[4] == b[4]


# -------------------------------------------------------------- round trip
def test_round_trip_restores_everything(tmp_path):
    g, d, opt_g, opt_d = make_run(0)
    x = torch.randn(8, 3)
    one_step(g, opt_g, x)
    one_step(d, opt_d, torch.randn(8, 4))
    ema = EMA(g, decay=0.9)
    one_step(g, opt_g, x)
    ema.update(g)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    scaler.scale(torch.ones(()))  # initialises the scale tensor
    options = {"lr": 0.01, "width": 4, "data": "digits", "betas": [0.5, 0.999]}
    ck = Checkpointer(tmp_path / "ck", model_name="toy", models={"G": g, "D": d},
                      optimizers={"G": opt_g, "D": opt_d}, options=options, scaler=scaler, ema=ema)

    # leave cached gaussians in numpy's and python's generators, so those fields matter too
    np.random.standard_normal()
    random.gauss(0.0, 1.0)

    expected = {
        "G": copy.deepcopy(g.state_dict()), "D": copy.deepcopy(d.state_dict()),
        "opt_G": copy.deepcopy(opt_g.state_dict()), "opt_D": copy.deepcopy(opt_d.state_dict()),
        "ema": copy.deepcopy(ema.state_dict()), "scale": scaler.get_scale(),
    }
    path = ck.save(step=7, epoch=2)
    assert path == tmp_path / "ck" / "last.pt" and path.is_file()
    after_save = draw_all()

    # perturb everything: weights, optimizer moments, EMA, scaler, RNG
    one_step(g, opt_g, x)
    one_step(d, opt_d, torch.randn(8, 4))
    ema.update(g)
    scaler.update(new_scale=3.0)
    draw_all()
    assert not torch.equal(g.weight, expected["G"]["weight"])

    payload = ck.load(path)
    assert_same(g.state_dict(), expected["G"], "G")
    assert_same(d.state_dict(), expected["D"], "D")
    assert_same(opt_g.state_dict(), expected["opt_G"], "opt_G")
    assert_same(opt_d.state_dict(), expected["opt_D"], "opt_D")
    assert_same(ema.state_dict(), expected["ema"], "ema")
    assert scaler.get_scale() == expected["scale"] == 2.0 ** 10
    assert payload["step"] == 7 and payload["epoch"] == 2
    assert payload["options"] == options
    assert payload["model_name"] == "toy"
    assert_draws_equal(draw_all(), after_save)


def test_load_into_fresh_objects(tmp_path):
    g, d, opt_g, opt_d = make_run(0)
    one_step(g, opt_g, torch.randn(4, 3))
    ema = EMA(g, decay=0.9)
    ck = Checkpointer(tmp_path, model_name="toy", models={"G": g}, optimizers={"G": opt_g},
                      options={"a": 1}, ema=ema)
    ck.save(3, 1)

    g2, _, opt_g2, _ = make_run(1)  # other init, optimizer without state
    ema2 = EMA(g2, decay=0.5)
    ck2 = Checkpointer(tmp_path, model_name="toy", models={"G": g2}, optimizers={"G": opt_g2},
                       options={"a": 1}, ema=ema2)
    assert ck2.resume("auto") == (3, 1)
    assert_same(g2.state_dict(), g.state_dict())
    assert_same(opt_g2.state_dict(), opt_g.state_dict())
    assert ema2.decay == 0.9
    assert_same(ema2.module.state_dict(), ema.module.state_dict())


def test_resume_without_checkpoint(tmp_path):
    g, _, opt_g, _ = make_run(0)
    ck = Checkpointer(tmp_path, model_name="toy", models={"G": g}, optimizers={"G": opt_g}, options={})
    assert ck.resume(None) == (0, 0)
    assert ck.resume("auto") == (0, 0)
    with pytest.raises(CheckpointError):
        ck.resume(str(tmp_path / "nope.pt"))


def test_compiled_model_saved_without_prefix(tmp_path):
    lin = nn.Linear(2, 2)
    ck = Checkpointer(tmp_path, model_name="toy", models={"G": torch.compile(lin)}, optimizers={},
                      options={})
    ck.save(1, 0)
    keys = set(load_file(tmp_path / "last.pt")["models"]["G"])
    assert keys == {"weight", "bias"}


def test_ema_required_when_run_uses_one(tmp_path):
    g, _, opt_g, _ = make_run(0)
    Checkpointer(tmp_path, model_name="toy", models={"G": g}, optimizers={}, options={}).save(1, 0)
    ck = Checkpointer(tmp_path, model_name="toy", models={"G": g}, optimizers={}, options={},
                      ema=EMA(g, 0.9))
    with pytest.raises(CheckpointError, match="EMA"):
        ck.load(tmp_path / "last.pt")


# ---------------------------------------------------------------- atomicity
def _saved_run(tmp_path):
    g, _, opt_g, _ = make_run(0)
    ck = Checkpointer(tmp_path, model_name="toy", models={"G": g}, optimizers={"G": opt_g}, options={})
    ck.save(step=1, epoch=0)
    weight = g.weight.detach().clone()
    one_step(g, opt_g, torch.randn(4, 3))
    return ck, weight


def test_crash_before_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ck, weight = _saved_run(tmp_path)
    seen = {}

    def crash(src, dst):
        seen["src"], seen["dst"] = str(src), str(dst)
        seen["size"] = os.path.getsize(src)
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(ckpt_mod.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        ck.save(step=2, epoch=0)
    monkeypatch.undo()

    # the new data was written completely to a temp file in the same folder
    assert os.path.dirname(seen["src"]) == str(tmp_path) and seen["dst"] == str(tmp_path / "last.pt")
    assert seen["size"] > 0
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]
    payload = load_file(tmp_path / "last.pt")
    assert payload["step"] == 1
    assert torch.equal(payload["models"]["G"]["weight"], weight)


def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ck, weight = _saved_run(tmp_path)

    def half_write(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("simulated crash during write")

    monkeypatch.setattr(ckpt_mod.torch, "save", half_write)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ck.save(step=2, epoch=0)
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == ["last.pt"]
    payload = load_file(tmp_path / "last.pt")
    assert payload["step"] == 1
    assert torch.equal(payload["models"]["G"]["weight"], weight)


# ------------------------------------------------------------- safe loading
EXECUTED = []


class Evil:
    """Unpickling an instance would call __setstate__ (i.e. run code)."""

    def __init__(self):
        self.payload = "x"

    def __setstate__(self, state):
        EXECUTED.append(state)
        self.__dict__.update(state)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_arbitrary_objects_are_refused(tmp_path, writer):
    path = tmp_path / "evil.pt"
    payload = {"format": 1, "models": {}, "obj": Evil()}
    if writer == "torch":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    EXECUTED.clear()
    with pytest.raises(CheckpointError, match="arbitrary Python objects"):
        load_file(path)
    assert EXECUTED == []


def test_truncated_file_is_refused(tmp_path):
    g, _, opt_g, _ = make_run(0)
    Checkpointer(tmp_path, model_name="toy", models={"G": g}, optimizers={"G": opt_g}, options={}).save(1, 0)
    data = (tmp_path / "last.pt").read_bytes()
    assert len(data) > 100
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[:100])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_file(bad)


def saved_checkpoint(tmp_path):
    g, _, opt_g, _ = make_run(0)
    Checkpointer(tmp_path, model_name="toy", models={"G": g}, optimizers={"G": opt_g}, options={}).save(1, 0)
    return (tmp_path / "last.pt").read_bytes()


@pytest.mark.parametrize("case, expected", [
    ("random bytes", "not a PyTorch file at all"),
    ("empty", "the file is empty"),
    ("cut in half", "it is truncated"),
    ("text file", "not a PyTorch file at all"),
    ("bytes flipped inside", "corrupt"),
])
def test_a_damaged_file_is_called_damaged_not_unsafe(tmp_path, case, expected):
    """A corrupt or cut-off file is named as such: not as 'arbitrary Python objects', which
    would send the user looking for the wrong problem."""
    good = saved_checkpoint(tmp_path)
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.pt"
    if case == "random bytes":
        bad.write_bytes(b"\x13" + rng.bytes(4096))
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "cut in half":
        bad.write_bytes(good[: len(good) // 2])
    elif case == "text file":
        bad.write_text("step,loss\n1,0.5\n")
    else:  # the archive's index is intact, its pickled contents are not
        data = bytearray(good)
        start = data.find(b"data.pkl") + 60
        data[start:start + 40] = rng.bytes(40)
        bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as exc:
        load_file(bad)
    message = str(exc.value)
    assert expected in message and "bad.pt" in message, message
    assert "arbitrary Python objects" not in message


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_file(tmp_path / "missing.pt")


def test_foreign_tensor_file_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint written by this project"):
        load_file(path)


# ----------------------------------------------------------------- mismatch
def test_other_model_name_is_refused(tmp_path):
    lin = nn.Linear(2, 2)
    Checkpointer(tmp_path, model_name="b", models={"G": lin}, optimizers={}, options={}).save(1, 0)
    ck = Checkpointer(tmp_path, model_name="a", models={"G": nn.Linear(2, 2)}, optimizers={}, options={})
    with pytest.raises(CheckpointError) as info:
        ck.load(tmp_path / "last.pt")
    msg = str(info.value)
    assert "'a'" in msg and "'b'" in msg


def _net(width):
    return nn.Sequential(nn.Linear(2, 2), nn.Linear(2, width))


@pytest.mark.parametrize("arch_options", [(), ("width",)])
def test_shape_mismatch_names_key_shapes_and_options(tmp_path, arch_options):
    Checkpointer(tmp_path, model_name="m", models={"G": _net(3)}, optimizers={},
                 options={"width": 3, "lr": 1.0}).save(1, 0)
    model = _net(5)
    before = copy.deepcopy(model.state_dict())
    ck = Checkpointer(tmp_path, model_name="m", models={"G": model}, optimizers={},
                      options={"width": 5, "lr": 2.0}, arch_options=arch_options)
    with pytest.raises(CheckpointError) as info:
        ck.load(tmp_path / "last.pt")
    msg = str(info.value)
    assert "1.weight" in msg and "(3, 2)" in msg and "(5, 2)" in msg
    assert "\n" not in msg
    if arch_options:
        assert "width=3" in msg and "5 now" in msg
        assert "lr" not in msg  # only the architecture options are named
    else:
        assert "width" not in msg
    assert_same(model.state_dict(), before)  # nothing loaded


def test_missing_model_weights_are_refused(tmp_path):
    Checkpointer(tmp_path, model_name="m", models={"G": nn.Linear(2, 2)}, optimizers={}, options={}).save(1, 0)
    ck = Checkpointer(tmp_path, model_name="m", models={"G": nn.Linear(2, 2), "D": nn.Linear(2, 1)},
                      optimizers={}, options={})
    with pytest.raises(CheckpointError, match="'D'"):
        ck.load(tmp_path / "last.pt")


# ------------------------------------------------------------------ prefixes
def test_strip_prefixes():
    a, b, c = (torch.full((1,), float(i)) for i in range(3))
    out = strip_prefixes({"module._orig_mod.net.weight": a, "module._orig_mod.net.bias": b})
    assert set(out) == {"net.weight", "net.bias"}
    assert out["net.weight"] is a and out["net.bias"] is b
    # a prefix that not every key shares is part of the model's own names: kept
    mixed = {"module.weight": a, "head.weight": c}
    assert strip_prefixes(mixed) == mixed


def test_prefixed_state_dict_loads_into_plain_model(tmp_path):
    src = nn.Linear(2, 3)
    payload = {"format": ckpt_mod.FORMAT_VERSION, "model_name": "m", "step": 4, "epoch": 0,
               "models": {"G": {"module._orig_mod." + k: v for k, v in src.state_dict().items()}},
               "optimizers": {}, "rng": [ckpt_mod.rng_state()], "options": {}}
    ckpt_mod.atomic_save(payload, tmp_path / "last.pt")
    dst = nn.Linear(2, 3)
    Checkpointer(tmp_path, model_name="m", models={"G": dst}, optimizers={}, options={}).load(tmp_path / "last.pt")
    assert_same(dst.state_dict(), src.state_dict())


class HasModuleChild(nn.Module):
    """A model whose own parameter names start with "module." (a child called `module`)."""

    def __init__(self):
        super().__init__()
        self.module = nn.Linear(2, 2)


def test_model_with_child_named_module_round_trips(tmp_path):
    src = HasModuleChild()
    Checkpointer(tmp_path, model_name="m", models={"G": src}, optimizers={}, options={}).save(1, 0)
    dst = HasModuleChild()
    Checkpointer(tmp_path, model_name="m", models={"G": dst}, optimizers={}, options={}).load(tmp_path / "last.pt")
    assert_same(dst.state_dict(), src.state_dict())


# ------------------------------------------------------------------ checkpointer states
class Counter:
    def __init__(self):
        self.n = 0

    def state_dict(self):
        return {"n": torch.tensor(self.n)}

    def load_state_dict(self, state):
        self.n = int(state["n"])


def test_checkpointer_saves_and_restores_extra_states(tmp_path):
    m = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    c = Counter()
    c.n = 7
    Checkpointer(tmp_path, model_name="x", models={"m": m}, optimizers={"m": opt}, options={},
                 states={"pool": c}).save(3, 0)
    fresh = Counter()
    Checkpointer(tmp_path, model_name="x", models={"m": m}, optimizers={"m": opt}, options={},
                 states={"pool": fresh}).resume("auto")
    assert fresh.n == 7
    other = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match="no state for 'missing'"):
        Checkpointer(tmp_path, model_name="x", models={"m": other}, optimizers={}, options={},
                     states={"missing": Counter()}).resume("auto")
    assert not torch.equal(other.weight, m.weight)  # nothing was loaded before the check failed
    schedule = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD(other.parameters(), lr=0.1), lambda e: 1.0)
    with pytest.raises(CheckpointError, match="'pool' state does not fit"):  # a state of another kind or version
        Checkpointer(tmp_path, model_name="x", models={"m": other}, optimizers={}, options={},
                     states={"pool": schedule}).resume("auto")
    assert not torch.equal(other.weight, m.weight)


# ----------------------------------------------------------- background save
def _bn_run(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    one_step(net, opt, torch.randn(8, 3))
    ema = EMA(net, decay=0.5)
    ck = Checkpointer(tmp_path, model_name="toy", models={"G": net}, optimizers={"G": opt}, options={}, ema=ema)
    return net, opt, ema, ck


def test_background_save_holds_the_state_of_the_moment_it_was_called(tmp_path, monkeypatch):
    """The end of a run draws its last grid while the checkpoint is written; drawing in the
    paper's test mode moves BatchNorm's running statistics (and restores them after), so
    the file must hold the buffers and EMA as they were when the save was asked for."""
    net, opt, ema, ck = _bn_run(tmp_path)
    expected = copy.deepcopy(ck.state(step=3, epoch=1))
    drawn, write = threading.Event(), ckpt_mod.atomic_save

    def write_after_the_grid(payload, path):  # the thread writes only once the grid is drawn
        assert drawn.wait(10)
        return write(payload, path)

    monkeypatch.setattr(ckpt_mod, "atomic_save", write_after_the_grid)
    pending = ck.save_in_background(step=3, epoch=1)
    with torch.no_grad():  # what a grid in train mode does meanwhile
        net[1].running_mean.add_(5.0)
        net[1].num_batches_tracked.add_(1)
        for p in ema.module.parameters():
            p.add_(1.0)
    drawn.set()
    assert pending.wait() == tmp_path / "last.pt"
    saved = load_file(tmp_path / "last.pt")
    assert_same(saved["models"], expected["models"], "models")
    assert_same(saved["optimizers"], expected["optimizers"], "optimizers")
    assert_same(saved["ema"], expected["ema"], "ema")
    assert saved["step"] == 3 and ck.last_save is pending
    assert pending.nbytes == os.path.getsize(tmp_path / "last.pt") and "MiB, written in" in pending.describe()


def test_background_save_failure_is_raised_by_wait_and_keeps_the_old_file(tmp_path, monkeypatch):
    net, opt, ema, ck = _bn_run(tmp_path)
    ck.save(step=1, epoch=0)

    def crash(src, dst):
        raise OSError("simulated disk full")

    monkeypatch.setattr(ckpt_mod.os, "replace", crash)
    pending = ck.save_in_background(step=2, epoch=0)
    with pytest.raises(OSError, match="disk full"):
        pending.wait()
    monkeypatch.undo()
    assert load_file(tmp_path / "last.pt")["step"] == 1
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]
