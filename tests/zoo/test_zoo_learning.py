"""Learning on real data: lenet5 on Fashion-MNIST, char-lstm and gpt-nano on tinyshakespeare.

Budgets are counted in optimizer steps, never in seconds: a learning test must give the same
verdict on an idle machine and on a loaded one (only its duration changes).

BLAS runs on one thread here: on a shared, busy machine OpenBLAS's spinning worker threads
make small matmuls many times slower than one thread does.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import manual_seed, no_grad

REPO = Path(__file__).resolve().parents[2]
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
FASHION = Path("/usr/share/datasets/fashion-mnist")

optim = pytest.importorskip("plait.optim")
layers = pytest.importorskip("plait.layers")


@pytest.fixture(autouse=True)
def one_blas_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


def _char_data(seq_len: int):
    if not SHAKESPEARE.is_file():
        pytest.skip(f"{SHAKESPEARE} not found")
    text = SHAKESPEARE.read_text(encoding="utf-8")
    codec = pytest.importorskip("plait.tokenizers").CharTokenizer().fit(text)
    ids = np.asarray(codec.encode(text), dtype=np.int64)
    split = int(0.9 * len(ids))
    train, val = ids[:split], ids[split:]
    starts = np.random.default_rng(1).integers(0, len(val) - seq_len - 1, 16)
    windows = starts[:, None] + np.arange(seq_len + 1)
    return codec, train, val[windows[:, :-1]], val[windows[:, 1:]]


def train_language_model(name: str, max_steps: int, target: float, lr: float = 3e-3, batch: int = 32,
                         seq_len: int = 64) -> tuple[float, int, float]:
    """AdamW on random windows until the validation loss (nats/char, checked every 25 steps) drops
    below ``target`` or ``max_steps`` steps are done; returns (validation loss, steps, seconds)."""
    codec, train, val_x, val_y = _char_data(128)
    manual_seed(0)
    rng = np.random.default_rng(0)
    model = zoo.create(name, vocab_size=codec.vocab_size)
    loss = layers.CrossEntropyLoss()
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    offsets = np.arange(seq_len + 1)

    def validate() -> float:
        model.eval()
        with no_grad():
            logits = model(val_x)
        model.train()
        return float(layers.CrossEntropyLoss()(logits.reshape(-1, codec.vocab_size), val_y.reshape(-1)))

    start, steps, val_loss = time.perf_counter(), 0, float("inf")
    while steps < max_steps:
        windows = train[rng.integers(0, len(train) - seq_len - 1, batch)[:, None] + offsets]
        logits = model(windows[:, :-1])
        loss(logits.reshape(-1, codec.vocab_size), windows[:, 1:].reshape(-1))
        model.backward(loss.backward().reshape(logits.shape))
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        steps += 1
        if steps % 25 == 0:
            val_loss = validate()
            if val_loss < target:
                break
    val_loss = validate()
    return val_loss, steps, time.perf_counter() - start


# Steps each model needs to reach the target (seeded, so the same on every machine): char-lstm 100,
# gpt-nano 250. The budget leaves room for a slightly slower learner, not for a broken one.
@pytest.mark.parametrize("name", ["char-lstm", "gpt-nano"])
def test_character_model_learns_tinyshakespeare(name):
    val_loss, steps, seconds = train_language_model(name, max_steps=600, target=2.15)
    print(f"{name}: validation loss {val_loss:.3f} nats/char after {steps} steps, {seconds:.1f} s")
    assert val_loss < 2.2, f"{name}: validation loss {val_loss:.3f} after {steps} steps / {seconds:.0f} s"


@pytest.mark.slow
def test_lenet5_reaches_88_percent_on_fashion_mnist_in_two_epochs():
    if not (FASHION / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed at {FASHION}")
    from plait.train.datasets import load_fashion_mnist

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(FASHION, download=False)
    mean, std = 0.2860, 0.3530  # Fashion-MNIST's pixel statistics
    x_train, x_test = (x_train[:, None] - mean) / std, (x_test[:, None] - mean) / std
    manual_seed(0)
    rng = np.random.default_rng(0)
    model = zoo.create("lenet5")
    loss = layers.CrossEntropyLoss()
    base_lr, batch, epochs = 3e-3, 32, 2
    opt = optim.AdamW(model.parameters(), lr=base_lr, weight_decay=0.0)
    total_steps, step = epochs * -(-len(x_train) // batch), 0
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), batch):
            for group in opt.param_groups:  # linear decay to zero
                group["lr"] = base_lr * (1 - step / total_steps)
            idx = order[i : i + batch]
            loss(model(x_train[idx]), y_train[idx])
            model.backward(loss.backward())
            opt.step()
            opt.zero_grad()
            step += 1
    model.eval()
    with no_grad():
        predictions = np.concatenate([model(x_test[i : i + 1000]).argmax(-1) for i in range(0, len(x_test), 1000)])
    accuracy = float((predictions == y_test).mean())
    print(f"lenet5: Fashion-MNIST test accuracy {accuracy:.4f} after 2 epochs, {time.perf_counter() - start:.0f} s")
    assert accuracy >= 0.88


def test_cnn_digits_learns_scikit_learn_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    manual_seed(0)
    model = zoo.create("cnn-digits")
    loss = layers.CrossEntropyLoss()
    opt = optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(10):
        batches = rng.permutation(1400)
        for i in range(0, 1400, 32):
            idx = batches[i : i + 32]
            loss(model(x[idx]), y[idx])
            model.backward(loss.backward())
            opt.step()
            opt.zero_grad()
    model.eval()
    with no_grad():
        accuracy = float((model(x[1400:]).argmax(-1) == y[1400:]).mean())
    assert accuracy >= 0.95, accuracy
