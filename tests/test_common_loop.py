"""common.loop: the bookkeeping every train.py hands over (cadence, resume, stopping,
the finite check, fp16's skipped steps), tested on a toy model, then through two folders."""
from __future__ import annotations

import argparse
import json
import math
import os
import signal

import pytest
import torch
from torch import nn

from common import loop as cloop
from common.checkpoint import Checkpointer, load_file
from common.device import GradScaler, Precision
from common.errors import NonFiniteLossError
from common.run import Run

CPU = torch.device("cpu")


def options(tmp_path, **kw):
    base = dict(device="cpu", seed=0, precision="fp32", channels_last=False, compile=False, workers=0,
                out=str(tmp_path / "run"), data="toy", log_every=1, sample_every=3, save_every=4, eval_every=0,
                max_minutes=None, max_steps=None, deterministic=False)
    return argparse.Namespace(**{**base, **kw})


class Toy:
    """A linear model, its checkpointer and a TrainLoop over `total` steps."""

    def __init__(self, tmp_path, total=6, start_step=0, evaluate=None, scaler=None, resume=None,
                 schedulers=None, schedule_every="epoch", **kw):
        self.opt = options(tmp_path, **kw)
        self.session = cloop.setup(self.opt, "toy")
        if scaler is not None:
            self.session.prec.scaler = scaler
        self.model = nn.Linear(2, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.run = Run(self.opt.out, vars(self.opt))
        self.schedulers = schedulers(self.optimizer) if schedulers else {}
        self.ckpt = Checkpointer(self.run.checkpoints, model_name="toy", models={"G": self.model},
                                 optimizers={"G": self.optimizer}, options=vars(self.opt),
                                 states={f"lr_{k}": s for k, s in self.schedulers.items()})
        start_step, _ = self.ckpt.resume(resume)
        self.loop = cloop.TrainLoop(self.opt, self.session, self.run, self.ckpt, total=total, start_step=start_step,
                                    sample=lambda: torch.zeros(4, 1, 8, 8), evaluate=evaluate,
                                    lr_schedulers=self.schedulers, schedule_every=schedule_every)

    def step(self, x):
        loss = self.model(x).square().mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}


def saved_steps(toy):
    return sorted(int(p.stem.split("_")[1]) for p in toy.run.samples.glob("*.png"))


def test_cadence_of_samples_checkpoints_and_the_end(tmp_path):
    toy = Toy(tmp_path, total=7)
    seen = []
    for step in toy.loop.steps():
        toy.loop.after_step(step, 0, toy.step(torch.randn(4, 2)))
        seen.append(step)
    toy.loop.finish()
    assert seen == list(range(1, 8))
    assert saved_steps(toy) == [3, 6, 7]  # every 3 steps, and the last one
    assert load_file(toy.ckpt.last_path)["step"] == 7  # saved at 4 and, at the end, at 7


@pytest.mark.parametrize("total, writes", [(8, [4, 8]), (7, [4, 7])])
def test_the_last_checkpoint_is_written_once(tmp_path, monkeypatch, capsys, total, writes):
    """A run whose last step is also a --save-every step writes that checkpoint once, not
    again in finish(); either way the run's last lines say its size and how long it took."""
    import common.checkpoint as ckpt_mod

    written, write = [], ckpt_mod.atomic_save

    def counting(payload, path):
        written.append(payload["step"])
        return write(payload, path)

    monkeypatch.setattr(ckpt_mod, "atomic_save", counting)
    toy = Toy(tmp_path, total=total)
    for step in toy.loop.steps():
        toy.loop.after_step(step, 0, toy.step(torch.randn(4, 2)))
    toy.loop.finish()
    assert written == writes
    (line,) = [l for l in capsys.readouterr().out.splitlines() if l.startswith("checkpoint: ")]
    assert "MiB, written in" in line and line.endswith(" s)")


def test_over_a_loader_resumes_on_the_batch_an_unbroken_run_reads(tmp_path):
    from torch.utils.data import TensorDataset

    data = TensorDataset(torch.arange(40.0).view(20, 2))
    whole = Toy(tmp_path / "a", total=9)
    loader = whole.session.loader(data, 4)  # 5 batches an epoch
    batches = {}
    for step, epoch, (x,) in whole.loop.over(loader):
        batches[step] = x.clone()
        whole.loop.after_step(step, epoch, {"loss": torch.tensor(0.0)})
    later = Toy(tmp_path / "b", total=9)
    later.loop.start_step = 6  # as a resume at step 6 would set it
    resumed = {}
    for step, epoch, (x,) in later.loop.over(later.session.loader(data, 4)):
        resumed[step] = x.clone()
        later.loop.after_step(step, epoch, {"loss": torch.tensor(0.0)})
    assert sorted(resumed) == [7, 8, 9]
    for step in resumed:
        assert torch.equal(resumed[step], batches[step]), step
    assert not torch.equal(batches[7], batches[2])  # epoch 1 is shuffled differently


def test_max_steps_cuts_the_run_and_only_the_run(tmp_path):
    """--max-steps is applied once, here: the loop's total is the smaller of the two."""
    assert Toy(tmp_path / "a", total=9, max_steps=4).loop.total == 4
    assert Toy(tmp_path / "b", total=3, max_steps=4).loop.total == 3
    assert Toy(tmp_path / "c", total=9).loop.total == 9
    toy = Toy(tmp_path / "d", total=9, max_steps=2)
    assert list(toy.loop.steps()) == [1, 2]


def halving(optimizer):
    return {"G": torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5 ** epoch)}


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_an_epoch_schedule_stands_at_each_epoch_and_resumes(tmp_path):
    """Rates 0.1 for epoch 0 (steps 1-3), 0.05 for epoch 1, ...: the loop brings the scheduler to
    each epoch before its first step; a run resumed at step 4 goes on alike."""
    from torch.utils.data import TensorDataset

    data = TensorDataset(torch.zeros(6, 2))  # 3 batches of 2 an epoch
    toy = Toy(tmp_path / "a", total=8, schedulers=halving, save_every=4)
    for step, epoch, (x,) in toy.loop.over(toy.session.loader(data, 2)):
        toy.loop.after_step(step, epoch, toy.step(x))
    toy.loop.finish()
    assert [round(v, 6) for _, v in scalars(toy.opt.out, "train/lr_G")] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]
    part = Toy(tmp_path / "b", total=8, max_steps=4, schedulers=halving)
    for step, epoch, (x,) in part.loop.over(part.session.loader(data, 2)):
        part.loop.after_step(step, epoch, part.step(x))
    part.loop.finish()
    rest = Toy(tmp_path / "b", total=8, schedulers=halving, resume="auto")
    assert rest.loop.start_step == 4 and rest.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    for step, epoch, (x,) in rest.loop.over(rest.session.loader(data, 2)):
        rest.loop.after_step(step, epoch, rest.step(x))
    rest.loop.finish()
    assert rest.optimizer.param_groups[0]["lr"] == pytest.approx(toy.optimizer.param_groups[0]["lr"])
    assert torch.equal(rest.model.weight, toy.model.weight)


def test_a_step_schedule_stands_at_every_step(tmp_path):
    def milestones(optimizer):
        return {"G": torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)}

    toy = Toy(tmp_path, total=5, schedulers=milestones, schedule_every="step")
    for step in toy.loop.steps():
        toy.loop.after_step(step, 0, toy.step(torch.randn(4, 2)))
    toy.loop.finish()
    assert [v for _, v in scalars(toy.opt.out, "train/lr_G")] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    with pytest.raises(ValueError, match="needs loop.over"):  # an epoch schedule without a loader's epochs
        epochs = Toy(tmp_path / "e", total=2, schedulers=halving)
        for step in epochs.loop.steps():
            epochs.loop.after_step(step, 0, epochs.step(torch.randn(4, 2)))


def test_losses_are_logged_and_checked(tmp_path):
    toy = Toy(tmp_path, total=3, save_every=1)
    with pytest.raises(NonFiniteLossError, match=r"step 2 .*last.pt"):
        for step in toy.loop.steps():
            loss = toy.step(torch.randn(4, 2))
            toy.loop.after_step(step, 0, {"loss": loss["loss"] * (float("nan") if step == 2 else 1.0)})
    assert load_file(toy.ckpt.last_path)["step"] == 1  # nothing saved after the NaN
    assert toy.loop._bar is None  # the bar and the Ctrl-C handler were put away


def test_evaluation_every_n_steps_and_at_the_end(tmp_path):
    calls = []

    def evaluate():
        calls.append(True)
        return {"features": "toy", "n": 4, "fid": 1.0, "kid": 0.0, "kid_std": 0.0, "ms_ssim": 0.5}

    toy = Toy(tmp_path, total=5, eval_every=2, evaluate=evaluate)
    for step in toy.loop.steps():
        toy.loop.after_step(step, 0, toy.step(torch.randn(4, 2)))
    toy.loop.finish()
    records = [json.loads(line) for line in (toy.run.directory / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 5] and len(calls) == 3


def test_ctrl_c_stops_after_the_step_and_saves(tmp_path):
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under a background shell
    toy = Toy(tmp_path, total=50)
    for step in toy.loop.steps():
        toy.loop.after_step(step, 0, toy.step(torch.randn(4, 2)))
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the handler asks the loop to stop after this step
    toy.loop.finish()
    assert load_file(toy.ckpt.last_path)["step"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # the handler the loop found is back


def test_time_budget_stops_the_loop(tmp_path):
    toy = Toy(tmp_path, total=50, max_minutes=1e-9)
    for step in toy.loop.steps():
        toy.loop.after_step(step, 0, toy.step(torch.randn(4, 2)))
    toy.loop.finish()
    assert load_file(toy.ckpt.last_path)["step"] == 1


def test_nothing_to_do_when_the_run_is_complete(tmp_path, capsys):
    toy = Toy(tmp_path, total=3)
    toy.loop.start_step = toy.loop.step = 3
    assert list(toy.loop.steps()) == []
    toy.loop.finish()
    assert "nothing to do" in capsys.readouterr().out


class FakeScaler:
    """Stands for fp16's GradScaler: a test sets how many updates it has skipped."""

    def __init__(self):
        self.skipped_updates = 0

    def get_scale(self):
        return 1.0


def test_a_step_the_fp16_scaler_skipped_may_be_non_finite(tmp_path):
    scaler = FakeScaler()
    toy = Toy(tmp_path, total=4, scaler=scaler)
    logged = []
    for step in toy.loop.steps():
        if step == 2:
            scaler.skipped_updates += 1  # this step's gradients overflowed: update skipped
        logged.append(toy.loop.after_step(step, 0, {"loss": torch.tensor(float("inf") if step == 2 else 1.0),
                                                    "other": torch.tensor(0.5)}))
    toy.loop.finish()
    assert logged[1] == {"other": 0.5}  # the inf is left out of the logs, the run goes on
    assert load_file(toy.ckpt.last_path)["step"] == 4


def test_a_scaler_that_skips_every_step_ends_the_run(tmp_path):
    scaler = FakeScaler()
    toy = Toy(tmp_path, total=100, scaler=scaler)
    with pytest.raises(NonFiniteLossError, match="in a row"):
        for step in toy.loop.steps():
            scaler.skipped_updates += 1
            toy.loop.after_step(step, 0, {"loss": torch.tensor(float("nan"))})
    assert step == cloop.MAX_SKIPPED_IN_A_ROW


def test_grad_scaler_counts_only_the_updates_it_skipped():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=1)
    for factor in (1.0, float("inf"), 1.0):
        opt.zero_grad()
        scaler.scale(model(torch.ones(1, 2)).sum() * factor).backward()
        scaler.step(opt)
        scaler.update()
    assert scaler.skipped_updates == 1
    assert scaler.get_scale() == 2.0 ** 11  # 2^10 grew to 2^11, halved to 2^10, grew to 2^11


def test_setup_resolves_the_run_and_deterministic_mode(tmp_path):
    opt = options(tmp_path, out=None, data="digits", deterministic=True)
    try:
        session = cloop.setup(opt, "toy")
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
        assert opt.out == os.path.join("runs", "toy-digits")
        assert session.device == CPU and session.prec.mode == "fp32"
    finally:
        cloop.setup(options(tmp_path), "toy")  # back to the default for the other tests
    assert not torch.are_deterministic_algorithms_enabled()


# ----------------------------------------- fp16 with a gradient penalty, end to end
class CpuFp16(Precision):
    """fp16 autocast with an enabled GradScaler, on the CPU (which runs fp16 autocast;
    Precision itself refuses fp16 off CUDA). The scale doubles after every good update,
    so it soon grows until the gradients overflow, as a long GPU run's does."""

    made: list = []

    def __init__(self, precision, device):
        super().__init__("fp32", device)
        self.mode, self.dtype = "fp16", torch.float16
        self.scaler = GradScaler("cpu", growth_interval=3)
        CpuFp16.made.append(self)


@pytest.mark.parametrize("folder", ["wgan_gp", "cgan"])
def test_fp16_with_the_gradient_penalty_trains_through_overflows(folder, tmp_path, monkeypatch):
    """fp16 + GradScaler + gradient penalty: the first step (scale 65536) is finite, and
    when the growing scale makes gradients overflow, those updates are skipped and the run
    goes on to its last step (it used to stop at step 1 with a NaN penalty)."""
    import importlib

    train = importlib.import_module(f"{folder}.train")
    monkeypatch.setattr(cloop.cdev, "Precision", CpuFp16)
    CpuFp16.made.clear()
    extra = ["--embed-size", "8", "--ngf", "4", "--ndf", "4"] if folder == "cgan" else ["--ngf", "8", "--ndf", "8"]
    out = tmp_path / folder
    train.main(train.parse_opt(["--image-size", "16", "--batch-size", "16", "--device", "cpu", "--n-critic", "2",
                                "--max-steps", "8", "--log-every", "1", "--sample-every", "100",
                                "--save-every", "100", "--out", str(out), *extra]))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (prec,) = CpuFp16.made
    acc = EventAccumulator(str(out))
    acc.Reload()
    first = acc.Scalars("train/gp")[0]
    assert first.step == 1 and math.isfinite(first.value)  # finite at the initial scale, 65536
    assert prec.scaler.skipped_updates >= 1  # later the scale grew past what fp16 holds
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 8
    assert all(torch.isfinite(v).all() for v in payload["models"]["G"].values() if v.is_floating_point())
    assert payload["scaler"]["scale"] < 2.0 ** 16 * 2 ** 16  # it backed off instead of growing without end
    assert math.isfinite(payload["scaler"]["scale"])
