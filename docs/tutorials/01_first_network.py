"""Tutorial 1: a first network, an MLP on Fashion-MNIST.

First with a hand-written training loop (forward, loss, backward, optimizer step), then the
same model with ``Trainer``. Run from the repository root::

    python docs/tutorials/01_first_network.py

``PLAIT_TUTORIAL_FAST=1`` trains on a small subset for one epoch (what CI runs);
``PLAIT_TUTORIAL_FIGURES=DIR`` writes the figures to DIR instead of docs/tutorials/figures.
"""

# --8<-- [start:setup]
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files, no window
import matplotlib.pyplot as plt
import numpy as np

from plait.core import manual_seed, no_grad
from plait.layers import CrossEntropyLoss, Linear, ReLU, Sequential
from plait.optim import AdamW
from plait.train import Trainer
from plait.train.datasets import load_fashion_mnist

FAST = os.environ.get("PLAIT_TUTORIAL_FAST") == "1"
FIGURES = Path(os.environ.get("PLAIT_TUTORIAL_FIGURES") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
EPOCHS = 1 if FAST else 5
BATCH = 128
# --8<-- [end:setup]

# --8<-- [start:data]
# Fashion-MNIST: 60,000 training and 10,000 test images of 28x28 pixels, float32 in [0, 1].
# Found in the Debian package dataset-fashion-mnist or the cache; nothing is downloaded here.
(x_train, y_train), (x_test, y_test) = load_fashion_mnist(flatten=True, download=False)
if FAST:
    x_train, y_train, x_test, y_test = x_train[:600], y_train[:600], x_test[:500], y_test[:500]
mean, std = x_train.mean(), x_train.std()  # standardise with the training statistics
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
print(f"train {x_train.shape}, test {x_test.shape}")
# --8<-- [end:data]


# --8<-- [start:model]
def make_model() -> Sequential:
    manual_seed(0)  # the same initial weights for both runs
    return Sequential(Linear(784, 256), ReLU(), Linear(256, 10))


def accuracy(model: Sequential, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with no_grad():  # inference: nothing is cached for a backward pass
        correct = sum(int((model(x[i:i + 1000]).argmax(axis=1) == y[i:i + 1000]).sum())
                      for i in range(0, len(x), 1000))
    model.train()
    return correct / len(x)
# --8<-- [end:model]


# --8<-- [start:loop]
model = make_model()
loss_fn = CrossEntropyLoss()
optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
rng = np.random.default_rng(0)
loop_curve = []  # (epoch, mean training loss, test accuracy)
start = time.perf_counter()
for epoch in range(EPOCHS):
    order = rng.permutation(len(x_train))  # a new shuffle every epoch
    total = 0.0
    for i in range(0, len(order), BATCH):
        idx = order[i:i + BATCH]
        logits = model(x_train[idx])               # forward caches what backward needs
        loss = loss_fn(logits, y_train[idx])       # a Python float
        model.backward(loss_fn.backward())         # d loss / d logits, back through every layer
        optimizer.step()                           # AdamW update of every Param
        optimizer.zero_grad()                      # gradients accumulate until cleared
        total += loss * len(idx)
    loop_curve.append((epoch + 1, total / len(order), accuracy(model, x_test, y_test)))
    print(f"hand-written loop, epoch {epoch + 1}: loss {loop_curve[-1][1]:.4f}, test accuracy {loop_curve[-1][2]:.4f}")
loop_seconds = time.perf_counter() - start
# --8<-- [end:loop]

# --8<-- [start:trainer]
model = make_model()
trainer = Trainer(model, CrossEntropyLoss(), AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4),
                  metrics=["accuracy"], seed=0)
start = time.perf_counter()
history = trainer.fit((x_train, y_train), val=(x_test, y_test), epochs=EPOCHS, batch_size=BATCH, verbose=False)
trainer_seconds = time.perf_counter() - start
result = trainer.evaluate((x_test, y_test))
print(f"Trainer: loss {history.history['loss'][-1]:.4f}, test accuracy {result['accuracy']:.4f}")
# --8<-- [end:trainer]

# --8<-- [start:plot]
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
epochs = np.arange(1, EPOCHS + 1)
ax_loss.plot(epochs, [c[1] for c in loop_curve], "o-", label="hand-written loop")
ax_loss.plot(epochs, history.history["loss"], "s--", label="Trainer")
ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
ax_acc.plot(epochs, [c[2] for c in loop_curve], "o-", label="hand-written loop")
ax_acc.plot(epochs, history.history["val_accuracy"], "s--", label="Trainer")
ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy")
for ax in (ax_loss, ax_acc):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
fig.savefig(FIGURES / "01_mlp_curves.png", dpi=100)
print(f"wrote {FIGURES / '01_mlp_curves.png'}")
# --8<-- [end:plot]

print(f"test accuracy: loop {loop_curve[-1][2]:.4f} ({loop_seconds:.1f} s), "
      f"Trainer {result['accuracy']:.4f} ({trainer_seconds:.1f} s)")
