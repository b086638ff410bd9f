"""The fused CUDA Adam/AdamW update equals the NumPy reference (``Adam._update``).

Runs on a real GPU (skipped without one): the same parameters and gradients, five steps on
the host with NumPy and on the GPU with the one-launch kernel of
``plait/optim/_cuda_kernels.py``; parameters and both moments must agree. AMSGrad keeps the
reference path on the GPU too, and is compared the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Param, to_device, to_numpy
from plait.core.backend import cupy_available
from plait.optim import Adam, AdamW

pytestmark = pytest.mark.skipif(not cupy_available(), reason="fused CUDA kernels need CuPy and a GPU")
TOL = {np.float32: dict(rtol=1e-5, atol=1e-7), np.float64: dict(rtol=1e-11, atol=1e-14)}
CASES = [
    (Adam, {}),
    (Adam, {"weight_decay": 0.1, "betas": (0.8, 0.95)}),
    (AdamW, {}),
    (AdamW, {"weight_decay": 0.3, "lr": 0.01, "maximize": True}),
    (AdamW, {"amsgrad": True, "weight_decay": 0.05}),
    (Adam, {"l1": 0.01, "l2": 0.02, "eps": 1e-6}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, options", CASES, ids=lambda c: getattr(c, "__name__", None) or str(c))
def test_fused_adam_equals_the_reference(cls, options, dtype):
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (5,), (3, 4, 2)]
    host = [Param(rng.standard_normal(s).astype(dtype)) for s in shapes]
    device = [Param(to_device(p.data.copy(), "cuda")) for p in host]
    opt_host, opt_device = cls(host, **options), cls(device, **options)
    for _ in range(5):
        for ph, pd in zip(host, device):
            g = rng.standard_normal(ph.shape).astype(dtype)
            ph.grad = g
            pd.grad = to_device(g, "cuda")
        opt_host.step()
        opt_device.step()
    for ph, pd in zip(host, device):
        np.testing.assert_allclose(to_numpy(pd.data), ph.data, **TOL[dtype])
        sh, sd = opt_host.state[ph], opt_device.state[pd]
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(to_numpy(sd[key]), sh[key], **TOL[dtype], err_msg=key)
