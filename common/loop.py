"""The training loop's bookkeeping, written once for every train.py.

A train.py keeps the paper's algorithm on screen and hands the rest to two calls:

    session = setup(opt, MODEL_NAME)              # torchrun, seed, device, precision, run name
    ...                                           # data, models, optimizers, run, checkpointer, resume
    loop = TrainLoop(opt, session, run, ckpt, total=epochs * len(loader), start_step=start_step,
                     sample=lambda: sample(G, fixed_z))  # --max-steps caps `total` here, for every folder
    for step, epoch, batch in loop.over(loader):  # resumes mid-epoch; stops on Ctrl-C / --max-minutes
        losses = train_step(G, D, ...)            # the paper's step, visible in train.py
        loop.after_step(step, epoch, losses)      # bar, finite check, logs, samples, checkpoint, eval
    return loop.finish()                          # the last checkpoint, grid and evaluation

`loop.steps()` yields only the step number, for papers whose step reads several batches
(WGAN's n_critic critic iterations). Each chore has one way, here: --max-steps caps the
run's length, `lr_schedulers` (torch.optim.lr_scheduler objects) are brought to the epoch
or the step about to run, --eval-every measures during the run and once more at its end. Nothing
here knows a paper's maths: it is a plain object with three methods, no base class and no
callbacks beyond the two functions a folder passes in (`sample` for the grids, `evaluate`
for --eval-every).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from common import data as cdata
from common import device as cdev
from common import distributed
from common import metrics as cmetrics
from common import run as crun
from common.cli import default_out
from common.errors import NonFiniteLossError

# fp16: a GradScaler that had to skip this many generator steps in a row (each skip halves
# its scale) is not finding a scale: the run has diverged, and stops like a NaN in fp32
MAX_SKIPPED_IN_A_ROW = 20


@dataclass
class Session:
    """Where and how a run computes: the torchrun rank, the device, the precision
    (autocast + GradScaler), the memory format and --compile."""

    info: distributed.DistInfo
    prec: cdev.Precision
    channels_last: bool
    compile: bool = False
    workers: int = 0
    seed: int = 0

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def is_main(self) -> bool:
        return self.info.is_main

    def loader(self, dataset, batch_size: int):
        """A shuffling loader of whole batches, sharded across torchrun ranks, resumable mid-epoch."""
        return cdata.make_loader(dataset, batch_size, workers=self.workers, seed=self.seed, rank=self.info.rank,
                                 world_size=self.info.world_size, pin_memory=self.device.type == "cuda")

    def for_training(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training passes call: torch.compile'd with --compile, inside DDP
        under torchrun. Checkpoints, EMA and samples keep using the plain module."""
        return distributed.wrap(cdev.maybe_compile(model, self.compile), self.info)

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the run's device, in channels_last where that is on."""
        return cdev.prepare_model(model, self.device, self.channels_last)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return cdev.to_input(x, self.device, self.channels_last)


def setup(opt, model_name: str, channels_last: dict[str, bool] | None = None) -> Session:
    """Start a run: torchrun's process group, the seeds (rank-specific), --deterministic,
    --device / --precision / --channels-last resolved, and opt.out filled in.
    `channels_last` is the model's measured table {device kind: NHWC faster?} that an unset
    --channels-last (auto) follows (common.device.resolve_channels_last)."""
    info = distributed.setup(opt.device)
    crun.seed_everything(opt.seed + info.rank, deterministic=getattr(opt, "deterministic", False))
    prec = cdev.Precision(opt.precision, info.device)
    channels_last = cdev.resolve_channels_last(getattr(opt, "channels_last", None), info.device, prec.mode,
                                               channels_last)
    opt.out = default_out(opt, model_name)
    return Session(info, prec, channels_last, compile=getattr(opt, "compile", False),
                   workers=getattr(opt, "workers", 0), seed=opt.seed)


def n_params(model: torch.nn.Module) -> str:
    """'1,234,567': a model's parameter count for the start-up line."""
    return f"{sum(p.numel() for p in model.parameters()):,}"


def evaluation(opt, session: Session, dataset, G: torch.nn.Module, latents: Callable) -> Callable[[], dict] | None:
    """--eval-every's measurement for an unconditional G, or None when it is off (and off
    rank 0): the real half and its features computed once now, and latents of their own
    (`latents(options, n, generator)` seeded with --seed + 1), so evaluating never moves
    the run's random stream. Each call returns a common.metrics report of G's samples."""
    if opt.eval_every <= 0 or not session.is_main:
        return None
    evaluator = cmetrics.Evaluator(dataset, opt.data, n=opt.eval_n, device=session.device)
    z = latents(vars(opt), evaluator.n, torch.Generator().manual_seed(opt.seed + 1))
    return lambda: evaluator(cmetrics.generate(G, z, session.device))


def advance_schedules(schedulers, position: int) -> None:
    """Step each torch.optim.lr_scheduler until it stands at `position` (its last_epoch): the
    epoch about to run, or the number of steps already taken. A run resumed at an epoch's start
    steps its scheduler before this process has called optimizer.step(); torch's warning about
    that order guards against skipping a schedule's first rate, which bringing the scheduler to
    a given position cannot do, so it is silenced here."""
    for scheduler in schedulers:
        while scheduler.last_epoch < position:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
                scheduler.step()


class TrainLoop:
    """Progress bar, finite check, loss all-reduce, TensorBoard scalars, sample grids,
    checkpoints, evaluation, Ctrl-C and --max-minutes for one training run.

    The options decide the cadence: --log-every, --sample-every, --save-every,
    --eval-every (with `evaluate`), --max-minutes, and the length: `total` is the paper's
    number of steps, cut to --max-steps when that is given. `sample()` returns the images
    of one grid (in [-1, 1]); `evaluate()` returns a common.metrics report.
    `lr_schedulers` {name: torch.optim.lr_scheduler object} are brought, before each step,
    to that step's place in the schedule: its epoch (`schedule_every="epoch"`, pix2pix's
    linear decay) or the number of steps before it ("step", SRGAN's halving). The place is
    derived from where the run is, so a checkpoint holds the rate its last step used, and a
    resumed (or lengthened) run starts on the right one. Each one's rate is logged as
    train/lr_<name>. Their state belongs in the Checkpointer's `states`.
    """

    def __init__(self, opt, session: Session, run: crun.Run, checkpointer, *, total: int, start_step: int,
                 sample: Callable[[], torch.Tensor], evaluate: Callable[[], dict] | None = None,
                 grid_columns: int | None = None, lr_schedulers: dict | None = None,
                 schedule_every: str = "epoch"):
        if schedule_every not in ("epoch", "step"):
            raise ValueError(f"schedule_every is 'epoch' or 'step', not {schedule_every!r}")
        self.opt, self.session, self.run, self.ckpt = opt, session, run, checkpointer
        self.info = session.info
        self.total = total if opt.max_steps is None else min(total, opt.max_steps)  # --max-steps
        self.start_step = start_step
        self.lr_schedulers, self.schedule_every = dict(lr_schedulers or {}), schedule_every
        self.step, self.epoch = start_step, 0
        self.sample, self.evaluate_fn, self.grid_columns = sample, evaluate, grid_columns
        self.scaler = session.prec.scaler
        self._skips_seen = getattr(self.scaler, "skipped_updates", 0)
        self._skipped_in_a_row = 0
        self._bar = None
        self._stop = None

    # ------------------------------------------------------------- iteration
    def over(self, loader) -> Iterator[tuple[int, int, object]]:
        """(step, epoch, batch) for steps start_step+1 .. total, one batch each, resuming
        mid-epoch on exactly the batch a run that never stopped would have read."""
        for step, epoch, batch in self._until_stopped(cdata.iterate_steps(loader, self.start_step, self.total)):
            advance_schedules(self.lr_schedulers.values(), epoch if self.schedule_every == "epoch" else step - 1)
            yield step, epoch, batch

    def steps(self) -> Iterator[int]:
        """Step numbers start_step+1 .. total, for a step that reads its own batches."""
        if self.lr_schedulers and self.schedule_every == "epoch":
            raise ValueError("an epoch schedule needs loop.over(loader), which knows the epochs")
        for step in self._until_stopped(range(self.start_step + 1, self.total + 1)):
            advance_schedules(self.lr_schedulers.values(), step - 1)
            yield step

    def _until_stopped(self, items):
        """Open the bar and the Ctrl-C handler, then yield until the end, a Ctrl-C or the
        time budget (checked after each step's bookkeeping, on every rank alike)."""
        budget = crun.TimeBudget(getattr(self.opt, "max_minutes", None), self.info)
        self._bar = self.run.progress(self.total, self.start_step)
        self._stop = crun.GracefulStop(enabled=not self.info.enabled).__enter__()
        try:
            for item in items:
                yield item
                if self._stop.requested or budget.spent():
                    break
        finally:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._stop is not None:
            self._stop.__exit__(None, None, None)
            self._stop = None

    # ----------------------------------------------------------- bookkeeping
    def after_step(self, step: int, epoch: int, losses: dict, log: dict | None = None) -> dict:
        """Everything after the paper's step: the losses (detached tensors) averaged over
        ranks and checked, the bar, TensorBoard (with each scheduler's rate, and `log`: extra
        scalars, e.g. a momentum), the grid, the checkpoint and the evaluation when due."""
        self.step, self.epoch = step, epoch
        opt = self.opt
        stats = torch.stack([v.detach().float() for v in losses.values()])
        values = dict(zip(losses, distributed.all_reduce_mean(stats, self.info).tolist()))
        try:
            values = self._checked(step, values)
        except NonFiniteLossError:
            self._close()
            raise
        self._bar.update(1)
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
        if step % opt.log_every == 0:
            rates = {f"lr_{name}": s.get_last_lr()[0] for name, s in self.lr_schedulers.items()}
            self.run.log_scalars(step, {f"train/{k}": v for k, v in {**values, **rates, **(log or {})}.items()})
        if step % opt.sample_every == 0:
            self._save_grid(step)
        if step % opt.save_every == 0:
            self.ckpt.save(step, epoch)
        if self.evaluate_fn is not None and step % opt.eval_every == 0:
            self._evaluate(step, self._bar.write)
        return values

    def _checked(self, step: int, values: dict) -> dict:
        """The finite check, except where fp16's GradScaler skipped an update whose
        gradients overflowed (it then lowers its scale and training goes on, as intended):
        that step's non-finite values are left out of the logs."""
        skips = getattr(self.scaler, "skipped_updates", 0)
        skipped, self._skips_seen = skips > self._skips_seen, skips
        if not skipped:
            self._skipped_in_a_row = 0
            return crun.check_finite(step, values, self.ckpt.last_path)
        self._skipped_in_a_row += 1
        if self._skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
            raise NonFiniteLossError(f"fp16: the GradScaler skipped {self._skipped_in_a_row} steps in a row up to "
                                     f"step {step} (its scale is now {self.scaler.get_scale():g}): the gradients "
                                     f"overflow at every scale; try --precision bf16 or fp32, or a lower learning "
                                     f"rate (last good checkpoint: {self.ckpt.last_path})")
        return {k: v for k, v in values.items() if torch.isfinite(torch.tensor(v))}

    def _save_grid(self, step: int) -> None:
        if self.info.is_main:
            self.run.save_samples(step, self.sample(), nrow=self.grid_columns)

    def _evaluate(self, step: int, write) -> None:
        report = self.evaluate_fn()
        cmetrics.log_to_run(self.run, step, report, self.ckpt.model_name)
        write(f"step {step}: {cmetrics.format_report(report)}")

    def finish(self) -> Path:
        """After the last step (or a stop): the checkpoint, grid and evaluation that are not
        yet saved for it, where they are; the run directory and torchrun's process group closed."""
        self._close()
        step, opt = self.step, self.opt
        if step > self.start_step:
            # the last checkpoint is written (once) on a thread while the last grid is drawn
            pending = self.ckpt.save_in_background(step, self.epoch) if step % opt.save_every != 0 else None
            try:
                if step % opt.sample_every != 0:
                    self._save_grid(step)
                if self.evaluate_fn is not None and step % opt.eval_every != 0:
                    self._evaluate(step, print)
            finally:
                if pending is not None:
                    pending.wait()
            if self.info.is_main:
                written = self.ckpt.last_save.describe() if self.ckpt.last_save is not None else ""
                print(f"samples: {self.run.sample_path(step)}\ncheckpoint: {self.ckpt.last_path}"
                      + (f" ({written})" if written else ""))
        elif self.info.is_main:
            print(f"nothing to do: the run is already at step {step} of {self.total}")
        self.run.close()
        distributed.cleanup()
        return Path(self.run.directory)
