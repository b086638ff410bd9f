"""Stochastic gradient descent with momentum, dampening and Nesterov momentum (torch.optim.SGD).

With ``d`` the gradient (negated for ``maximize``, plus coupled weight decay / L1 / L2)::

    b_1 = d_1,   b_t = momentum * b_{t-1} + (1 - dampening) * d_t
    u_t = d_t + momentum * b_t   (nesterov)   |   b_t   (momentum > 0)   |   d_t
    p  -= lr * u_t
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import Param, get_array_module
from plait.core.errors import ConfigError

from .optimizer import Optimizer, ParamsT

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD; ``weight_decay`` is coupled (added to the gradient), like ``l2``.

    State per parameter: ``momentum_buffer`` (only when ``momentum > 0``).

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 1e-3 (torch's default since 2.2); the learning rate, >= 0.
        momentum: default 0.0; the momentum factor, >= 0.
        dampening: default 0.0; in [0, 1]; scales the gradient added to the momentum buffer
            by ``1 - dampening`` (not on the first step, as torch).
        weight_decay: default 0.0; coupled: adds ``weight_decay * p`` to the gradient.
        nesterov: default False; Nesterov momentum (needs ``momentum > 0`` and
            ``dampening == 0``).
        maximize: default False (keyword-only); True ascends the objective (the gradient is
            negated), as torch.
        l1: default 0.0 (keyword-only; not in torch): adds ``l1 * sign(p)`` to the gradient.
        l2: default 0.0 (keyword-only; not in torch): adds ``l2 * p`` to the gradient (the
            coupled L2 penalty, whatever ``weight_decay`` does).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range:
            negative lr, momentum or weight decay; dampening above 1; nesterov
            without momentum or with dampening.
    """

    optional_state = ("momentum_buffer",)  # created on the first step, or when the option is switched on later

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, l1=l1, l2=l2,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check_options(self, group: Mapping[str, Any], where: str) -> None:
        self._check_number(group, "momentum", where)
        self._check_number(group, "dampening", where, high=1.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ConfigError(
                f"{self.name}: nesterov=True needs momentum > 0 and dampening == 0, "
                f"got momentum={group['momentum']!r}, dampening={group['dampening']!r}{where}"
            )

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        momentum = group["momentum"]
        t = self._buffer(p, "tmp")
        update = d
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= momentum
                if group["dampening"]:
                    xp.multiply(d, 1.0 - group["dampening"], out=t)
                    buf += t
                else:
                    buf += d
            if group["nesterov"]:
                xp.multiply(buf, momentum, out=t)
                t += d
                update = t
            else:
                update = buf
        xp.multiply(update, group["lr"], out=t)
        p.data -= t
