"""``LinearWarmup``: a linear ramp of the learning rate, then (optionally) any other schedule.

    cosine = CosineAnnealingLR(opt, T_max=total - 500)
    sched = LinearWarmup(opt, warmup_steps=500, after=cosine, start_factor=0.01)

gives exactly torch's ``SequentialLR(opt, [LinearLR(opt, start_factor, 1.0, 500), cosine],
milestones=[500])``: for ``t < warmup_steps`` the rate is ``base_lr * (start_factor +
(1 - start_factor) * t / warmup_steps)``; at ``t == warmup_steps`` the ``after`` schedule
starts from its epoch 0 (the base rate) and is stepped from there on. Without ``after``
the rate stays at the base rate once warmed up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core.errors import ConfigError, SerializationError

from ._state_checks import checked_state
from .lr_scheduler import LRScheduler, check_int, check_number

__all__ = ["LinearWarmup"]


class LinearWarmup(LRScheduler):
    """Warm up linearly over ``warmup_steps`` steps from ``start_factor * base_lr``, then hand over to ``after``.

    ``after`` must be a scheduler built on the same optimizer (not ReduceLROnPlateau).
    Not in torch (see the module docstring for its torch equivalent); it has no
    ``last_epoch`` argument: resume through :meth:`load_state_dict`.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets.
        warmup_steps: the length of the ramp in steps (an integer >= 1).
        after: default None (stay at the base rate); the schedule that takes over at step
            ``warmup_steps``, built on the same optimizer.
        start_factor: default 1/3 (torch's LinearLR default); the first step's rate is
            ``start_factor * base_lr``, in (0, 1].

    Raises:
        ConfigError: no optimizer, ``warmup_steps < 1``, ``start_factor`` outside (0, 1],
            or ``after`` that is not an LRScheduler on the same optimizer.
    """

    _not_saved = ("optimizer", "after")
    _state_positive = ("start_factor",)  # a zero would divide by zero on the first step

    def __init__(self, optimizer: Any, warmup_steps: int, after: LRScheduler | None = None, start_factor: float = 1.0 / 3) -> None:
        self.warmup_steps = check_int(warmup_steps, "warmup_steps", self.name)
        self.start_factor = check_number(start_factor, "start_factor", self.name, low=0.0, high=1.0, low_open=True)
        if after is not None:
            if not isinstance(after, LRScheduler):
                raise ConfigError(f"{self.name}: after must be an epoch-based LRScheduler (not ReduceLROnPlateau), got {after!r}")
            if after.optimizer is not optimizer:
                raise ConfigError(f"{self.name}: after ({after.name}) must schedule the same optimizer")
            for group in optimizer.param_groups:  # undo the initial step ``after`` took when it was built
                group["lr"] = group["initial_lr"]
            after._undo_initial_step()
        self.after = after
        super().__init__(optimizer, -1)

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (the warm-up, then ``after``).

        Args:
            epoch: default None, the only value accepted: jumping to an epoch is not supported.

        Raises:
            ConfigError: ``epoch`` is given.
        """
        if epoch is not None:
            raise ConfigError(f"{self.name}: step() takes no epoch; it always advances by one")
        self._step_count += 1
        self.last_epoch += 1
        if self.after is None or self.last_epoch < self.warmup_steps:
            for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
                group["lr"] = lr
        elif self.last_epoch == self.warmup_steps:
            self.after._update_lr(0)
        else:
            self.after.step()
        self._last_lr = self._group_lrs()

    def get_lr(self) -> list[float]:
        """torch's ``LinearLR`` recurrence with ``end_factor=1``, ``total_iters=warmup_steps``."""
        t, start, total = self.last_epoch, self.start_factor, self.warmup_steps
        if t == 0:
            return [lr * start for lr in self._group_lrs()]
        if self._is_initial or t > total:
            return self._group_lrs()
        factor = 1.0 + (1.0 - start) / (total * start + (t - 1) * (1.0 - start))
        return [lr * factor for lr in self._group_lrs()]

    def _undo_initial_step(self) -> None:
        if self.after is not None:
            self.after._undo_initial_step()
        else:
            self.last_epoch -= 1

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def _checked(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """Also ``after``'s state, checked by ``after`` itself (so a refused load changes neither)."""
        saved = state_dict.get("after") if isinstance(state_dict, Mapping) else None
        if (saved is None) != (self.after is None):
            raise SerializationError(
                f"{self.name}: the state dict and this scheduler disagree on whether there is an 'after' schedule"
            )
        current = self.state_dict()
        del current["after"]
        values = checked_state({k: v for k, v in state_dict.items() if k != "after"}, current, owner=self.name,
                               positive=self._state_positive)
        if self.after is not None:
            try:
                values["after"] = self.after._checked(saved)
            except SerializationError as exc:
                raise SerializationError(f"{self.name}: state dict field 'after': {exc}") from None
        return values

    def _assign(self, values: Mapping[str, Any]) -> None:
        super()._assign(values)  # leaves out ``after``
        if self.after is not None and values.get("after") is not None:
            self.after._assign(values["after"])
