"""The fused CUDA kernels of plait.layers (GELU, layer norm) equal their NumPy reference maths.

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
from plait.layers import _norm_maths as norm
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
    np.testing.assert_allclose(ctx[1].get(), ctx_ref[1], **TOL[dtype])  # the slope dy/dx
    np.testing.assert_allclose(dx.get(), dx_ref, **TOL[dtype])


@needs_gpu
def test_gelu_kernel_takes_strided_and_0d_inputs():
    import cupy

    x = np.linspace(-3, 3, 48, dtype=np.float32).reshape(6, 8)
    y, _ = maths.gelu_forward(cupy.asarray(x)[:, ::2].T)
    np.testing.assert_allclose(y.get(), maths.gelu_forward(x[:, ::2].T)[0], **TOL[np.float32])
    y0, _ = maths.gelu_forward(cupy.asarray(np.float32(0.7)).reshape(()))
    assert y0.shape == () and np.isclose(float(y0), maths.gelu_forward(np.float32(0.7).reshape(()))[0])


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, normalized, affine", [
    ((4, 7, 96), (96,), (True, True)), ((5, 1), (1,), (True, False)), ((3, 1000), (1000,), (False, False)),
    ((2, 3, 4, 750), (4, 750), (True, True)), ((6, 2, 300), (300,), (False, True)),
])
def test_layer_norm_kernels_equal_the_numpy_reference(shape, normalized, affine, dtype):
    import cupy

    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.5, 1.5, normalized).astype(dtype) if affine[0] else None
    b = rng.standard_normal(normalized).astype(dtype) if affine[1] else None
    y_ref, ctx_ref = norm.layer_norm_forward(x, w, b, normalized_shape=normalized, eps=1e-5)
    dx_ref, dw_ref, db_ref = norm.layer_norm_backward(dy, ctx_ref, w, b)
    dev = [None if a is None else cupy.asarray(a) for a in (x, dy, w, b)]
    assert norm.layer_norm_fusable(dev[0])
    y, ctx = norm.layer_norm_forward(dev[0], dev[2], dev[3], normalized_shape=normalized, eps=1e-5)
    dx, dw, db = norm.layer_norm_backward(dev[1], ctx, dev[2], dev[3])
    tol = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}[dtype]
    for got, want, what in ((y, y_ref, "y"), (ctx[0], ctx_ref[0], "xhat"), (ctx[1], ctx_ref[1], "rstd"),
                            (dx, dx_ref, "dx"), (dw, dw_ref, "dweight"), (db, db_ref, "dbias")):
        if want is None:
            assert got is None, what
            continue
        assert got.dtype == want.dtype and got.shape == want.shape, what
        np.testing.assert_allclose(got.get(), want, err_msg=what, **tol)


@needs_gpu
def test_layer_norm_kernel_takes_a_strided_input():
    import cupy

    x = np.random.default_rng(2).standard_normal((6, 40)).astype(np.float32)
    y, _ = norm.layer_norm_forward(cupy.asarray(x)[:, ::2], None, None, normalized_shape=(20,), eps=1e-5)
    y_ref, _ = norm.layer_norm_forward(x[:, ::2], None, None, normalized_shape=(20,), eps=1e-5)
    np.testing.assert_allclose(y.get(), y_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_the_reference_runs_on_numpy_and_on_the_stand_in():
    from plait.core import get_array_module, to_device

    x = np.ones(3, dtype=np.float32)
    assert not fused(x)
    if not REAL_GPU:  # the stand-in's arrays are not CuPy's: the NumPy maths runs on them
        xd = to_device(x, "cuda")
        assert not fused(xd) and get_array_module(xd).__name__ == "cupy"
