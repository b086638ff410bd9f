"""ConstantLR, LinearLR and PolynomialLR (torch.optim.lr_scheduler's), and ``config()`` for schedulers.

Like the other schedules, each rate comes from the current one exactly as torch computes
it (so the sequences match torch's to the last bit and compose with SequentialLR and
ChainedScheduler); ``step(epoch)`` uses the closed form.
"""

from __future__ import annotations

from typing import Any

from plait.core.errors import ConfigError

from .lr_scheduler import LRScheduler, check_int, check_number

__all__ = ["ConfigurableScheduler", "ConstantLR", "LinearLR", "PolynomialLR", "scheduler_config"]


class ConfigurableScheduler(LRScheduler):
    """A scheduler whose constructor arguments (``_config_args``) are attributes of the same name.

    :meth:`config` gives ``{"type": registered name, **arguments}`` (no optimizer); a nested
    scheduler is given by its own config. Rebuild with :func:`plait.optim.build_scheduler`.
    """

    _config_args: tuple[str, ...] = ()

    def config(self) -> dict[str, Any]:
        return _config(self, self._config_args)


def _older_args() -> dict[type, tuple[str, ...]]:
    """The constructor arguments of the schedulers that predate ``config()`` (kept as attributes)."""
    from .schedules import CosineAnnealingLR, ExponentialLR, MultiStepLR, StepLR  # noqa: PLC0415
    from .warmup import LinearWarmup  # noqa: PLC0415

    return {
        StepLR: ("step_size", "gamma"),
        MultiStepLR: ("milestones", "gamma"),
        ExponentialLR: ("gamma",),
        CosineAnnealingLR: ("T_max", "eta_min"),
        LinearWarmup: ("warmup_steps", "after", "start_factor"),
    }


def scheduler_config(scheduler: Any) -> dict[str, Any]:
    """``scheduler.config()``, also for StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR and
    LinearWarmup (whose arguments are attributes); a ConfigError for schedulers with
    arguments that have no JSON form (LambdaLR's functions, OneCycleLR, ReduceLROnPlateau).

    Args:
        scheduler: a scheduler instance (nested schedulers are given by their own config).

    Returns:
        ``{"type": registered name, **arguments}`` (JSON-able; no optimizer).

    Raises:
        ConfigError: the scheduler has no config, is not registered, or holds an argument
            with no JSON form.
    """
    if callable(getattr(scheduler, "config", None)):
        return scheduler.config()
    args = _older_args().get(type(scheduler))
    if args is None:
        raise ConfigError(f"{type(scheduler).__name__}: this scheduler has no config()")
    return _config(scheduler, args)


def _config(scheduler: Any, args: tuple[str, ...]) -> dict[str, Any]:
    from plait.core import registry  # noqa: PLC0415 - the registry loads plugins lazily

    name = type(scheduler).__name__
    found = registry.name_of(type(scheduler))
    if found is None or found[0] != "schedulers":
        raise ConfigError(f"{name}: config() needs the class to be registered as a scheduler")
    cfg: dict[str, Any] = {"type": found[1]}
    for key in args:
        cfg[key] = _jsonable(getattr(scheduler, key), f"{name}.{key}")
    return cfg


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, LRScheduler):
        return scheduler_config(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{where}: {value!r} has no JSON form, so this scheduler has no config()")


class ConstantLR(ConfigurableScheduler):
    """``lr = base_lr * factor`` for ``last_epoch < total_iters``, then ``base_lr``.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        factor: default 1/3 (as torch); in (0, 1].
        total_iters: default 5 (as torch); the number of steps at the reduced rate (>= 1).
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), ``factor`` outside (0, 1] or
            ``total_iters < 1``.
    """

    _config_args = ("factor", "total_iters")
    _state_positive = ("factor",)  # the rate is divided by it at total_iters

    def __init__(self, optimizer: Any, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1) -> None:
        self.factor = check_number(factor, "factor", self.name, low=0.0, high=1.0, low_open=True)
        self.total_iters = check_int(total_iters, "total_iters", self.name)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._group_lrs()]
        if self.last_epoch != self.total_iters:
            return self._group_lrs()
        return [lr * (1.0 / self.factor) for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        factor = self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor)
        return [base * factor for base in self.base_lrs]


class LinearLR(ConfigurableScheduler):
    """The factor moves linearly from ``start_factor`` to ``end_factor`` over ``total_iters``
    steps, then stays: a warm-up (``start_factor < end_factor``) or a linear decay.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        start_factor: default 1/3 (as torch); the factor of the first step, in (0, 1].
        end_factor: default 1.0; the factor from ``total_iters`` on, in [0, 1].
        total_iters: default 5 (as torch); the steps the factor takes to get there (>= 1).
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), a factor out of range or
            ``total_iters < 1``.
    """

    _config_args = ("start_factor", "end_factor", "total_iters")
    _state_positive = ("start_factor",)  # a zero would divide by zero on the first step

    def __init__(
        self,
        optimizer: Any,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self.start_factor = check_number(start_factor, "start_factor", self.name, low=0.0, high=1.0, low_open=True)
        self.end_factor = check_number(end_factor, "end_factor", self.name, low=0.0, high=1.0)
        self.total_iters = check_int(total_iters, "total_iters", self.name)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, start, end, total = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        if t == 0:
            return [lr * start for lr in self._group_lrs()]
        if self._is_initial or t > total:
            return self._group_lrs()
        factor = 1.0 + (end - start) / (total * start + (t - 1) * (end - start))
        return [lr * factor for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        t, start, end, total = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        return [base * (start + (end - start) * min(total, t) / total) for base in self.base_lrs]


class PolynomialLR(ConfigurableScheduler):
    """``lr = base_lr * (1 - min(last_epoch, total_iters) / total_iters) ** power``.

    Args:
        optimizer: the optimizer whose groups' ``lr`` this sets (anything with
            ``param_groups`` holding ``"lr"``).
        total_iters: default 5 (as torch); the steps over which the rate decays to 0 (>= 1).
        power: default 1.0 (linear decay); the polynomial's power, >= 0.
        last_epoch: default -1 (a fresh schedule); the index of the last step taken when
            resuming (every group must then hold ``"initial_lr"``, restored with the
            optimizer's state dict).

    Raises:
        ConfigError: no optimizer, ``last_epoch < -1`` (or resuming without
            ``initial_lr``), ``total_iters < 1`` or ``power < 0``.
    """

    _config_args = ("total_iters", "power")

    def __init__(self, optimizer: Any, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters = check_int(total_iters, "total_iters", self.name)
        self.power = check_number(power, "power", self.name, low=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, total = self.last_epoch, self.total_iters
        if self._is_initial or t > total:
            return self._group_lrs()
        decay = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [lr * decay for lr in self._group_lrs()]

    def _closed_form_lr(self) -> list[float]:
        t, total = self.last_epoch, self.total_iters
        return [base * (1.0 - min(total, t) / total) ** self.power for base in self.base_lrs]
