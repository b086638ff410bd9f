"""Fused CUDA kernels for optimizer updates that are launch-bound on a GPU.

``Adam._update`` (``adam.py``) is the readable reference: about a dozen NumPy-style
operations per parameter, which on a GPU are a dozen kernel launches per parameter and step.
The kernel here does the same update in one launch. ``tests/optim/test_optim_cuda_kernels.py``
checks on a real GPU that both agree; without CuPy, or on the test suite's CuPy stand-in,
``fused`` (:func:`plait.core.backend.compiles_kernels`) answers ``False`` and the reference runs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from plait.core.backend import compiles_kernels as fused

__all__ = ["adam_update_cuda", "fused"]


@cache
def _adam_kernel() -> Any:
    import cupy  # noqa: PLC0415 - only on a GPU

    # the same steps as Adam._update, in double, stored back in the parameter's dtype
    return cupy.ElementwiseKernel(
        "T d, float64 decay, float64 beta1, float64 beta2, float64 eps, float64 step_size, float64 sqrt_bc2",
        "T p, T m, T v",
        """
        const double g = (double)d;
        const double mm = (double)m + (1.0 - beta1) * (g - (double)m);
        const double vv = beta2 * (double)v + (1.0 - beta2) * g * g;
        m = (T)mm;
        v = (T)vv;
        p = (T)((double)p * decay - step_size * mm / (sqrt(vv) / sqrt_bc2 + eps));
        """,
        "plait_adam_update",
    )


def adam_update_cuda(p: Any, d: Any, m: Any, v: Any, *, lr: float, beta1: float, beta2: float, eps: float,
                     decoupled_decay: float, step: int) -> None:
    """One Adam(W) step without AMSGrad, in place on ``p``, ``m`` and ``v`` (all shaped like ``p``).

    ``decoupled_decay`` is AdamW's ``weight_decay`` (0 for Adam, whose decay is in ``d``).
    """
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    _adam_kernel()(d, 1.0 - lr * decoupled_decay, beta1, beta2, eps, lr / bias_correction1,
                   bias_correction2**0.5, p, m, v)
