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


def test_trained_on_the_device_then_loaded_on_the_cpu_predicts_the_same(tmp_path):
    """to("cuda"), a few Trainer steps there, save (weights copied to the host), load on the CPU."""
    import cupy as cp

    from plait.core import device_of
    from plait.layers import CrossEntropyLoss
    from plait.optim import Adam
    from plait.train import Trainer

    manual_seed(0)
    x = rng.standard_normal((24, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 24)
    model = zoo.create("lenet5").to("cuda")
    before = {k: to_numpy(v) for k, v in model.state_dict().items()}
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-2), seed=0)
    trainer.fit((x, y), epochs=2, batch_size=8, verbose=False)
    assert all(device_of(p.data) == "cuda" for p in model.parameters())
    assert any(not np.array_equal(to_numpy(v), before[k]) for k, v in model.state_dict().items())
    loaded = zoo.load(zoo.save(model, tmp_path / "lenet5"))
    assert all(device_of(p.data) == "cpu" for p in loaded.parameters())
    model.eval()
    with no_grad():
        on_device = to_numpy(model(cp.asarray(x)))
        np.testing.assert_allclose(loaded(x), on_device, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(trainer.predict(x)), on_device, rtol=1e-5, atol=1e-5)


# One training step on the device synchronises with the host only where Plait must: the loss
# value (a float) and one range check per integer-id validation (model input, Embedding, loss).
STEP_SYNCS = {"mlp": 2, "lenet5": 2, "gpt-nano": 4, "char-lstm": 4}


@pytest.mark.parametrize("name", sorted(STEP_SYNCS))
def test_a_training_step_keeps_to_its_host_syncs(name, host_syncs):
    import cupy as cp

    from plait.layers import CrossEntropyLoss
    from plait.optim import AdamW

    manual_seed(0)
    model = zoo.create(name).to("cuda")
    loss_fn, opt = CrossEntropyLoss(), AdamW(model.parameters(), lr=1e-3)
    x = cp.asarray(CASES[name]() if name in CASES else rng.standard_normal((8, 784)).astype(np.float32))
    classes = 65 if x.ndim == 2 and x.dtype.kind == "i" else 10
    y = cp.asarray(rng.integers(0, classes, x.shape if x.dtype.kind == "i" else x.shape[:1]))
    for _ in range(2):  # the second step: optimizer state exists
        host_syncs.clear()
        logits = model(x)
        loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        model.backward(loss_fn.backward().reshape(logits.shape))
        opt.step()
        opt.zero_grad()
    assert sum(host_syncs.values()) == STEP_SYNCS[name], dict(host_syncs)


def test_the_cli_trains_and_generates_on_the_device(tmp_path, capsys, monkeypatch):
    """plait train / generate --device cuda, and PLAIT_DEVICE=cuda as the default."""
    from plait.core.cli import main

    data = tmp_path / "text.txt"
    data.write_text("To be, or not to be, that is the question.\n" * 40, encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", "gpt-nano", "--data", str(data), "--epochs", "1", "--seq-len", "16", "--batch-size", "8",
                 "--out", str(out), "--device", "cuda"]) == 0
    monkeypatch.setenv("PLAIT_DEVICE", "cuda")
    assert main(["generate", str(out), "--prompt", "To be", "--max-new-tokens", "8", "--temperature", "0"]) == 0
    on_device = capsys.readouterr().out.splitlines()[-1]
    assert main(["generate", str(out), "--prompt", "To be", "--max-new-tokens", "8", "--temperature", "0",
                 "--device", "cpu"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == on_device and on_device.startswith("To be")
