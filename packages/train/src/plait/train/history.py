"""``History``: what ``Trainer.fit`` returns (Keras-like)."""

from __future__ import annotations

import math
import numbers
from typing import Any

from .callbacks.base import Callback

__all__ = ["History"]


class History(Callback):
    """``history``: ``{name: [value per epoch]}``; ``epoch``: the 0-based epoch indices.

    A key that first appears in a later epoch is padded with NaN for the earlier ones.
    ``stop_reason`` says why training stopped early (None when it ran all its epochs).
    """

    order = -5

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stop_reason: str | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        n = len(self.epoch)
        for key, value in (logs or {}).items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                column = self.history.setdefault(key, [math.nan] * (n - 1))
                column.append(float(value))
        for column in self.history.values():
            if len(column) < n:
                column.append(math.nan)

    def state_dict(self) -> dict[str, Any]:
        return {"history": {k: list(v) for k, v in self.history.items()}, "epoch": list(self.epoch)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = {k: [float(x) for x in v] for k, v in state["history"].items()}
        self.epoch = [int(e) for e in state["epoch"]]

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"
