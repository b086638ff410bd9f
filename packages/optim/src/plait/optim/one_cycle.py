"""``OneCycleLR``: the 1cycle policy (Smith & Topin, 2018), as ``torch.optim.lr_scheduler.OneCycleLR``.

The rate climbs from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start``
of ``total_steps``, then anneals to ``max_lr / div_factor / final_div_factor`` (with
``three_phase``: back down to the start first, then to the minimum). Momentum (or Adam's
beta1) moves the opposite way between ``max_momentum`` and ``base_momentum``. Step it
once per batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from plait.core.errors import ConfigError

from ._state_checks import check_cycle_momentum
from .lr_scheduler import LRScheduler, check_int, check_number, check_optimizer, per_group

__all__ = ["OneCycleLR"]


def anneal_cos(start: float, end: float, pct: float) -> float:
    """Cosine from ``start`` (pct=0) to ``end`` (pct=1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def anneal_linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


_ANNEAL = {"cos": anneal_cos, "linear": anneal_linear}


class OneCycleLR(LRScheduler):
    """One cycle of learning rate (and momentum) over ``total_steps`` (or ``epochs * steps_per_epoch``).

    The defaults are torch's. Stepping past ``total_steps`` is a ConfigError, as torch's
    ValueError.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        max_lr: the peak rate, one number or one per group (>= 0).
        total_steps: default None; the cycle's length in steps (>= 1). When None, both
            ``epochs`` and ``steps_per_epoch`` must be given.
        epochs: default None; with ``steps_per_epoch``, ``total_steps = epochs *
            steps_per_epoch``.
        steps_per_epoch: default None; see ``epochs``.
        pct_start: default 0.3; the fraction of the cycle spent rising, in [0, 1].
        anneal_strategy: default ``"cos"``; or ``"linear"``.
        cycle_momentum: default True; move the momentum (or Adam's beta1) opposite to the
            rate. Needs an optimizer with ``momentum`` or ``betas``.
        base_momentum: default 0.85; the momentum at the peak rate, one or one per group.
        max_momentum: default 0.95; the momentum at the lowest rates, one or one per group.
        div_factor: default 25.0; the starting rate is ``max_lr / div_factor`` (> 0).
        final_div_factor: default 1e4; the final rate is the starting rate divided by it (> 0).
        three_phase: default False; True goes back down to the starting rate before
            annealing to the final one (fast.ai's schedule).
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), neither ``total_steps`` nor both ``epochs``
            and ``steps_per_epoch``, a value out of range, an unknown ``anneal_strategy``, a
            per-group list of the wrong length, or ``cycle_momentum`` with an optimizer that
            has neither momentum nor betas.
    """

    def __init__(
        self,
        optimizer: Any,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer, self.name)
        if total_steps is not None:
            self.total_steps = check_int(total_steps, "total_steps", self.name)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = check_int(epochs, "epochs", self.name) * check_int(steps_per_epoch, "steps_per_epoch", self.name)
        else:
            raise ConfigError(f"{self.name}: give total_steps, or both epochs and steps_per_epoch")
        pct_start = check_number(pct_start, "pct_start", self.name, low=0.0, high=1.0)
        if anneal_strategy not in _ANNEAL:
            raise ConfigError(f"{self.name}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        div_factor = check_number(div_factor, "div_factor", self.name, low=0.0, low_open=True)
        final_div_factor = check_number(final_div_factor, "final_div_factor", self.name, low=0.0, low_open=True)
        self._schedule_phases = self._phases(pct_start, bool(three_phase))

        max_lrs = [check_number(v, "max_lr", self.name, low=0.0) for v in per_group(max_lr, "max_lr", optimizer, self.name)]
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            defaults = getattr(optimizer, "defaults", {})
            if "momentum" not in defaults and "betas" not in defaults:
                raise ConfigError(f"{self.name}: cycle_momentum=True needs an optimizer with momentum or betas (got {type(optimizer).__name__})")
            self.use_beta1 = "betas" in defaults
            tops = per_group(max_momentum, "max_momentum", optimizer, self.name)
            bottoms = per_group(base_momentum, "base_momentum", optimizer, self.name)
            if last_epoch == -1:
                for group, top, bottom in zip(optimizer.param_groups, tops, bottoms):
                    self._set_momentum(group, top)
                    group["max_momentum"] = top
                    group["base_momentum"] = bottom
        super().__init__(optimizer, last_epoch)

    def _phases(self, pct_start: float, three_phase: bool) -> list[dict[str, Any]]:
        """Each phase: the step it ends on and the group keys it anneals between."""
        rise = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        if three_phase:
            return [
                {"end_step": rise, "lr": ("initial_lr", "max_lr"), "momentum": ("max_momentum", "base_momentum")},
                {"end_step": float(2 * pct_start * self.total_steps) - 2, "lr": ("max_lr", "initial_lr"), "momentum": ("base_momentum", "max_momentum")},
                {"end_step": last, "lr": ("initial_lr", "min_lr"), "momentum": ("max_momentum", "max_momentum")},
            ]
        return [
            {"end_step": rise, "lr": ("initial_lr", "max_lr"), "momentum": ("max_momentum", "base_momentum")},
            {"end_step": last, "lr": ("max_lr", "min_lr"), "momentum": ("base_momentum", "max_momentum")},
        ]

    def _checked(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """Also: the momentum fields must fit this optimizer (``betas`` or ``momentum``)."""
        values = super()._checked(state_dict)
        check_cycle_momentum(self, values)
        return values

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ConfigError(f"{self.name}: stepped {step} times, but total_steps is {self.total_steps}")
        anneal = _ANNEAL[self.anneal_strategy]
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(anneal(group[phase["lr"][0]], group[phase["lr"][1]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, anneal(group[phase["momentum"][0]], group[phase["momentum"][1]], pct))
                    break
                start_step = end_step
        return lrs
