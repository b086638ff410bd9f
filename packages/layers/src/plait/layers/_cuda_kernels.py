"""Fused CUDA kernels for element-wise chains that are launch-bound on a GPU.

On a GPU every NumPy-style operation is one kernel launch, and a small model's training step is
bound by the launches, not by the arithmetic (``benchmarks/README.md``, the GPU section). Each
kernel here computes what a NumPy reference maths function in this package computes, in one
launch; the reference stays the readable definition, and ``tests/layers/test_layers_cuda_kernels.py``
checks on a real GPU that both agree. Without CuPy — or on the test suite's CuPy stand-in — these
kernels are never used: ``fused`` (:func:`plait.core.backend.compiles_kernels`) answers
``False`` and the reference runs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from plait.core import get_array_module
from plait.core.backend import compiles_kernels as fused

__all__ = ["fused", "gelu_forward_cuda", "layer_norm_backward_cuda", "layer_norm_forward_cuda"]


@cache
def _kernels() -> dict[str, Any]:
    import cupy  # noqa: PLC0415 - only on a GPU

    return {
        # y = x Phi(x) and its slope Phi(x) + x phi(x), Phi = normcdf (CUDA's normal CDF),
        # phi(x) = exp(-x^2 / 2) / sqrt(2 pi); evaluated in double
        "gelu_forward": cupy.ElementwiseKernel(
            "T x", "T y, T slope",
            "const double xd = (double)x; const double p = normcdf(xd);"
            "y = (T)(xd * p); slope = (T)(p + xd * exp(-0.5 * xd * xd) * 0.3989422804014327);",
            "plait_gelu_forward"),
    }


def gelu_forward_cuda(x: Any) -> tuple[Any, Any]:
    """Exact GELU in one launch: (y, slope = dy/dx), both shaped like ``x`` (what
    ``_gelu_maths.gelu_exact`` returns)."""
    return _kernels()["gelu_forward"](x)


# -- layer norm over rows (M, D): one thread block per row, statistics in double -------------------
_THREADS = 256
_ROW_SUM = """
__device__ double block_sum(double v, double* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    const double total = shared[0];
    __syncthreads();
    return total;
}
"""
_LN_FORWARD = """
extern "C" __global__ void plait_layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* xhat, T* rstd,
                                                    long long M, long long D, double eps, int has_w, int has_b) {
    __shared__ double shared[THREADS];
    const long long row = blockIdx.x;
    const T* xr = x + row * D;
    double s = 0.0;
    for (long long i = threadIdx.x; i < D; i += blockDim.x) s += (double)xr[i];
    const double mean = block_sum(s, shared) / (double)D;
    double q = 0.0;
    for (long long i = threadIdx.x; i < D; i += blockDim.x) { const double c = (double)xr[i] - mean; q += c * c; }
    const double rs = 1.0 / sqrt(block_sum(q, shared) / (double)D + eps);
    for (long long i = threadIdx.x; i < D; i += blockDim.x) {
        const double h = ((double)xr[i] - mean) * rs;
        xhat[row * D + i] = (T)h;
        double v = has_w ? h * (double)w[i] : h;
        if (has_b) v += (double)b[i];
        y[row * D + i] = (T)v;
    }
    if (threadIdx.x == 0) rstd[row] = (T)rs;
}
"""
_LN_BACKWARD = """
extern "C" __global__ void plait_layer_norm_backward(const T* dy, const T* xhat, const T* rstd, const T* w, T* dx,
                                                     long long M, long long D, int has_w) {
    __shared__ double shared[THREADS];
    const long long row = blockIdx.x;
    const T* dr = dy + row * D;
    const T* hr = xhat + row * D;
    double s1 = 0.0, s2 = 0.0;
    for (long long i = threadIdx.x; i < D; i += blockDim.x) {
        const double g = has_w ? (double)dr[i] * (double)w[i] : (double)dr[i];
        s1 += g;
        s2 += g * (double)hr[i];
    }
    const double mean_g = block_sum(s1, shared) / (double)D;
    const double mean_gh = block_sum(s2, shared) / (double)D;
    const double rs = (double)rstd[row];
    for (long long i = threadIdx.x; i < D; i += blockDim.x) {
        const double g = has_w ? (double)dr[i] * (double)w[i] : (double)dr[i];
        dx[row * D + i] = (T)(rs * (g - mean_g - (double)hr[i] * mean_gh));
    }
}
"""
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


@cache
def _row_kernel(name: str, ctype: str) -> Any:
    import cupy  # noqa: PLC0415 - only on a GPU

    body = _LN_FORWARD if name == "plait_layer_norm_forward" else _LN_BACKWARD
    code = f"typedef {ctype} T;\n#define THREADS {_THREADS}\n" + _ROW_SUM + body
    return cupy.RawKernel(code, name)


def layer_norm_fusable(x: Any) -> bool:
    """Float32/float64 device arrays with at least one row take the row kernels."""
    return fused(x) and x.dtype in _CTYPES and x.size > 0


def layer_norm_forward_cuda(x2: Any, weight: Any | None, bias: Any | None, eps: float) -> tuple[Any, Any, Any]:
    """Layer norm of the rows of ``x2`` (M, D) in one launch: (y (M, D), xhat (M, D), rstd (M, 1)).

    ``weight``/``bias`` (any shape of D elements, or None) are cast to x's dtype.
    """
    xp = get_array_module(x2)
    x2 = xp.ascontiguousarray(x2)
    m, d = x2.shape
    w = x2 if weight is None else xp.ascontiguousarray(weight.reshape(-1), dtype=x2.dtype)
    b = x2 if bias is None else xp.ascontiguousarray(bias.reshape(-1), dtype=x2.dtype)
    y, xhat, rstd = xp.empty_like(x2), xp.empty_like(x2), xp.empty((m, 1), dtype=x2.dtype)
    _row_kernel("plait_layer_norm_forward", _CTYPES[x2.dtype])(
        (m,), (_THREADS,), (x2, w, b, y, xhat, rstd, np.int64(m), np.int64(d), np.float64(eps),
                            np.int32(weight is not None), np.int32(bias is not None)))
    return y, xhat, rstd


def layer_norm_backward_cuda(dy2: Any, xhat: Any, rstd: Any, weight: Any | None) -> Any:
    """dx (M, D) = rstd (g - mean(g) - xhat mean(g xhat)), g = dy * weight, in one launch."""
    xp = get_array_module(dy2)
    dy2 = xp.ascontiguousarray(dy2, dtype=xhat.dtype)
    m, d = dy2.shape
    w = dy2 if weight is None else xp.ascontiguousarray(weight.reshape(-1), dtype=dy2.dtype)
    dx = xp.empty_like(dy2)
    _row_kernel("plait_layer_norm_backward", _CTYPES[dy2.dtype])(
        (m,), (_THREADS,), (dy2, xp.ascontiguousarray(xhat), xp.ascontiguousarray(rstd), w, dx, np.int64(m),
                            np.int64(d), np.int32(weight is not None)))
    return dx
