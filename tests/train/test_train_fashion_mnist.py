"""Real data: an MLP from plait-layers reaches >= 85% test accuracy on Fashion-MNIST in 2 epochs.

Uses the Debian package's files (``dataset-fashion-mnist``, installed by ``.ci/run``) or the
Plait cache; never downloads, and skips cleanly when the data is absent.
"""

from __future__ import annotations

import time

import pytest

from plait.core import manual_seed
from plait.layers import CrossEntropyLoss, Linear, ReLU, Sequential
from plait.optim import Adam
from plait.train import Trainer
from plait.train.datasets import load_fashion_mnist


def test_mlp_reaches_85_percent_on_fashion_mnist_within_two_epochs():
    start = time.perf_counter()
    try:
        (x, y), (x_test, y_test) = load_fashion_mnist(flatten=True, download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    assert x.shape == (60_000, 784) and x_test.shape == (10_000, 784)
    mean, std = x.mean(), x.std()  # standardise with training-set statistics
    x = (x - mean) / std
    x_test = (x_test - mean) / std
    loaded = time.perf_counter()

    manual_seed(0)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 10))
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3), metrics=["accuracy"], seed=0)
    history = trainer.fit((x, y), epochs=2, batch_size=64, verbose=False)
    result = trainer.evaluate((x_test, y_test))
    elapsed = time.perf_counter() - start
    print(
        f"Fashion-MNIST 784-256-10 MLP, Adam 1e-3, batch 64: train accuracy {history.history['accuracy']}, "
        f"test accuracy {result['accuracy']:.4f}, test loss {result['loss']:.4f}; "
        f"load {loaded - start:.1f} s, train+evaluate {elapsed - (loaded - start):.1f} s, total {elapsed:.1f} s"
    )
    assert result["accuracy"] >= 0.85
    assert history.history["loss"][1] < history.history["loss"][0]
    assert elapsed < 60, f"took {elapsed:.1f} s"
