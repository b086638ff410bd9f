"""Convolution, pooling and normalisation layers on the device give the CPU results.

On a machine with CuPy and a GPU it compares the GPU with NumPy (numeric parity); everywhere
else it runs on the strict CuPy stand-in of tests/_device, whose maths is NumPy's on both sides,
so it proves the device code path (no host arrays, no implicit host syncs), not the numbers.
Named ``test_device_path_*`` to be counted apart from the numeric parity tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from plait.core.backend import cupy_available, to_device, to_numpy
from plait.layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    GroupNorm,
    LayerNorm,
    MaxPool1d,
    MaxPool2d,
    RMSNorm,
)

pytestmark = pytest.mark.gpu

CASES = [
    (lambda: Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 7, 6)),
    (lambda: Conv2d(4, 6, 3, stride=2, dilation=2, padding=2), (2, 4, 9, 8)),
    (lambda: Conv1d(3, 4, 3, padding="same"), (2, 3, 10)),
    (lambda: ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), (2, 4, 3, 5)),
    (lambda: MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 7, 8)),
    (lambda: MaxPool1d(2), (2, 3, 9)),
    (lambda: AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 7, 8)),
    (lambda: AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    (lambda: BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda: GroupNorm(2, 4), (2, 4, 3, 3)),
    (lambda: LayerNorm(6), (3, 4, 6)),
    (lambda: RMSNorm(6), (3, 4, 6)),
]


@pytest.mark.parametrize("make, shape", CASES)
def test_device_path_spatial_layers_match_cpu(make, shape):
    if not cupy_available():
        pytest.skip("needs CuPy (a GPU, or the stand-in conftest installs)")
    cpu = make().astype(np.float64)
    gpu = make().astype(np.float64)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    y = cpu(x)
    dy = rng.standard_normal(y.shape)
    dx = cpu.backward(dy)
    y_gpu = gpu(to_device(x, "cuda"))
    dx_gpu = gpu.backward(to_device(dy, "cuda"))
    np.testing.assert_allclose(to_numpy(y_gpu), y, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(to_numpy(dx_gpu), dx, rtol=1e-9, atol=1e-12)
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-9, atol=1e-12, err_msg=name)
    for name, value in cpu.state_dict().items():
        np.testing.assert_allclose(to_numpy(gpu.state_dict()[name]), value, rtol=1e-9, err_msg=name)
