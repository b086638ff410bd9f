"""Closed-form learning-rate schedules: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LambdaLR.

Rates are updated from the current ones as torch does (so a sequence matches torch's
exactly and composes with other changes to ``lr``); ``step(epoch)`` uses the closed form.
"""

from __future__ import annotations

import bisect
import math
import types
from collections.abc import Callable, Mapping
from typing import Any

from plait.core.errors import ConfigError

from .lr_scheduler import LRScheduler, check_int, check_number

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LambdaLR", "MultiStepLR", "StepLR"]


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (last_epoch // step_size)``.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        step_size: the number of steps between decays (an integer >= 1; no default, as torch).
        gamma: default 0.1; the factor of each decay, >= 0.
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), ``step_size < 1`` or ``gamma < 0``.
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = check_int(step_size, "step_size", self.name)
        self.gamma = check_number(gamma, "gamma", self.name, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= last_epoch)``; a repeated milestone counts twice.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        milestones: the step indices (integers >= 0, any order) at which the rate decays.
        gamma: default 0.1; the factor of each decay, >= 0.
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), a milestone that is not an integer >= 0, or
            ``gamma < 0``.
    """

    def __init__(self, optimizer: Any, milestones: list[int], gamma: float = 0.1, last_epoch: int = -1) -> None:
        try:
            self.milestones = sorted(check_int(m, "each milestone", self.name, low=0) for m in milestones)
        except TypeError:
            raise ConfigError(f"{self.name}: milestones must be a list of integers, got {milestones!r}") from None
        self.gamma = check_number(gamma, "gamma", self.name, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        hits = self.milestones.count(self.last_epoch)
        if not hits:
            return self._group_lrs()
        return [lr * self.gamma**hits for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** last_epoch``.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        gamma: the factor per step, >= 0 (no default, as torch).
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), or ``gamma < 0``.
    """

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = check_number(gamma, "gamma", self.name, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2`` (SGDR without restarts).

    Past ``T_max`` the rate climbs back up, as in torch.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        T_max: the number of steps of the half cosine (an integer >= 1).
        eta_min: default 0.0; the lowest rate, >= 0.
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), ``T_max < 1`` or ``eta_min < 0``.
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:  # noqa: N803 - torch's name
        self.T_max = check_int(T_max, "T_max", self.name)
        self.eta_min = check_number(eta_min, "eta_min", self.name, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:
            return self._closed_form_lr()
        if (t - 1 - period) % (2 * period) == 0:  # the bottom of the curve: step up again
            rise = (1 - math.cos(math.pi / period)) / 2
            return [lr + (base - eta_min) * rise for lr, base in zip(self._group_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
        return [ratio * (lr - eta_min) + eta_min for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        t, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        return [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2 for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(last_epoch)``; one function, or a list with one per parameter group.

    Like torch, :meth:`state_dict` does not save plain functions (lambdas): it saves
    ``None`` in their place, or the ``__dict__`` of a callable object.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        lr_lambda: ``step -> factor`` (a callable), or a list of them, one per group.
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), a non-callable ``lr_lambda``, or a list of
            another length than the optimizer's groups.
    """

    _not_saved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float] | list[Callable[[int], float]], last_epoch: int = -1) -> None:
        n = len(getattr(optimizer, "param_groups", ()))
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ConfigError(f"{self.name}: got {len(lr_lambda)} lr_lambdas, but the optimizer has {n} parameter groups")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise ConfigError(f"{self.name}: lr_lambda must be callable (epoch -> factor), got {fn!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(vars(fn)) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        values = self._checked(state_dict)  # lr_lambdas: None for a function, else its checked __dict__
        self._assign(values)
        for fn, saved in zip(self.lr_lambdas, values.get("lr_lambdas") or ()):
            if saved is not None:
                vars(fn).update(saved)
