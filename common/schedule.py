"""Learning-rate schedules a run saves in its checkpoint (common.checkpoint's `states`)."""
from __future__ import annotations

import torch


class LinearDecay:
    """Constant learning rate for the first `epochs - decay_epochs` epochs, then linear decay
    towards zero over the last `decay_epochs` (pix2pix, CycleGAN Sec. 7.1, pix2pixHD).

    The factor in (0-based) epoch e is 1 - max(0, e + 1 - n_constant) / (decay_epochs + 1),
    the official CycleGAN/pix2pix code's rule: 1 through epoch n_constant - 1, then steps of
    1 / (decay_epochs + 1) down to 1 / (decay_epochs + 1) in the last epoch.
    The rate is a pure function of the epoch (set_epoch writes it into the optimizer), so a
    resumed run gets it right at any step. The checkpoint records the schedule and the epoch
    it last set; on resume the schedule comes from the current options (the same ones give
    the same rates; a longer --epochs extends the run) and only the epoch is restored."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, epochs: int, decay_epochs: int, *,
                 reaches_zero: bool = False):
        if not 0 <= decay_epochs <= epochs:
            raise ValueError(f"decay_epochs must be in 0..epochs ({epochs}), got {decay_epochs}")
        self.optimizer, self.lr = optimizer, lr
        self.n_constant, self.decay_epochs = epochs - decay_epochs, decay_epochs
        self.reaches_zero = reaches_zero
        self.epoch = -1

    def factor(self, epoch: int) -> float:
        """reaches_zero (pix2pixHD's update_learning_rate, lr -= lr0 / decay_epochs after each epoch
        past the constant ones): 1 - max(0, e - n_constant) / decay_epochs, 1 in the first decaying
        epoch and 1 / decay_epochs in the last; otherwise the CycleGAN/pix2pix rule above."""
        if self.reaches_zero:
            return max(0.0, 1.0 - max(0, epoch - self.n_constant) / max(1, self.decay_epochs))
        return max(0.0, 1.0 - max(0, epoch + 1 - self.n_constant) / (self.decay_epochs + 1))

    def set_epoch(self, epoch: int) -> float:
        """Set the optimizer's rate for `epoch`; return it."""
        self.epoch = epoch
        rate = self.lr * self.factor(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def state_dict(self) -> dict:
        return {"lr": self.lr, "n_constant": self.n_constant, "decay_epochs": self.decay_epochs,
                "reaches_zero": self.reaches_zero, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        if self.epoch >= 0:
            self.set_epoch(self.epoch)


class MultiStep:
    """The learning rate multiplied by `gamma` at each milestone step (SRGAN's 1e-4 -> 1e-5 halfway
    through its GAN stage; ESRGAN's halvings). A pure function of the step, like LinearDecay: the
    checkpoint records the schedule and the last step it set; on resume the current options give
    the rates."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, milestones: list[int] | tuple[int, ...],
                 gamma: float = 0.1):
        self.optimizer, self.lr = optimizer, lr
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma
        self.step = 0

    def rate(self, step: int) -> float:
        """The rate for (1-based) `step`: lr * gamma ** (milestones already passed)."""
        return self.lr * self.gamma ** sum(step > m for m in self.milestones)

    def set_step(self, step: int) -> float:
        self.step = step
        rate = self.rate(step)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def state_dict(self) -> dict:
        return {"lr": self.lr, "milestones": list(self.milestones), "gamma": self.gamma, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        if self.step > 0:
            self.set_step(self.step)
