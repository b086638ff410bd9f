"""``TerminateOnNaN``: stop training at the first non-finite batch loss."""

from __future__ import annotations

import math
import sys
from typing import Any

from .base import Callback

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """Stops training when a batch loss is NaN or infinite, naming where it happened.

    The Trainer checks the loss *before* the backward pass and never applies the update
    of a non-finite batch, so the weights stay those of the last good step. The message
    is kept in ``self.message``, printed to stderr and stored as ``trainer.stop_reason``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.message: str | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        step = (logs or {}).get("step")
        self.message = (
            f"TerminateOnNaN: loss is {loss} at epoch {self.epoch + 1}, batch {batch + 1} "
            f"(global step {step}); training stopped, the update of this batch was not applied"
        )
        print(self.message, file=sys.stderr)
        self.trainer.stop_training = True
        self.trainer.stop_reason = self.message
