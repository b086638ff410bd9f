"""``History``: what ``Trainer.fit`` returns (Keras-like)."""

from __future__ import annotations

import math
import numbers
from typing import Any

from plait.core import ConfigError

from .callbacks.base import Callback

__all__ = ["History"]

_MAX_EPOCHS = 10**9


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
        """Restore from a checkpoint: ``{"history": {name: [number, ...]}, "epoch": [int, ...]}``, all columns
        as long as ``epoch`` (ConfigError naming the field otherwise)."""
        if not isinstance(state, dict) or set(state) != {"history", "epoch"}:
            raise ConfigError(f"History state: expected the keys history and epoch, got {str(state)[:120]}")
        epochs, columns = state["epoch"], state["history"]
        if (not isinstance(epochs, list) or len(epochs) > _MAX_EPOCHS
                or not all(isinstance(e, int) and not isinstance(e, bool) and 0 <= e <= _MAX_EPOCHS for e in epochs)):
            raise ConfigError(f"History state: 'epoch' must be a list of epoch numbers, got {str(epochs)[:80]}")
        if not isinstance(columns, dict) or len(columns) > 10_000:
            raise ConfigError("History state: 'history' must map metric names to lists of numbers")
        for key, values in columns.items():
            if not isinstance(key, str) or not 0 < len(key) <= 200:
                raise ConfigError(f"History state: metric name {str(key)[:80]!r} must be 1 to 200 characters")
            if (not isinstance(values, list) or len(values) != len(epochs) or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)):
                raise ConfigError(f"History state: history[{key!r}] must be {len(epochs)} numbers")
        self.history = {k: [float(x) for x in v] for k, v in columns.items()}
        self.epoch = list(epochs)

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"
