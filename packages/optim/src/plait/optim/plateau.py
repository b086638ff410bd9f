"""``ReduceLROnPlateau``: cut the learning rate when a metric stops improving (torch semantics).

    sched = ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=3)
    for epoch in ...:
        sched.step(val_loss)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from plait.core.errors import ConfigError

from ._state_checks import checked_state
from .lr_scheduler import check_int, check_number, check_optimizer, per_group

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau:
    """Multiply every group's ``lr`` by ``factor`` after more than ``patience`` steps without improvement.

    Improvement means beating the best metric so far by ``threshold`` (relative: ``best *
    (1 -/+ threshold)``; absolute: ``best -/+ threshold``) in ``mode`` "min" or "max".
    After a cut, ``cooldown`` steps are ignored. Rates never drop below ``min_lr`` (one
    value, or one per group) and changes smaller than ``eps`` are skipped. The defaults
    are torch's.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this cuts.
        mode: default ``"min"`` (a loss); ``"max"`` for a score such as accuracy.
        factor: default 0.1; the cut ``lr *= factor``, in [0, 1).
        patience: default 10; steps without improvement tolerated before a cut (>= 0).
        threshold: default 1e-4; the least improvement that counts, >= 0.
        threshold_mode: default ``"rel"`` (relative to ``best``); or ``"abs"``.
        cooldown: default 0; steps after a cut during which no cut happens (>= 0).
        min_lr: default 0.0; the floor, one number or one per group (>= 0).
        eps: default 1e-8; a cut smaller than this is skipped (>= 0).

    Raises:
        ConfigError: no optimizer, an unknown ``mode`` or ``threshold_mode``, ``factor``
            outside [0, 1), a negative number, or a ``min_lr`` list of the wrong length.
    """

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        name = type(self).__name__
        self.optimizer = check_optimizer(optimizer, name)
        if mode not in ("min", "max"):
            raise ConfigError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ConfigError(f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = check_number(factor, "factor", name, low=0.0, high=1.0)
        if self.factor == 1.0:
            raise ConfigError(f"{name}: factor must be < 1, got {factor!r}")
        self.threshold = check_number(threshold, "threshold", name, low=0.0)
        self.patience = check_int(patience, "patience", name, low=0)
        self.cooldown = check_int(cooldown, "cooldown", name, low=0)
        self.eps = check_number(eps, "eps", name, low=0.0)
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else check_number(min_lr, "min_lr", name, low=0.0)
        self.min_lrs = [check_number(v, "min_lr", name, low=0.0) for v in per_group(min_lr, "min_lr", optimizer, name)]
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def mode_worse(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, current: float, best: float) -> bool:
        """Whether ``current`` improves on ``best`` by more than the threshold, in this ``mode``.

        Args:
            current: the new metric value.
            best: the best value so far.
        """
        if self.mode == "min":
            return current < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return current > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics: float) -> None:
        """Record one value of the monitored metric (e.g. the validation loss of an epoch).

        Args:
            metrics: the metric's value, a number (or anything ``float()`` takes, such as a
                0-d array). Unlike torch's other schedulers it is required.

        Raises:
            ConfigError: ``metrics`` is not a number.
        """
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise ConfigError(f"{type(self).__name__}: step() needs the metric as a number, got {metrics!r}") from None
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ConfigError(
                    f"{type(self).__name__}: the optimizer now has {len(groups)} parameter groups but min_lr "
                    f"gave {len(self.min_lrs)}; set min_lrs to match"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, floor in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, floor)
            if old - new > self.eps:
                group["lr"] = new

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (``best`` may be +-inf: JSON writes it as Infinity)."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; only its keys, each checked (see :func:`checked_state`).

        Args:
            state_dict: what :meth:`state_dict` returned (possibly through JSON).

        Raises:
            SerializationError: an unknown or missing key, or a value of the wrong kind.
        """
        values = checked_state(state_dict, self.state_dict(), owner=type(self).__name__, required=("best",))
        for key, value in values.items():
            setattr(self, key, value)
