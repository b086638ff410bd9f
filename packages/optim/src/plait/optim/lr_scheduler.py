"""The learning-rate scheduler base class, with ``torch.optim.lr_scheduler`` semantics.

Building a scheduler records each group's starting rate as ``group["initial_lr"]`` (kept
if already there), stores them as ``base_lrs`` and takes an initial step, setting
``last_epoch`` to 0 (or to ``last_epoch + 1`` when resuming). Each :meth:`step` then sets
every group's ``lr``. Whether a step is a batch or an epoch is the caller's choice.

Subclasses give ``get_lr()`` (the next rates, usually from the current ones, exactly as
torch computes them so the sequences match to the last bit) and, when there is one,
``_closed_form_lr()`` (the rates at ``last_epoch`` from ``base_lrs``), used by
``step(epoch)``.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping
from typing import Any

from plait.core.errors import ConfigError

from ._state_checks import checked_state

__all__ = ["LRScheduler"]


class LRScheduler:
    """Base class of every epoch/step-based learning-rate scheduler.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``).
    """

    #: Attributes that :meth:`state_dict` leaves out (never the hyper-parameters).
    _not_saved: tuple[str, ...] = ("optimizer",)
    #: The strings a saved string field may hold, by field name (checked by :meth:`load_state_dict`).
    _state_choices: Mapping[str, tuple[str, ...]] = {}
    #: Saved numbers that must be > 0 for this scheduler (beyond the common ones, e.g. ``T_max``).
    _state_positive: tuple[str, ...] = ()

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        self.optimizer = check_optimizer(optimizer, self.name)
        if not isinstance(last_epoch, int) or isinstance(last_epoch, bool) or last_epoch < -1:
            raise ConfigError(f"{self.name}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        groups = optimizer.param_groups
        if last_epoch == -1:
            for group in groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(groups):
                if "initial_lr" not in group:
                    raise ConfigError(
                        f"{self.name}: last_epoch={last_epoch} resumes a schedule, but param_groups[{i}] has no "
                        "'initial_lr'; load the optimizer's state dict first, or start with last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in groups]
        self.last_epoch = last_epoch
        self._initial_step()

    @property
    def name(self) -> str:
        return type(self).__name__

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (or jump to ``epoch``, using the closed form where there is one).

        Args:
            epoch: default None (advance by one); an explicit step index sets
                ``last_epoch`` to it (deprecated in torch, kept for porting).
        """
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._closed_form_lr() if hasattr(self, "_closed_form_lr") else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _undo_initial_step(self) -> None:
        """Step back once (a composing scheduler takes the initial step itself)."""
        self.last_epoch -= 1

    def get_lr(self) -> list[float]:
        """The rates for the new ``last_epoch`` (called by :meth:`step`; use :meth:`get_last_lr` to read)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates the last step set, one per parameter group."""
        return list(self._last_lr)

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer: plain numbers, strings and lists (JSON-able)."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k not in self._not_saved and k != "_is_initial"}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved, checked first (see :func:`checked_state`).

        Only this scheduler's own keys are accepted, each of the kind it has now (counters
        are integers in range, rates finite numbers, per-group lists of the right length);
        a bad entry raises :class:`SerializationError` naming the field and changes nothing.

        Args:
            state_dict: what :meth:`state_dict` returned (possibly through JSON).

        Raises:
            SerializationError: an unknown or missing key, or a value of the wrong kind.
        """
        self._assign(self._checked(state_dict))

    def _checked(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        return checked_state(state_dict, self.state_dict(), owner=self.name, choices=self._state_choices,
                             positive=self._state_positive)

    def _assign(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if key not in self._not_saved:
                setattr(self, key, value)

    def __repr__(self) -> str:
        return f"{self.name}(last_epoch={self.last_epoch}, last_lr={getattr(self, '_last_lr', None)})"


def check_optimizer(optimizer: Any, where: str) -> Any:
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g for g in groups):
        raise ConfigError(f"{where}: expected an optimizer (with param_groups holding 'lr'), got {type(optimizer).__name__}")
    return optimizer


def check_number(value: Any, name: str, where: str, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False) -> float:
    """A real number in [low, high] (or (low, high] with ``low_open``), else a ConfigError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value < low or value > high or (low_open and value == low)):
        ok = False
    if not ok:
        left = "(" if low_open else "["
        raise ConfigError(f"{where}: {name} must be a finite number in {left}{low:g}, {high:g}], got {value!r}")
    return float(value)


def check_int(value: Any, name: str, where: str, *, low: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{where}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def per_group(value: Any, name: str, optimizer: Any, where: str) -> list[Any]:
    """One value per parameter group: a list/tuple of the right length, or one value repeated."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(f"{where}: {name} has {len(value)} values, but the optimizer has {n} parameter groups")
        return list(value)
    return [value] * n
