"""Fused CUDA kernels for element-wise chains that are launch-bound on a GPU.

On a GPU every NumPy-style operation is one kernel launch, and a small model's training step is
bound by the launches, not by the arithmetic (``benchmarks/README.md``, the GPU section). Each
kernel here computes what a NumPy reference maths function in this package computes, in one
launch; the reference stays the readable definition, and ``tests/layers/test_layers_cuda_kernels.py``
checks on a real GPU that both agree. Without CuPy — or on the test suite's CuPy stand-in — these
kernels are never used: :func:`fused` answers ``False`` and the reference runs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from plait.core import get_array_module

__all__ = ["fused", "gelu_backward_cuda", "gelu_forward_cuda"]


def fused(x: Any) -> bool:
    """True when ``x`` is a device array of a CuPy that compiles kernels (``ElementwiseKernel``)."""
    if type(x).__module__.split(".", 1)[0] != "cupy":
        return False
    return callable(getattr(get_array_module(x), "ElementwiseKernel", None))


@cache
def _kernels() -> dict[str, Any]:
    import cupy  # noqa: PLC0415 - only on a GPU

    return {
        # y = x Phi(x), Phi(x) = normcdf(x) (CUDA's normal CDF), evaluated in double
        "gelu_forward": cupy.ElementwiseKernel(
            "T x", "T y, T cdf",
            "const double p = normcdf((double)x); cdf = (T)p; y = (T)((double)x * p);",
            "plait_gelu_forward"),
        # dx = dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
        "gelu_backward": cupy.ElementwiseKernel(
            "T dy, T x, T cdf", "T dx",
            "const double xd = (double)x;"
            "dx = (T)((double)dy * ((double)cdf + xd * exp(-0.5 * xd * xd) * 0.3989422804014327));",
            "plait_gelu_backward"),
    }


def gelu_forward_cuda(x: Any) -> tuple[Any, Any]:
    """Exact GELU in one launch: (y, Phi(x)), both shaped like ``x``."""
    return _kernels()["gelu_forward"](x)


def gelu_backward_cuda(dy: Any, x: Any, cdf: Any) -> Any:
    """d GELU: ``dy * (Phi(x) + x phi(x))`` in one launch, shaped like ``x``."""
    return _kernels()["gelu_backward"](dy, x, cdf)
