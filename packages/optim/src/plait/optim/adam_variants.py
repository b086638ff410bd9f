"""NAdam, RAdam and Adamax (torch.optim.NAdam / RAdam / Adamax), with torch's arguments and rules.

With ``d`` the gradient (negated for ``maximize``, plus L1 / L2 and coupled weight decay),
``m = beta1 * m + (1 - beta1) * d``, ``v = beta2 * v + (1 - beta2) * d^2``, step ``t``:

NAdam (Dozat, 2016), momentum schedule ``mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay))``
and ``P_t = mu_1 ... mu_t``::

    denom = sqrt(v / (1 - beta2^t)) + eps
    p -= lr (1 - mu_t) / (1 - P_t) * d / denom + lr mu_{t+1} / (1 - P_t mu_{t+1}) * m / denom

RAdam (Liu et al., 2020), ``rho_inf = 2 / (1 - beta2) - 1``,
``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)``::

    rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                p -= lr r sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
    otherwise:  p -= lr / (1 - beta1^t) * m          (SGD with momentum while v is unreliable)

Adamax (Kingma & Ba, 2015, section 7), the infinity-norm Adam::

    u  = max(beta2 * u, |d| + eps)
    p -= lr / (1 - beta1^t) * m / u

``weight_decay`` is coupled (added to the gradient, like ``l2``); NAdam and RAdam take
torch's ``decoupled_weight_decay=True`` for AdamW-style ``p *= 1 - lr * weight_decay``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from plait.core import Param, get_array_module
from plait.core.errors import ConfigError

from .optimizer import Optimizer, ParamsT

__all__ = ["Adamax", "NAdam", "RAdam"]


class _AdamFamily(Optimizer):
    """Shared: the moment buffers, the lerp of ``m`` and the optional decoupled decay."""

    def _check_options(self, group: Mapping[str, Any], where: str) -> None:
        flag = group.get("decoupled_weight_decay", False)
        if not isinstance(flag, (bool, np.bool_)):
            raise ConfigError(f"{self.name}: decoupled_weight_decay must be True or False, got {flag!r}{where}")

    def _decoupled_decay(self, p: Param, group: Mapping[str, Any]) -> None:
        if group["weight_decay"] and group.get("decoupled_weight_decay", False):
            p.data *= 1.0 - group["lr"] * group["weight_decay"]

    def _moments(self, d: Any, state: dict[str, Any], beta1: float, beta2: float, t: Any) -> None:
        """``m += (1 - beta1)(d - m)`` (torch's lerp) and ``v = beta2 v + (1 - beta2) d^2``; ``t`` is scratch."""
        xp = get_array_module(d)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        xp.subtract(d, m, out=t)
        t *= 1.0 - beta1
        m += t
        xp.multiply(d, d, out=t)
        t *= 1.0 - beta2
        v *= beta2
        v += t


class NAdam(_AdamFamily):
    """NAdam: Adam with Nesterov momentum. State: ``step``, ``mu_product``, ``exp_avg``, ``exp_avg_sq``.

    ``mu_product`` is kept as a Python float (float64); torch keeps it in a tensor of its
    default dtype (float32 unless changed), which differs from it by float32 rounding.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 2e-3 (as torch); the learning rate, >= 0.
        betas: default ``(0.9, 0.999)``; the decay rates ``(beta1, beta2)`` of the first and
            second moment averages, each in [0, 1).
        eps: default 1e-8; added to the denominator, >= 0.
        weight_decay: default 0.0; coupled (added to the gradient) unless
            ``decoupled_weight_decay``.
        momentum_decay: default 4e-3 (as torch); ``psi`` of the momentum schedule
            ``mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay))``, >= 0.
        decoupled_weight_decay: default False; True decays AdamW-style,
            ``p *= 1 - lr * weight_decay`` before each update (as torch).
        maximize: default False (keyword-only); True ascends the objective (the gradient is
            negated), as torch.
        l1: default 0.0 (keyword-only; not in torch): adds ``l1 * sign(p)`` to the gradient.
        l2: default 0.0 (keyword-only; not in torch): adds ``l2 * p`` to the gradient (the
            coupled L2 penalty, whatever ``weight_decay`` does).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range:
            negative lr, eps or weight decay, or betas outside [0, 1), or a negative
            momentum_decay.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, l1=l1, l2=l2,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check_options(self, group: Mapping[str, Any], where: str) -> None:
        super()._check_options(group, where)
        self._check_number(group, "momentum_decay", where)

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        xp = get_array_module(p.data)
        return {"step": 0, "mu_product": 1.0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["momentum_decay"]
        state["step"] += 1
        step = state["step"]
        self._decoupled_decay(p, group)
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * decay))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        t = self._buffer(p, "tmp")
        self._moments(d, state, beta1, beta2, t)
        denom = self._buffer(p, "denom")
        xp.divide(state["exp_avg_sq"], 1.0 - beta2**step, out=denom)
        xp.sqrt(denom, out=denom)
        denom += group["eps"]
        xp.divide(d, denom, out=t)
        t *= lr * (1.0 - mu) / (1.0 - mu_product)
        p.data -= t
        xp.divide(state["exp_avg"], denom, out=t)
        t *= lr * mu_next / (1.0 - mu_product * mu_next)
        p.data -= t


class RAdam(_AdamFamily):
    """RAdam: Adam with a rectified adaptive step. State: ``step``, ``exp_avg``, ``exp_avg_sq``.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 1e-3 (as torch); the learning rate, >= 0.
        betas: default ``(0.9, 0.999)``; the decay rates ``(beta1, beta2)`` of the first and
            second moment averages, each in [0, 1).
        eps: default 1e-8; added to ``sqrt(v)``, >= 0.
        weight_decay: default 0.0; coupled (added to the gradient) unless
            ``decoupled_weight_decay``.
        decoupled_weight_decay: default False; True decays AdamW-style,
            ``p *= 1 - lr * weight_decay`` before each update (as torch).
        maximize: default False (keyword-only); True ascends the objective (the gradient is
            negated), as torch.
        l1: default 0.0 (keyword-only; not in torch): adds ``l1 * sign(p)`` to the gradient.
        l2: default 0.0 (keyword-only; not in torch): adds ``l2 * p`` to the gradient (the
            coupled L2 penalty, whatever ``weight_decay`` does).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range:
            negative lr, eps or weight decay, or betas outside [0, 1).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, l1=l1, l2=l2,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        xp = get_array_module(p.data)
        return {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        lr, (beta1, beta2) = group["lr"], group["betas"]
        state["step"] += 1
        step = state["step"]
        self._decoupled_decay(p, group)
        t = self._buffer(p, "tmp")
        self._moments(d, state, beta1, beta2, t)
        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * step * beta2**step / bias_correction2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            xp.sqrt(state["exp_avg_sq"], out=t)
            t += group["eps"]
            xp.divide(state["exp_avg"], t, out=t)
            t *= lr * rect * math.sqrt(bias_correction2) / bias_correction1
        else:
            xp.multiply(state["exp_avg"], lr / bias_correction1, out=t)
        p.data -= t


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm. State: ``step``, ``exp_avg``, ``exp_inf``.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 2e-3 (as torch); the learning rate, >= 0.
        betas: default ``(0.9, 0.999)``; ``beta1`` for the first moment, ``beta2`` for the
            decay of the infinity norm ``u``; each in [0, 1).
        eps: default 1e-8; added to ``|d|`` inside ``u = max(beta2 * u, |d| + eps)``, >= 0.
        weight_decay: default 0.0; coupled: adds ``weight_decay * p`` to the gradient.
        maximize: default False (keyword-only); True ascends the objective (the gradient is
            negated), as torch.
        l1: default 0.0 (keyword-only; not in torch): adds ``l1 * sign(p)`` to the gradient.
        l2: default 0.0 (keyword-only; not in torch): adds ``l2 * p`` to the gradient (the
            coupled L2 penalty, whatever ``weight_decay`` does).

    Raises:
        ConfigError: ``params`` is empty, a single Param or dict, mixes Params and dicts, or
            holds a Param twice; or an option is of the wrong type or out of range:
            negative lr, eps or weight decay, or betas outside [0, 1).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, l1=l1, l2=l2)
        super().__init__(params, defaults)

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        xp = get_array_module(p.data)
        return {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_inf": xp.zeros_like(p.data)}

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        lr, (beta1, beta2) = group["lr"], group["betas"]
        state["step"] += 1
        m, u = state["exp_avg"], state["exp_inf"]
        t = self._buffer(p, "tmp")
        xp.subtract(d, m, out=t)  # m += (1 - beta1) (d - m): torch's lerp
        t *= 1.0 - beta1
        m += t
        xp.abs(d, out=t)
        t += group["eps"]
        u *= beta2
        xp.maximum(u, t, out=u)
        xp.divide(m, u, out=t)
        t *= lr / (1.0 - beta1 ** state["step"])
        p.data -= t
