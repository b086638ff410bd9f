"""Periodic schedules: CosineAnnealingWarmRestarts (SGDR) and CyclicLR, as torch.optim.lr_scheduler's."""

from __future__ import annotations

import math
import numbers
import types
from collections.abc import Callable, Mapping
from typing import Any

from plait.core.errors import ConfigError

from ._state_checks import check_cycle_momentum
from .factor_schedules import ConfigurableScheduler
from .lr_scheduler import check_int, check_number, check_optimizer, per_group

__all__ = ["CosineAnnealingWarmRestarts", "CyclicLR"]


class CosineAnnealingWarmRestarts(ConfigurableScheduler):
    """SGDR (Loshchilov & Hutter, 2017): ``lr = eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2``.

    ``T_cur`` counts steps since the last restart; a restart happens after ``T_i`` steps,
    and the next period is ``T_i * T_mult``. ``step(epoch)`` also takes a fractional
    epoch (``epoch + batch / batches_per_epoch``), as in torch.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        T_0: the length of the first period in steps (an integer >= 1; no default, as torch).
        T_mult: default 1 (equal periods); each period is ``T_mult`` times the previous one
            (an integer >= 1).
        eta_min: default 0.0; the lowest rate, >= 0.
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), ``T_0`` or ``T_mult`` below 1, or
            ``eta_min < 0``.
    """

    _config_args = ("T_0", "T_mult", "eta_min")

    def __init__(self, optimizer: Any, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1) -> None:  # noqa: N803 - torch's names
        self.T_0 = check_int(T_0, "T_0", self.name)
        self.T_i = self.T_0
        self.T_mult = check_int(T_mult, "T_mult", self.name)
        self.eta_min = check_number(eta_min, "eta_min", self.name, low=0.0)
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        eta_min = self.eta_min
        return [eta_min + (base - eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2 for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one step, or jump to ``epoch``.

        Args:
            epoch: default None (advance by one); a finite number >= 0, fractional allowed
                (``epoch + batch / batches_per_epoch``), sets the position in the cycle.

        Raises:
            ConfigError: ``epoch`` is negative, infinite or not a number.
        """
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if isinstance(epoch, bool) or not isinstance(epoch, numbers.Real) or not epoch >= 0 or math.isinf(epoch):
                raise ConfigError(f"{self.name}: step(epoch) needs a finite epoch >= 0, got {epoch!r}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._group_lrs()


_MODES = ("triangular", "triangular2", "exp_range")


class CyclicLR(ConfigurableScheduler):
    """Cyclical learning rates (Smith, 2017): the rate goes from ``base_lr`` up to ``max_lr``
    in ``step_size_up`` steps and back in ``step_size_down`` (default: the same).

    ``mode``: ``"triangular"`` (constant amplitude), ``"triangular2"`` (halved every
    cycle), ``"exp_range"`` (scaled by ``gamma ** step``); or a custom ``scale_fn`` of the
    cycle number (``scale_mode="cycle"``) or step (``"iterations"``). With
    ``cycle_momentum`` the momentum (Adam's beta1) moves the opposite way between
    ``max_momentum`` and ``base_momentum``. Step it once per batch. As in torch, a
    ``scale_fn`` that is a plain function is not saved in :meth:`state_dict`.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        base_lr: the lowest rate, one number or one per group (>= 0); it replaces the
            groups' ``lr`` when the schedule starts.
        max_lr: the highest rate of the first cycle, one number or one per group (>= 0).
        step_size_up: default 2000; steps from ``base_lr`` to ``max_lr`` (>= 1).
        step_size_down: default None (equal to ``step_size_up``); steps back down (>= 1).
        mode: default ``"triangular"``; or ``"triangular2"`` or ``"exp_range"`` (ignored
            when ``scale_fn`` is given).
        gamma: default 1.0; the per-step factor of ``"exp_range"``, >= 0.
        scale_fn: default None; a custom amplitude ``f(x)`` (normally in [0, 1]) replacing
            ``mode``.
        scale_mode: default ``"cycle"``; ``x`` of ``scale_fn`` is the cycle number, or the
            step with ``"iterations"``.
        cycle_momentum: default True; move the momentum (or Adam's beta1) opposite to the
            rate. Needs an optimizer with ``momentum`` or ``betas``.
        base_momentum: default 0.8; the momentum at the rate's peak, one or one per group.
        max_momentum: default 0.9; the momentum at ``base_lr``, one or one per group.
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), a negative rate or ``gamma``, a step size below
            1, an unknown ``mode`` or ``scale_mode``, a non-callable ``scale_fn``, a per-group
            list of the wrong length, or ``cycle_momentum`` with an optimizer that has neither
            momentum nor betas.
    """

    _not_saved = ("optimizer", "_scale_fn_custom")
    _state_choices = {"mode": ("triangular", "triangular2", "exp_range"), "scale_mode": ("cycle", "iterations")}

    def __init__(
        self,
        optimizer: Any,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer, self.name)
        base_lrs = [check_number(v, "base_lr", self.name, low=0.0) for v in per_group(base_lr, "base_lr", optimizer, self.name)]
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = [check_number(v, "max_lr", self.name, low=0.0) for v in per_group(max_lr, "max_lr", optimizer, self.name)]
        up = float(check_int(step_size_up, "step_size_up", self.name))
        down = float(check_int(step_size_down, "step_size_down", self.name)) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if scale_fn is None and mode not in _MODES:
            raise ConfigError(f"{self.name}: mode must be one of {_MODES} (or give scale_fn), got {mode!r}")
        if scale_fn is not None and not callable(scale_fn):
            raise ConfigError(f"{self.name}: scale_fn must be callable, got {scale_fn!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ConfigError(f"{self.name}: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode = mode
        self.gamma = check_number(gamma, "gamma", self.name, low=0.0)
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            defaults = getattr(optimizer, "defaults", {})
            if "momentum" not in defaults and "betas" not in defaults:
                raise ConfigError(f"{self.name}: cycle_momentum=True needs an optimizer with momentum or betas (got {type(optimizer).__name__})")
            self.use_beta1 = "betas" in defaults
            self.base_momentums = per_group(base_momentum, "base_momentum", optimizer, self.name)
            self.max_momentums = per_group(max_momentum, "max_momentum", optimizer, self.name)
            if last_epoch == -1:
                for top, bottom, group in zip(self.max_momentums, self.base_momentums, optimizer.param_groups):
                    self._set_momentum(group, top)
                    group["max_momentum"] = top
                    group["base_momentum"] = bottom
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def scale_fn(self, x: float) -> float:
        """The amplitude factor of ``mode`` (or the custom ``scale_fn``) at ``x``.

        Args:
            x: the cycle number (from 1) or, for ``"exp_range"`` and ``scale_mode=
                "iterations"``, the step.
        """
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 0.5 ** (x - 1)  # = 1 / 2 ** (x - 1), but goes to 0 instead of overflowing
        return self.gamma**x

    def get_lr(self) -> list[float]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        scale_factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base + (top - base) * scale_factor * scale for base, top in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, bottom, top in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                self._set_momentum(group, top - (top - bottom) * scale_factor * scale)
        return lrs

    def config(self) -> dict[str, Any]:
        if self._scale_fn_custom is not None:
            raise ConfigError(f"{self.name}: a custom scale_fn has no JSON form, so this scheduler has no config()")
        cfg = super().config()
        step_size_up = round(self.total_size * self.step_ratio)
        cfg.update(
            base_lr=list(self.base_lrs), max_lr=list(self.max_lrs), step_size_up=step_size_up,
            step_size_down=round(self.total_size) - step_size_up, mode=self.mode, gamma=self.gamma,
            cycle_momentum=self.cycle_momentum,
        )  # fmt: skip
        if self.cycle_momentum:
            cfg.update(base_momentum=list(self.base_momentums), max_momentum=list(self.max_momentums))
        return cfg

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = None if fn is None or isinstance(fn, types.FunctionType) else dict(vars(fn))
        return state

    def _checked(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """Also: the momentum fields must fit this optimizer (``betas`` or ``momentum``)."""
        values = super()._checked(state_dict)
        check_cycle_momentum(self, values)
        return values

    def _assign(self, values: Mapping[str, Any]) -> None:
        super()._assign(values)
        saved = values.get("_scale_fn_custom")  # checked: None, or the keys of this callable object's __dict__
        if saved is not None and self._scale_fn_custom is not None:
            vars(self._scale_fn_custom).update(saved)
