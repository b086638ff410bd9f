"""The fused CUDA kernels of plait.layers equal their NumPy reference maths.

``plait/layers/_cuda_kernels.py`` replaces launch-bound element-wise chains with one CUDA
launch each on a real GPU. These tests run there (skipped without one) and compare each
kernel with the NumPy reference on the host, on a dense grid that includes the tails. The
last test runs everywhere: on NumPy and on the CuPy stand-in the kernels are never chosen.
"""

from __future__ import annotations

import numpy as np
import pytest

from plait.core.backend import cupy_available
from plait.layers import _activation_maths as maths
from plait.layers._cuda_kernels import fused

REAL_GPU = cupy_available()
needs_gpu = pytest.mark.skipif(not REAL_GPU, reason="fused CUDA kernels need CuPy and a GPU")
GRID = np.concatenate([np.linspace(-12.0, 12.0, 200_001), [-40.0, -9.5, -1e-3, 0.0, 1e-3, 9.5, 40.0]])
TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-15)}


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_kernel_equals_the_numpy_reference(dtype):
    import cupy

    x = GRID.astype(dtype).reshape(-1, 8)
    dy = np.cos(x).astype(dtype)
    y_ref, ctx_ref = maths.gelu_forward(x)
    (dx_ref,) = maths.gelu_backward(dy, ctx_ref)
    xd = cupy.asarray(x)
    assert fused(xd)
    y, ctx = maths.gelu_forward(xd)
    (dx,) = maths.gelu_backward(cupy.asarray(dy), ctx)
    assert y.dtype == dx.dtype == x.dtype and y.shape == dx.shape == x.shape
    np.testing.assert_allclose(y.get(), y_ref, **TOL[dtype])
    np.testing.assert_allclose(ctx[2].get(), ctx_ref[2], **TOL[dtype])
    np.testing.assert_allclose(dx.get(), dx_ref, **TOL[dtype])


@needs_gpu
def test_gelu_kernel_takes_strided_and_0d_inputs():
    import cupy

    x = np.linspace(-3, 3, 48, dtype=np.float32).reshape(6, 8)
    y, _ = maths.gelu_forward(cupy.asarray(x)[:, ::2].T)
    np.testing.assert_allclose(y.get(), maths.gelu_forward(x[:, ::2].T)[0], **TOL[np.float32])
    y0, _ = maths.gelu_forward(cupy.asarray(np.float32(0.7)).reshape(()))
    assert y0.shape == () and np.isclose(float(y0), maths.gelu_forward(np.float32(0.7).reshape(()))[0])


@pytest.mark.gpu
def test_the_reference_runs_on_numpy_and_on_the_stand_in():
    from plait.core import get_array_module, to_device

    x = np.ones(3, dtype=np.float32)
    assert not fused(x)
    if not REAL_GPU:  # the stand-in's arrays are not CuPy's: the NumPy maths runs on them
        xd = to_device(x, "cuda")
        assert not fused(xd) and get_array_module(xd).__name__ == "cupy"
