"""``EarlyStopping``: stop when a monitored value has stopped improving."""

from __future__ import annotations

import math
import sys
from typing import Any

from plait.core import ConfigError, get_array_module

from .base import Callback

__all__ = ["EarlyStopping", "resolve_mode"]

_MAX_HINTS = ("acc", "f1", "precision", "recall", "auc")


def resolve_mode(monitor: str, mode: str) -> str:
    """``"min"``/``"max"``; ``"auto"`` means max for accuracy-like names, min otherwise."""
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if any(h in monitor for h in _MAX_HINTS) else "min"


def known_log_keys(callback: Callback) -> list[str] | None:
    """Every epoch-log key ``callback`` can see (``trainer.log_keys()``), or None when a
    callback running before it may add keys without declaring them (a ``log_keys()``
    method): then nothing can be refused up front."""
    trainer = callback.trainer
    if not callable(getattr(trainer, "log_keys", None)):
        return None
    for cb in getattr(trainer, "_callback_list", None) or ():
        if cb is callback:
            break
        overrides = getattr(type(cb), "on_epoch_end", None) is not Callback.on_epoch_end
        if overrides and not callable(getattr(cb, "log_keys", None)) and not type(cb).__module__.startswith("plait.train"):
            return None
    return trainer.log_keys()


class Improvement:
    """Tracks the best value of a monitored quantity."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict[str, Any] | None, who: str) -> float:
        logs = logs or {}
        if self.monitor not in logs:
            raise ConfigError(f"{who}: monitored value {self.monitor!r} is not in the logs; available: {sorted(logs)}")
        return float(logs[self.monitor])

    def improves(self, current: float) -> bool:
        if math.isnan(current):
            return False
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stops training after ``patience`` epochs without improvement of ``monitor``.

    An epoch improves when the value beats the best so far by more than ``min_delta``.
    With ``restore_best_weights`` the weights of the best epoch are copied back into the
    model when training is stopped (as in Keras; if training ends by running out of
    epochs the last weights are kept). ``stopped_epoch`` is the 0-based epoch at which
    training stopped (None when it did not), ``best_epoch`` that of the best value.

    When it stops training it says why (on stderr, main process only; ``verbose=False``
    silences it); the same text is ``trainer.stop_reason`` and ``history.stop_reason``.
    A ``monitor`` that the fit can never log (``trainer.log_keys()``, e.g. ``val_loss``
    without validation data) is refused when training begins, listing what can be;
    when a callback running before it may add log entries without declaring them (a
    ``log_keys()`` method), the check waits for the first epoch's logs instead.

    Args:
        monitor: default ``"val_loss"`` (as Keras); the epoch-log key to watch.
        patience: default 0 (as Keras: stop after the first epoch without improvement);
            epochs without improvement tolerated.
        min_delta: default 0.0; the least change that counts as an improvement (its sign
            is ignored).
        mode: default ``"auto"`` (max for names containing acc, f1, precision, recall or
            auc; min otherwise); or ``"min"``/``"max"``.
        restore_best_weights: default False (as Keras); True copies the best epoch's
            weights back when training is stopped.
        baseline: default None; a value the monitored quantity must beat; training stops
            if it does not within ``patience`` epochs.
        verbose: default True (Keras' default is 0, silent); print why training stopped.

    Raises:
        ConfigError: an unknown ``mode``; when training begins or ends an epoch, a
            ``monitor`` the fit can never log.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
        baseline: float | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        self.tracker = Improvement(monitor, mode, min_delta)
        self.monitor = monitor
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.baseline = baseline
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.tracker.best = self.baseline if self.baseline is not None else (
            math.inf if self.tracker.mode == "min" else -math.inf
        )
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, Any] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        keys = known_log_keys(self)
        if keys is not None and self.monitor not in keys:
            hint = " (val_* entries need validation_data or validation_split)" if self.monitor.startswith("val_") else ""
            raise ConfigError(
                f"EarlyStopping: monitor={self.monitor!r} never appears in the logs of this fit{hint}; "
                f"it can monitor: {', '.join(keys)}"
            )
        if not getattr(self.trainer, "resumed", False):
            self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = self.tracker.value(logs, "EarlyStopping")
        if self.tracker.improves(current):
            self.tracker.best = current
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = {k: get_array_module(v).array(v, copy=True) for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            best = (
                f"best {self.tracker.best:.6g} at epoch {self.best_epoch + 1}"
                if self.best_epoch is not None
                else f"never better than {self.tracker.best:.6g}"
            )
            self.trainer.stop_reason = (
                f"EarlyStopping: {self.monitor} did not improve for {self.wait} epoch(s) "
                f"(patience {self.patience}, min_delta {self.tracker.min_delta:g}; {best}); training stopped"
            )
            if self.restore_best_weights and self.best_weights is not None:
                self.model.load_state_dict(self.best_weights)
                self.trainer.stop_reason += f"; restored the weights of epoch {self.best_epoch + 1}"
            strategy = getattr(self.trainer, "strategy", None)
            if self.verbose and getattr(strategy, "is_main", True):
                print(f"Epoch {epoch + 1}: {self.trainer.stop_reason}", file=sys.stderr)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.tracker.best,
            "wait": self.wait,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]
        self.wait = state["wait"]
        self.best_epoch = state["best_epoch"]
        self.best_weights = state["best_weights"]
