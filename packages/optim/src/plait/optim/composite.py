"""Schedules made of schedules: SequentialLR and ChainedScheduler (torch's), and ``build_scheduler``.

    warmup = LinearLR(opt, start_factor=0.01, total_iters=500)
    decay = CosineAnnealingLR(opt, T_max=9500)
    sched = SequentialLR(opt, [warmup, decay], milestones=[500])   # warm-up, then cosine
    both = ChainedScheduler([ConstantLR(opt, 0.5, 10), ExponentialLR(opt, 0.99)])  # factors multiply
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping, Sequence
from typing import Any

from plait.core.errors import ConfigError, SerializationError

from ._state_checks import checked_state
from .factor_schedules import ConfigurableScheduler
from .lr_scheduler import LRScheduler, check_int, check_optimizer

__all__ = ["ChainedScheduler", "SequentialLR", "build_scheduler"]


def _check_children(schedulers: Any, optimizer: Any, where: str) -> list[LRScheduler]:
    try:
        children = list(schedulers)
    except TypeError:
        raise ConfigError(f"{where}: schedulers must be a list of schedulers, got {type(schedulers).__name__}") from None
    if not children:
        raise ConfigError(f"{where}: expects at least one scheduler, got none")
    for i, s in enumerate(children):
        if not isinstance(s, LRScheduler):
            raise ConfigError(
                f"{where}: schedulers[{i}] must be an epoch-based LRScheduler (not ReduceLROnPlateau), got {type(s).__name__}"
            )
        if s.optimizer is not optimizer:
            raise ConfigError(f"{where}: schedulers[{i}] ({s.name}) schedules another optimizer; all must share one")
    return children


class _Composite(ConfigurableScheduler):
    """State dicts hold each child's state dict under ``_schedulers``."""

    _not_saved = ("optimizer", "_schedulers")
    _schedulers: list[LRScheduler]

    def _undo_initial_step(self) -> None:
        for s in self._schedulers:
            s._undo_initial_step()

    def state_dict(self) -> dict[str, Any]:
        state = {k: copy.deepcopy(v) for k, v in vars(self).items() if k not in self._not_saved and k != "_is_initial"}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def _checked(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """Every entry checked, each child's state by the child itself, before anything is assigned."""
        children = state_dict.get("_schedulers") if isinstance(state_dict, Mapping) else None
        if not isinstance(children, list) or len(children) != len(self._schedulers):
            raise SerializationError(
                f"{self.name}: the state dict must hold '_schedulers', one state per scheduler ({len(self._schedulers)})"
            )
        current = self.state_dict()
        del current["_schedulers"]
        values = checked_state({k: v for k, v in state_dict.items() if k != "_schedulers"}, current, owner=self.name,
                               required=("last_epoch",) if "last_epoch" in current else (), choices=self._state_choices,
                               positive=self._state_positive)
        checked = []
        for i, (s, saved) in enumerate(zip(self._schedulers, children)):
            try:
                checked.append(s._checked(saved))
            except SerializationError as exc:
                raise SerializationError(f"{self.name}: state dict field '_schedulers[{i}]': {exc}") from None
        values["_schedulers"] = checked
        return values

    def _assign(self, values: Mapping[str, Any]) -> None:
        for s, saved in zip(self._schedulers, values.get("_schedulers", ())):
            s._assign(saved)
        super()._assign({k: v for k, v in values.items() if k != "_schedulers"})

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(s.name for s in self._schedulers)}, last_lr={getattr(self, '_last_lr', None)})"


class SequentialLR(_Composite):
    """``schedulers[i]`` runs from ``milestones[i - 1]`` (starting there from its epoch 0,
    the base rate) until ``milestones[i]``.

    Args:
        optimizer: the optimizer every scheduler in ``schedulers`` was built on.
        schedulers: the schedulers in order (LRSchedulers, not ReduceLROnPlateau).
        milestones: the steps at which the next scheduler takes over: one fewer than
            ``schedulers``, increasing integers >= 0.
        last_epoch: default -1 (a fresh schedule); the last step taken when resuming.

    Raises:
        ConfigError: no schedulers, a scheduler on another optimizer or not an
            LRScheduler, the wrong number of milestones, milestones out of order, or
            ``last_epoch < -1``.
    """

    _config_args = ("schedulers", "milestones")

    def __init__(self, optimizer: Any, schedulers: Sequence[LRScheduler], milestones: Sequence[int], last_epoch: int = -1) -> None:
        check_optimizer(optimizer, self.name)
        self._schedulers = _check_children(schedulers, optimizer, self.name)
        try:
            self._milestones = [check_int(m, "each milestone", self.name, low=0) for m in milestones]
        except TypeError:
            raise ConfigError(f"{self.name}: milestones must be a list of integers, got {milestones!r}") from None
        if len(self._milestones) != len(self._schedulers) - 1:
            raise ConfigError(
                f"{self.name}: needs one milestone fewer than schedulers, got {len(self._schedulers)} schedulers "
                f"and {len(self._milestones)} milestones"
            )
        if self._milestones != sorted(self._milestones):
            raise ConfigError(f"{self.name}: milestones must be in increasing order, got {self._milestones}")
        if not isinstance(last_epoch, int) or isinstance(last_epoch, bool) or last_epoch < -1:
            raise ConfigError(f"{self.name}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:  # undo the initial steps the children took
            group["lr"] = group["initial_lr"]
        self._undo_initial_step()
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self._step_count = 1
        self._is_initial = False
        idx = bisect.bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    @property
    def schedulers(self) -> list[LRScheduler]:
        return self._schedulers

    @property
    def milestones(self) -> list[int]:
        return self._milestones

    def step(self, epoch: int | None = None) -> None:
        """Advance every scheduler concerned by one step.

        Args:
            epoch: default None, the only value accepted: jumping to an epoch is not supported
                (torch deprecates it).

        Raises:
            ConfigError: ``epoch`` is given.
        """
        if epoch is not None:
            raise ConfigError(f"{self.name}: step() takes no epoch; it always advances by one")
        self._step_count += 1
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """Steps every scheduler in turn at each step, so their factors combine (multiply).

    Args:
        schedulers: the LRSchedulers to chain (not ReduceLROnPlateau), all on one optimizer.
        optimizer: default None (the first scheduler's); as torch 2.x's optional argument.

    Raises:
        ConfigError: no schedulers, a scheduler that is not an LRScheduler, or schedulers
            on different optimizers.
    """

    _config_args = ("schedulers",)

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Any = None) -> None:
        children = list(schedulers) if isinstance(schedulers, Sequence) else schedulers
        first = children[0] if isinstance(children, list) and children else None
        optimizer = optimizer if optimizer is not None else getattr(first, "optimizer", None)
        check_optimizer(optimizer, self.name)
        self._schedulers = _check_children(children, optimizer, self.name)
        self.optimizer = optimizer
        self._last_lr = self._group_lrs()

    @property
    def schedulers(self) -> list[LRScheduler]:
        return self._schedulers

    def step(self, epoch: int | None = None) -> None:
        """Advance every scheduler concerned by one step.

        Args:
            epoch: default None, the only value accepted: jumping to an epoch is not supported
                (torch deprecates it).

        Raises:
            ConfigError: ``epoch`` is given.
        """
        if epoch is not None:
            raise ConfigError(f"{self.name}: step() takes no epoch; it always advances by one")
        for s in self._schedulers:
            s.step()
        self._last_lr = self._group_lrs()


def build_scheduler(config: Mapping[str, Any], optimizer: Any) -> Any:
    """Build a scheduler from its :meth:`config` (nested schedulers included) for ``optimizer``.

    Args:
        config: ``{"type": registered name, **arguments}`` as ``config()`` /
            :func:`scheduler_config` give it; nested configs are built first.
        optimizer: the optimizer to schedule (passed to every scheduler but ChainedScheduler).

    Raises:
        ConfigError: ``config`` has no ``"type"``, or a constructor refuses its arguments.
        RegistryError: an unknown scheduler name.
    """
    from plait.core import registry  # noqa: PLC0415 - the registry loads plugins lazily

    if not isinstance(config, Mapping) or "type" not in config:
        raise ConfigError(f"build_scheduler expects a dict with a 'type' key, got {config!r}")
    kwargs = {k: v for k, v in config.items() if k != "type"}
    for key, value in kwargs.items():
        if isinstance(value, Mapping) and "type" in value:
            kwargs[key] = build_scheduler(value, optimizer)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) and "type" in v for v in value):
            kwargs[key] = [build_scheduler(v, optimizer) for v in value]
    if registry.schedulers.get(config["type"]) is not ChainedScheduler:
        kwargs["optimizer"] = optimizer
    return registry.build({"type": config["type"], **kwargs}, kind="schedulers")
