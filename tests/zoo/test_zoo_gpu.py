"""Zoo models on CuPy match NumPy; generation and save/load work from the GPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import manual_seed, no_grad, to_numpy
from plait.core.backend import cupy_available
from plait.zoo.generation import generate

pytestmark = pytest.mark.gpu

rng = np.random.default_rng(0)
CASES = {
    "gpt-nano": lambda: rng.integers(0, 65, (2, 12)),
    "char-lstm": lambda: rng.integers(0, 65, (2, 12)),
    "lenet5": lambda: rng.standard_normal((2, 1, 28, 28)).astype(np.float32),
    "resnet8": lambda: rng.standard_normal((2, 3, 32, 32)).astype(np.float32),
}


@pytest.fixture(autouse=True)
def _needs_gpu():
    if not cupy_available():
        pytest.skip("needs CuPy and a GPU")


@pytest.mark.parametrize("name", sorted(CASES))
def test_model_on_gpu_matches_cpu(name, tmp_path):
    import cupy as cp

    manual_seed(0)
    cpu = zoo.create(name)
    gpu = copy.deepcopy(cpu).to("cuda")
    x = CASES[name]()
    y = cpu(x)
    y_gpu = gpu(cp.asarray(x))
    assert isinstance(y_gpu, cp.ndarray)
    np.testing.assert_allclose(to_numpy(y_gpu), y, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    cpu.backward(dy)
    gpu.backward(cp.asarray(dy))
    for (pname, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-3, atol=1e-4, err_msg=pname)
    gpu.eval()
    same = zoo.load(zoo.save(gpu, tmp_path / name))
    with no_grad():
        np.testing.assert_allclose(same(x), to_numpy(gpu(cp.asarray(x))), rtol=1e-4, atol=1e-4)


def test_generation_on_gpu_with_and_without_cache():
    manual_seed(0)
    model = zoo.create("gpt-nano").to("cuda")
    a = generate(model, np.array([[1, 2, 3]]), 20, temperature=0)
    b = generate(model, np.array([[1, 2, 3]]), 20, temperature=0, use_cache=False)
    assert isinstance(a, np.ndarray) and a.shape == (1, 23)
    np.testing.assert_array_equal(a, b)
