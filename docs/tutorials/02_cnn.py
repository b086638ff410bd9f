"""Tutorial 2: convolutional networks from the zoo (lenet5, then resnet8-mnist) on Fashion-MNIST.

Loss curves of both models and the confusion matrix of the better one. Run from the
repository root::

    python docs/tutorials/02_cnn.py

``PLAIT_TUTORIAL_FAST=1`` trains on a small subset for one epoch (what CI runs);
``PLAIT_TUTORIAL_FIGURES=DIR`` writes the figures to DIR instead of docs/tutorials/figures.
"""

# --8<-- [start:setup]
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import plait.zoo as zoo
from plait.core import manual_seed
from plait.layers import CrossEntropyLoss
from plait.optim import AdamW, CosineAnnealingLR
from plait.train import Callback, Trainer
from plait.train.datasets import load_fashion_mnist

FAST = os.environ.get("PLAIT_TUTORIAL_FAST") == "1"
FIGURES = Path(os.environ.get("PLAIT_TUTORIAL_FIGURES") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
# (epochs, training images) per model: the full setting, or a few hundred images in CI
SETTINGS = {"lenet5": (1, 600), "resnet8-mnist": (1, 128)} if FAST else \
           {"lenet5": (3, 60_000), "resnet8-mnist": (1, 12_000)}
# --8<-- [end:setup]

# --8<-- [start:data]
(x_train, y_train), (x_test, y_test) = load_fashion_mnist(download=False)
if FAST:
    x_test, y_test = x_test[:300], y_test[:300]
mean, std = x_train.mean(), x_train.std()
x_train = ((x_train - mean) / std)[:, None]  # (N, 1, 28, 28): channels first, as in PyTorch
x_test = ((x_test - mean) / std)[:, None]
# --8<-- [end:data]


# --8<-- [start:callback]
class BatchLosses(Callback):
    """Records every training batch's loss (the History keeps one value per epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.losses.append(logs["loss"])
# --8<-- [end:callback]


# --8<-- [start:train]
results = {}
for name, (epochs, n_train) in SETTINGS.items():
    manual_seed(0)
    model = zoo.create(name)
    optimizer = AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * -(-n_train // 64)
    batches = BatchLosses()
    trainer = Trainer(model, CrossEntropyLoss(), optimizer, metrics=["accuracy"], seed=0,
                      scheduler=CosineAnnealingLR(optimizer, T_max=steps), scheduler_interval="step",
                      callbacks=[batches])
    start = time.perf_counter()
    history = trainer.fit((x_train[:n_train], y_train[:n_train]), val=(x_test, y_test),
                          epochs=epochs, batch_size=64, verbose=False)
    seconds = time.perf_counter() - start
    results[name] = {"batch_losses": batches.losses, "val_loss": history.history["val_loss"],
                     "accuracy": history.history["val_accuracy"][-1], "trainer": trainer}
    print(f"{name}: {model.num_parameters():,} parameters, {epochs} epoch(s) on {n_train} images in {seconds:.1f} s, "
          f"test accuracy {history.history['val_accuracy'][-1]:.4f}")
# --8<-- [end:train]


# --8<-- [start:curves]
def smooth(values: list[float], width: int) -> np.ndarray:
    width = max(1, min(width, len(values)))
    return np.convolve(values, np.ones(width) / width, mode="valid")


fig, ax = plt.subplots(figsize=(7, 3.6))
for name, r in results.items():
    per_epoch = len(r["batch_losses"]) / len(r["val_loss"])
    curve = smooth(r["batch_losses"], 50)
    line, = ax.plot(np.arange(len(curve)) + 1, curve, label=f"{name}: training (mean of 50 batches)")
    ax.plot(per_epoch * np.arange(1, len(r["val_loss"]) + 1), r["val_loss"], "o--", color=line.get_color(),
            label=f"{name}: test, after each epoch")
ax.set(xlabel="training step (batch of 64)", ylabel="cross-entropy loss", title="Fashion-MNIST")
ax.set_ylim(bottom=0)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIGURES / "02_cnn_loss.png", dpi=100)
# --8<-- [end:curves]

# --8<-- [start:confusion]
best = max(results, key=lambda n: results[n]["accuracy"])
pred = np.asarray(results[best]["trainer"].predict(x_test)).argmax(axis=1)
confusion = np.zeros((10, 10), dtype=np.int64)
np.add.at(confusion, (y_test, pred), 1)  # rows: true class, columns: predicted
fig, ax = plt.subplots(figsize=(6.2, 5.4))
ax.imshow(confusion, cmap="Blues")
for (i, j), count in np.ndenumerate(confusion):
    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
            color="white" if count > confusion.max() / 2 else "black")
ax.set_xticks(range(10), CLASSES, rotation=60, fontsize=8)
ax.set_yticks(range(10), CLASSES, fontsize=8)
ax.set(xlabel="predicted", ylabel="true", title=f"{best} on the test set: confusion matrix")
fig.tight_layout()
fig.savefig(FIGURES / "02_cnn_confusion.png", dpi=100)
off_diagonal = np.where(np.eye(10, dtype=bool), 0, confusion)
i, j = np.unravel_index(off_diagonal.argmax(), off_diagonal.shape)
print(f"most frequent mistake: {CLASSES[i]} taken for {CLASSES[j]} ({confusion[i, j]} of {confusion[i].sum()} test images)")
# --8<-- [end:confusion]
print("test accuracy: " + ", ".join(f"{n} {r['accuracy']:.4f}" for n, r in results.items()))
