"""Real data: an MLP from plait-layers reaches >= 85% test accuracy on Fashion-MNIST in 2 epochs.

Uses the Debian package's files (``dataset-fashion-mnist``, installed by ``.ci/run``) or the
Plait cache; never downloads, and skips cleanly when the data is absent.
"""

from __future__ import annotations

import contextlib
import os
import time

import pytest
from threadpoolctl import threadpool_limits

from plait.core import manual_seed
from plait.layers import CrossEntropyLoss, Linear, ReLU, Sequential
from plait.optim import Adam
from plait.train import Trainer
from plait.train.datasets import load_fashion_mnist

BUDGET_S = 60.0


def test_mlp_reaches_85_percent_on_fashion_mnist_within_two_epochs():
    # On an oversubscribed machine (other jobs running) the wall clock measures their load,
    # not this test: then BLAS runs one thread (no spinning threads fighting for cores) and
    # the budget holds for this process's CPU time instead.
    overloaded = os.getloadavg()[0] > 1.5 * (os.cpu_count() or 1)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        (x, y), (x_test, y_test) = load_fashion_mnist(flatten=True, download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    assert x.shape == (60_000, 784) and x_test.shape == (10_000, 784)
    mean, std = x.mean(), x.std()  # standardise with training-set statistics
    x = (x - mean) / std
    x_test = (x_test - mean) / std
    loaded = time.perf_counter()

    with threadpool_limits(limits=1) if overloaded else contextlib.nullcontext():
        manual_seed(0)
        model = Sequential(Linear(784, 256), ReLU(), Linear(256, 10))
        trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3), metrics=["accuracy"], seed=0)
        history = trainer.fit((x, y), epochs=2, batch_size=64, verbose=False)
        result = trainer.evaluate((x_test, y_test))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        f"Fashion-MNIST 784-256-10 MLP, Adam 1e-3, batch 64: train accuracy {history.history['accuracy']}, "
        f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f}; "
        f"load {loaded - start:.1f} s, train+evaluate {elapsed - (loaded - start):.1f} s, total {elapsed:.1f} s "
        f"(CPU {cpu:.1f} s, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
        f"{'1 BLAS thread' if overloaded else 'default BLAS threads'})"
    )
    assert result["accuracy"] >= 0.85
    assert history.history["loss"][1] < history.history["loss"][0]
    if overloaded:
        assert cpu < BUDGET_S, f"used {cpu:.1f} s of CPU ({elapsed:.1f} s wall on an oversubscribed machine)"
    else:
        assert elapsed < BUDGET_S, f"took {elapsed:.1f} s"
