"""RMSprop (torch.optim.RMSprop), plain or centered, with optional momentum.

With ``d`` the gradient (negated for ``maximize``, plus weight decay / L1 / L2)::

    s  = alpha * s + (1 - alpha) * d^2
    g  = alpha * g + (1 - alpha) * d                 (centered)
    r  = sqrt(s - g^2) + eps   (centered)   |   sqrt(s) + eps
    b  = momentum * b + d / r;  p -= lr * b          (momentum > 0)
    p -= lr * d / r                                  (otherwise)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import Param, get_array_module

from .optimizer import Optimizer, ParamsT, state_buffer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e; centered per Graves, 2013). ``weight_decay`` is coupled.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered).

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 1e-2 (as torch; Keras uses 1e-3); the learning rate, >= 0.
        alpha: default 0.99 (as torch; Keras' ``rho`` is 0.9); the smoothing constant of the
            squared-gradient average, in [0, 1].
        eps: default 1e-8 (as torch); added to the root, >= 0.
        weight_decay: default 0.0; coupled: adds ``weight_decay * p`` to the gradient.
        momentum: default 0.0; the momentum factor, >= 0.
        centered: default False; True divides by the estimated variance ``s - g^2`` instead
            of the second moment.
        maximize: default False (keyword-only); True ascends the objective (the gradient is
            negated), as torch.
        l1: default 0.0 (keyword-only; not in torch): adds ``l1 * sign(p)`` to the gradient.
        l2: default 0.0 (keyword-only; not in torch): adds ``l2 * p`` to the gradient (the
            coupled L2 penalty, whatever ``weight_decay`` does).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range:
            negative lr, eps, momentum or weight decay, or alpha outside [0, 1].
    """

    optional_state = ("momentum_buffer", "grad_avg")  # created on the first step, or when the option is switched on later

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered, maximize=maximize, l1=l1, l2=l2,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check_options(self, group: Mapping[str, Any], where: str) -> None:
        self._check_number(group, "alpha", where, high=1.0)
        self._check_number(group, "momentum", where)

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        xp = get_array_module(p.data)
        state: dict[str, Any] = {"step": 0, "square_avg": xp.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(p.data)
        return state

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        alpha, momentum = group["alpha"], group["momentum"]
        state["step"] += 1
        square_avg = state["square_avg"]
        t = self._buffer(p, "tmp")
        xp.multiply(d, d, out=t)
        t *= 1.0 - alpha
        square_avg *= alpha
        square_avg += t
        if group["centered"]:
            grad_avg = state_buffer(state, "grad_avg", p.data)
            xp.subtract(d, grad_avg, out=t)  # grad_avg += (1 - alpha) (d - grad_avg): torch's lerp
            t *= 1.0 - alpha
            grad_avg += t
            xp.multiply(grad_avg, grad_avg, out=t)
            xp.subtract(square_avg, t, out=t)
            xp.sqrt(t, out=t)
        else:
            xp.sqrt(square_avg, out=t)
        t += group["eps"]
        xp.divide(d, t, out=t)
        if momentum > 0:
            buf = state_buffer(state, "momentum_buffer", p.data)
            buf *= momentum
            buf += t
            xp.multiply(buf, group["lr"], out=t)
        else:
            t *= group["lr"]
        p.data -= t
