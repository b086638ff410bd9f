"""Adam and AdamW (torch.optim.Adam / AdamW), with AMSGrad.

With ``d`` the gradient (negated for ``maximize``, plus L1 / L2 and, for Adam, weight decay)::

    p *= 1 - lr * weight_decay                       (AdamW only: decoupled decay)
    m  = beta1 * m + (1 - beta1) * d
    v  = beta2 * v + (1 - beta2) * d^2
    v^ = max(v^, v)                                  (amsgrad; used instead of v below)
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import Param, get_array_module

from ._cuda_kernels import adam_update_cuda, fused
from .optimizer import Optimizer, ParamsT, state_buffer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015). ``weight_decay`` is coupled: the same as ``l2``.

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with ``amsgrad``,
    ``max_exp_avg_sq``.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 1e-3; the learning rate, >= 0.
        betas: default ``(0.9, 0.999)``; the decay rates ``(beta1, beta2)`` of the first and
            second moment averages, each in [0, 1).
        eps: default 1e-8; added to the denominator's ``sqrt(v_hat)``, >= 0.
        weight_decay: default 0.0; coupled: adds ``weight_decay * p`` to the gradient (use
            :class:`AdamW` for decoupled decay).
        amsgrad: default False; use the running maximum of ``v`` (Reddi et al., 2018).
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

    optional_state = ("max_exp_avg_sq",)  # created on the first step, or when the option is switched on later

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, l1=l1, l2=l2,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _init_state(self, p: Param, group: Mapping[str, Any]) -> dict[str, Any]:
        xp = get_array_module(p.data)
        state = {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        return state

    def _update(self, p: Param, d: Any, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        xp = get_array_module(p.data)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        state["step"] += 1
        step = state["step"]
        if fused(p.data) and not group["amsgrad"]:  # one CUDA launch for the steps below (_cuda_kernels.py)
            adam_update_cuda(p.data, d, state["exp_avg"], state["exp_avg_sq"], lr=lr, beta1=beta1, beta2=beta2,
                             eps=group["eps"], step=step,
                             decoupled_decay=0.0 if self._coupled_weight_decay else weight_decay)
            return
        if weight_decay and not self._coupled_weight_decay:
            p.data *= 1.0 - lr * weight_decay
        m, v = state["exp_avg"], state["exp_avg_sq"]
        t = self._buffer(p, "tmp")
        xp.subtract(d, m, out=t)  # m += (1 - beta1) (d - m): torch's lerp
        t *= 1.0 - beta1
        m += t
        xp.multiply(d, d, out=t)
        t *= 1.0 - beta2
        v *= beta2
        v += t
        if group["amsgrad"]:
            v_max = state_buffer(state, "max_exp_avg_sq", p.data)
            xp.maximum(v_max, v, out=v_max)
            v = v_max
        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        xp.sqrt(v, out=t)
        t /= bias_correction2**0.5
        t += group["eps"]
        xp.divide(m, t, out=t)
        t *= lr / bias_correction1
        p.data -= t


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr * weight_decay``.

    ``l2`` still adds the coupled penalty to the gradient, if you want both.

    Args:
        params: an iterable of Params (``model.parameters()``), or of parameter-group dicts
            ``{"params": [...], **options}`` whose missing options take this constructor's
            values (as torch).
        lr: default 1e-3; the learning rate, >= 0.
        betas: default ``(0.9, 0.999)``; the decay rates ``(beta1, beta2)`` of the first and
            second moment averages, each in [0, 1).
        eps: default 1e-8; added to the denominator's ``sqrt(v_hat)``, >= 0.
        weight_decay: default 1e-2 (as torch's AdamW; Adam's is 0): decoupled,
            ``p *= 1 - lr * weight_decay`` before each update.
        amsgrad: default False; use the running maximum of ``v``.
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

    _coupled_weight_decay = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, l1=l1, l2=l2)
