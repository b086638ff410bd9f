"""CuPy path of the dense/embedding/positional/activation/dropout/container/reshape layers and losses.

Each case runs on the CPU and on the device from the same weights and compares outputs and
every gradient. On a machine with CuPy and a GPU it compares the GPU with NumPy (numeric
parity); everywhere else it runs on the strict CuPy stand-in of tests/_device, whose maths is
NumPy's on both sides, so it proves the device code path (no host arrays, no implicit host
syncs), not the numbers. Named ``test_device_path_*`` to be counted apart from the numeric
parity tests.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from plait.core import manual_seed, to_numpy
from plait.core.backend import cupy_available
from plait.layers import (
    GELU,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    HuberLoss,
    LearnedPositionalEmbedding,
    Linear,
    LogSoftmax,
    Mish,
    Residual,
    Sequential,
    SinusoidalPositionalEmbedding,
    Softmax,
)

pytestmark = pytest.mark.gpu

rng = np.random.default_rng(0)
LAYER_CASES = [
    ("sequential", lambda: Sequential(Linear(6, 6), GELU(), Residual(Sequential(Linear(6, 6), Mish()))),
     rng.standard_normal((4, 6)).astype(np.float32)),
    ("softmax", lambda: Softmax(1), rng.standard_normal((3, 5, 2)).astype(np.float32)),
    ("log_softmax", LogSoftmax, (rng.standard_normal((3, 5)) * 1e3).astype(np.float32)),
    ("embedding", lambda: Embedding(10, 4, padding_idx=0), np.array([[0, 3, 3], [9, 1, 3]])),
    ("sinusoidal", lambda: SinusoidalPositionalEmbedding(8, 4), rng.standard_normal((2, 3, 4)).astype(np.float32)),
    ("learned", lambda: LearnedPositionalEmbedding(8, 4), rng.standard_normal((2, 3, 4)).astype(np.float32)),
    ("flatten", Flatten, rng.standard_normal((2, 3, 4)).astype(np.float32)),
]


@pytest.fixture(autouse=True)
def _needs_gpu():
    if not cupy_available():
        pytest.skip("needs CuPy (a GPU, or the stand-in conftest installs)")


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_device_path_layer_matches_cpu(case):
    import cupy as cp

    _, make, x = case
    cpu = make()
    gpu = copy.deepcopy(cpu).to("cuda")
    y = cpu(x)
    y_gpu = gpu(cp.asarray(x))
    assert isinstance(y_gpu, cp.ndarray)
    np.testing.assert_allclose(to_numpy(y_gpu), y, rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = cpu.backward(dy)
    dx_gpu = gpu.backward(cp.asarray(dy))
    if dx is not None:
        np.testing.assert_allclose(to_numpy(dx_gpu), dx, rtol=1e-5, atol=1e-5)
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-5, atol=1e-5, err_msg=name)


def test_device_path_dropout():
    import cupy as cp

    manual_seed(0)
    layer = Dropout(0.3)
    y = layer(cp.ones((100, 100), dtype=cp.float32))
    assert isinstance(y, cp.ndarray) and abs(float((y != 0).mean()) - 0.7) < 0.03
    np.testing.assert_allclose(to_numpy(layer.backward(cp.ones_like(y))), to_numpy(y))


LOSS_CASES = [
    ("cross_entropy", lambda: CrossEntropyLoss(weight=[1.0, 2.0, 0.5], label_smoothing=0.1),
     rng.standard_normal((4, 3, 2)).astype(np.float32), np.array([[0, 1], [2, -100], [1, 1], [0, 2]])),
    ("bce_with_logits", lambda: BCEWithLogitsLoss(pos_weight=[1.0, 3.0]), rng.standard_normal((3, 2)).astype(np.float32),
     rng.random((3, 2)).astype(np.float32)),
    ("huber", lambda: HuberLoss(reduction="sum"), rng.standard_normal((3, 2)).astype(np.float32),
     rng.standard_normal((3, 2)).astype(np.float32)),
]


@pytest.mark.parametrize("case", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_device_path_loss_matches_cpu(case):
    import cupy as cp

    _, make, x, t = case
    cpu, gpu = make(), make()
    value = cpu(x, t)
    value_gpu = gpu(cp.asarray(x), cp.asarray(t))
    np.testing.assert_allclose(value_gpu, value, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(gpu.backward()), cpu.backward(), rtol=1e-5, atol=1e-6)
