"""On CuPy the Trainer moves host batches to the GPU and matches the NumPy run (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import manual_seed
from plait.core.backend import cupy_available, to_numpy
from plait.layers import CrossEntropyLoss, Linear, ReLU, Sequential
from plait.optim import SGD
from plait.train import Trainer

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _need_gpu():
    if not cupy_available():
        pytest.skip("CuPy with a GPU is not available")


def test_fit_evaluate_predict_on_the_gpu_match_the_cpu():
    r = np.random.default_rng(0)
    x = r.standard_normal((96, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    runs = []
    for device in ("cpu", "cuda"):
        manual_seed(0)
        model = Sequential(Linear(4, 16), ReLU(), Linear(16, 2)).to(device)
        trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), metrics=["accuracy", "f1"], seed=0)
        history = trainer.fit((x, y), val=(x, y), epochs=2, batch_size=32, verbose=False)
        runs.append((history.history, to_numpy(trainer.predict(x)), {k: to_numpy(v) for k, v in model.state_dict().items()}))
    (h_cpu, p_cpu, w_cpu), (h_gpu, p_gpu, w_gpu) = runs
    for key in h_cpu:
        np.testing.assert_allclose(h_gpu[key], h_cpu[key], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=1e-4, atol=1e-5)
    for key in w_cpu:
        np.testing.assert_allclose(w_gpu[key], w_cpu[key], rtol=1e-4, atol=1e-5)


def test_mpi_strategy_refuses_gpu_parameters_clearly():
    from plait.train.distributed import DistributedError, MPIStrategy

    model = Sequential(Linear(4, 2)).to("cuda")
    strategy = object.__new__(MPIStrategy)  # the check comes before any MPI call
    for call in (strategy.broadcast_parameters, strategy.average_gradients):
        with pytest.raises(DistributedError, match="MPIStrategy works on host .* model.to\\('cpu'\\)"):
            call(model.parameters())
