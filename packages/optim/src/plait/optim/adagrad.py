"""Adagrad (torch.optim.Adagrad), with learning-rate decay.

With ``d`` the gradient (negated for ``maximize``, plus weight decay / L1 / L2)::

    lr_t = lr / (1 + (t - 1) * lr_decay)
    s   += d^2                       (s starts at initial_accumulator_value)
    p   -= lr_t * d / (sqrt(s) + eps)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import Param, get_array_module

from .optimizer import Optimizer, ParamsT

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011). ``weight_decay`` is coupled. State: ``step``, ``sum``.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 1e-2 (as torch); the learning rate, >= 0.
        lr_decay: default 0.0; step ``t`` uses ``lr / (1 + (t - 1) * lr_decay)``, >= 0.
        weight_decay: default 0.0; coupled: adds ``weight_decay * p`` to the gradient.
        initial_accumulator_value: default 0.0; the starting value of the squared-gradient
            sum ``s``, >= 0.
        eps: default 1e-10 (as torch); added to ``sqrt(s)``, >= 0.
        maximize: default False (keyword-only); True ascends the objective (the gradient is
            negated), as torch.
        l1: default 0.0 (keyword-only; not in torch): adds ``l1 * sign(p)`` to the gradient.
        l2: default 0.0 (keyword-only; not in torch): adds ``l2 * p`` to the gradient (the
            coupled L2 penalty, whatever ``weight_decay`` does).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range:
            negative lr, lr_decay, initial_accumulator_value, eps or weight decay.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize, l1=l1, l2=l2,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check_options(self, group: Mapping[str, Any], where: str) -> None:
        self._check_number(group, "lr_decay", where)
        self._check_number(group, "initial_accumulator_value", where)

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        xp = get_array_module(p.data)
        return {"step": 0, "sum": xp.full_like(p.data, group["initial_accumulator_value"])}

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        state["step"] += 1
        clr = group["lr"] / (1.0 + (state["step"] - 1) * group["lr_decay"])
        accumulator = state["sum"]
        t = self._buffer(p, "tmp")
        xp.multiply(d, d, out=t)
        accumulator += t
        xp.sqrt(accumulator, out=t)
        t += group["eps"]
        xp.divide(d, t, out=t)
        t *= clr
        p.data -= t
