"""``LearningRateMonitor``: record the learning rate(s) per epoch or per step."""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError

from .base import Callback

__all__ = ["LearningRateMonitor"]


class LearningRateMonitor(Callback):
    """Adds ``lr`` (and ``lr_group<i>`` for further param groups) to the epoch logs, so
    they reach the History, CSVLogger and PlotHistory. The epoch value is the rate used by
    the epoch's last step (before epoch schedulers step). ``self.history`` keeps
    ``(epoch or step, [lr per group])`` pairs at the chosen ``interval``.

    Args:
        interval: default ``"epoch"``; ``"step"`` also records the rates after every batch
            in ``self.history``.

    Raises:
        ConfigError: ``interval`` is neither ``"epoch"`` nor ``"step"``.
    """

    order = -10

    def __init__(self, interval: str = "epoch") -> None:
        super().__init__()
        if interval not in ("epoch", "step"):
            raise ConfigError(f"LearningRateMonitor: interval must be 'epoch' or 'step', got {interval!r}")
        self.interval = interval
        self.history: list[tuple[int, list[float]]] = []

    def log_keys(self) -> list[str]:
        """What this callback adds to the epoch logs (see ``Trainer.log_keys``)."""
        n = len(self.trainer.current_lrs()) if self.trainer is not None else 1
        return ["lr", *(f"lr_group{i}" for i in range(1, n))]

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.interval == "step":
            self.history.append((int((logs or {}).get("step", 0)), self.trainer.current_lrs()))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        lrs = list(getattr(self.trainer, "epoch_lrs", None) or self.trainer.current_lrs())
        if logs is not None and lrs:
            logs["lr"] = lrs[0]
            for i, lr in enumerate(lrs[1:], start=1):
                logs[f"lr_group{i}"] = lr
        if self.interval == "epoch":
            self.history.append((epoch + 1, lrs))
