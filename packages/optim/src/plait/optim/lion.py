"""Lion, "evolved sign momentum" (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms").

With ``d`` the gradient (negated for ``maximize``, plus L1 / L2)::

    p *= 1 - lr * weight_decay                       (decoupled, as in AdamW)
    c  = beta1 * m + (1 - beta1) * d
    p -= lr * sign(c)
    m  = beta2 * m + (1 - beta2) * d

Every coordinate moves by exactly ``lr``: use a learning rate 3-10x smaller than AdamW's
and a weight decay 3-10x larger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import Param, get_array_module

from .optimizer import Optimizer, ParamsT

__all__ = ["Lion"]


class Lion(Optimizer):
    """Lion; ``weight_decay`` is decoupled (``l2`` adds the coupled penalty). State: ``exp_avg``.

    Not in torch; the defaults are the paper's.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 1e-4; the learning rate (every coordinate moves by exactly ``lr``), >= 0.
        betas: default ``(0.9, 0.99)``; ``beta1`` interpolates the update direction,
            ``beta2`` the momentum kept; each in [0, 1).
        weight_decay: default 0.0; decoupled: ``p *= 1 - lr * weight_decay`` before each
            update.
        maximize: default False (keyword-only); True ascends the objective (the gradient is
            negated), as torch.
        l1: default 0.0 (keyword-only; not in torch): adds ``l1 * sign(p)`` to the gradient.
        l2: default 0.0 (keyword-only; not in torch): adds ``l2 * p`` to the gradient (the
            coupled L2 penalty, whatever ``weight_decay`` does).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range:
            negative lr or weight decay, or betas outside [0, 1).
    """

    _coupled_weight_decay = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize, l1=l1, l2=l2)
        super().__init__(params, defaults)

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        return {"exp_avg": get_array_module(p.data).zeros_like(p.data)}

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if weight_decay:
            p.data *= 1.0 - lr * weight_decay
        m = state["exp_avg"]
        t = self._buffer(p, "tmp")
        xp.subtract(d, m, out=t)  # c = m + (1 - beta1) (d - m)
        t *= 1.0 - beta1
        t += m
        xp.sign(t, out=t)
        t *= lr
        p.data -= t
        xp.subtract(d, m, out=t)  # m += (1 - beta2) (d - m)
        t *= 1.0 - beta2
        m += t
