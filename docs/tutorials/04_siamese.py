"""Tutorial 4: weight sharing, a Siamese network with a pairwise loss on Fashion-MNIST.

One encoder embeds both images of a pair; ``CosineEmbeddingLoss`` pulls the embeddings of
two images of the same class together and pushes those of different classes apart. The
encoder runs forward twice before its two backward calls, which come in the reverse order,
and the gradients of both branches add up in its parameters. Run from the repository root::

    python docs/tutorials/04_siamese.py

``PLAIT_TUTORIAL_FAST=1`` trains on a few thousand pairs (what CI runs);
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

from plait.core import manual_seed, no_grad
from plait.core.testing import numerical_gradient
from plait.layers import CosineEmbeddingLoss, Linear, ReLU, Sequential
from plait.optim import AdamW
from plait.train.datasets import load_fashion_mnist

FAST = os.environ.get("PLAIT_TUTORIAL_FAST") == "1"
FIGURES = Path(os.environ.get("PLAIT_TUTORIAL_FIGURES") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
EPOCHS, PAIRS_PER_EPOCH = (1, 4096) if FAST else (6, 60_000)
BATCH, MARGIN = 128, 0.2
# --8<-- [end:setup]

# --8<-- [start:data]
(x_train, y_train), (x_test, y_test) = load_fashion_mnist(flatten=True, download=False)
if FAST:
    x_train, y_train, x_test, y_test = x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]
mean, std = x_train.mean(), x_train.std()
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std


def make_pairs(y: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, target): n index pairs into y, half of one class (target +1), half of two classes (-1)."""
    order = np.argsort(y, kind="stable")  # the indices of class c are order[start[c]:start[c] + count[c]]
    count = np.bincount(y, minlength=10)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    i = rng.integers(0, len(y), n)
    same = rng.random(n) < 0.5
    partner_class = np.where(same, y[i], (y[i] + rng.integers(1, 10, n)) % 10)  # another class: shift by 1..9
    j = order[start[partner_class] + (rng.random(n) * count[partner_class]).astype(np.int64)]
    return i, j, np.where(same, 1, -1)


test_pairs = make_pairs(y_test, 10_000, np.random.default_rng(1))   # scored after training
val_pairs = make_pairs(y_train, 5_000, np.random.default_rng(2))    # picks the decision threshold
# --8<-- [end:data]


# --8<-- [start:model]
def make_encoder() -> Sequential:
    """784 pixels -> a 64-dimensional embedding; only its direction matters to the loss."""
    manual_seed(0)
    return Sequential(Linear(784, 256), ReLU(), Linear(256, 64))


def cosines(embed, x: np.ndarray, pairs: tuple) -> np.ndarray:
    """cos(embed(x[i]), embed(x[j])) for every pair; each image is embedded once."""
    e = embed(x)
    e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
    i, j, _ = pairs
    return (e[i] * e[j]).sum(axis=1)


def pair_accuracy(embed) -> float:
    """Share of held-out test pairs judged right by "same class iff cos > threshold",
    the threshold chosen on pairs of training images."""
    val_cos, test_cos = cosines(embed, x_train, val_pairs), cosines(embed, x_test, test_pairs)
    grid = np.linspace(-1, 1, 401)
    threshold = grid[((val_cos[:, None] > grid) == (val_pairs[2] == 1)[:, None]).mean(axis=0).argmax()]
    return float(((test_cos > threshold) == (test_pairs[2] == 1)).mean())


def embed_with(encoder: Sequential):
    def embed(x: np.ndarray) -> np.ndarray:
        with no_grad():
            return np.concatenate([encoder(x[k:k + 2000]) for k in range(0, len(x), 2000)])
    return embed
# --8<-- [end:model]


# --8<-- [start:sharing]
encoder = make_encoder()
loss_fn = CosineEmbeddingLoss(margin=MARGIN)
i, j, target = make_pairs(y_train, 32, np.random.default_rng(3))
x1, x2 = x_train[i], x_train[j]


def gradients() -> list[np.ndarray]:
    """A copy of every parameter's gradient, then cleared for the next experiment."""
    grads = [p.grad.copy() for p in encoder.parameters()]
    encoder.zero_grad()
    return grads


# both branches: two forwards, then the two backwards in the reverse order
z1 = encoder(x1)                      # forward 1 pushes its cache
z2 = encoder(x2)                      # forward 2 pushes its cache on top
loss_fn(z1, z2, target)
dz1, dz2 = loss_fn.backward()
encoder.backward(dz2)                 # pops forward 2's cache
encoder.backward(dz1)                 # pops forward 1's cache; both gradients add up
both = gradients()

# one branch at a time: the other embedding is a constant (no_grad keeps no cache for it)
z1 = encoder(x1)
with no_grad():
    z2 = encoder(x2)
loss_fn(z1, z2, target)
encoder.backward(loss_fn.backward()[0])
branch1 = gradients()
with no_grad():
    z1 = encoder(x1)
z2 = encoder(x2)
loss_fn(z1, z2, target)
encoder.backward(loss_fn.backward()[1])
branch2 = gradients()
gap = max(float(np.abs(b - (g1 + g2)).max()) for b, g1, g2 in zip(both, branch1, branch2))
print(f"shared gradient - (branch 1 + branch 2): max abs {gap:.1e}")
# --8<-- [end:sharing]

# --8<-- [start:fd]
# Finite differences of the loss in float64, perturbing the shared first-layer weight
# (both branches see every perturbation): they agree with the sum, not with one branch.
encoder64 = make_encoder().double()  # the same initial weights, in float64
x1_64, x2_64 = x1.astype(np.float64), x2.astype(np.float64)
weight = encoder64[0].weight.data
picks = [tuple(int(v) for v in np.unravel_index(k, weight.shape))
         for k in np.argsort(-np.abs(both[0]).ravel())[:8]]  # the 8 largest gradient entries


def loss64() -> float:
    with no_grad():
        return loss_fn(encoder64(x1_64), encoder64(x2_64), target)


numeric = numerical_gradient(loss64, weight, picks, eps=1e-6)
for name, grad in (("both branches", both[0]), ("branch 1 only", branch1[0]), ("branch 2 only", branch2[0])):
    analytic = np.array([grad[p] for p in picks])
    print(f"finite differences vs {name}: max relative error "
          f"{np.abs(analytic - numeric).max() / np.abs(numeric).max():.1e}")
# --8<-- [end:fd]

# --8<-- [start:train]
encoder = make_encoder()
encoder.requires_input_grad(False)  # the images need no gradient: the first Linear skips dx
optimizer = AdamW(encoder.parameters(), lr=1e-3, weight_decay=1e-4)
embed = embed_with(encoder)
before = cosines(embed, x_test, test_pairs)
accuracy = {"pixels": pair_accuracy(lambda x: x), "untrained": pair_accuracy(embed)}
rng = np.random.default_rng(0)
losses = []
start = time.perf_counter()
for epoch in range(EPOCHS):
    i, j, target = make_pairs(y_train, PAIRS_PER_EPOCH, rng)  # fresh pairs every epoch
    total = 0.0
    for s in range(0, PAIRS_PER_EPOCH, BATCH):
        b = slice(s, s + BATCH)
        z1, z2 = encoder(x_train[i[b]]), encoder(x_train[j[b]])
        total += loss_fn(z1, z2, target[b]) * len(target[b])
        dz1, dz2 = loss_fn.backward()
        encoder.backward(dz2)
        encoder.backward(dz1)
        optimizer.step()
        optimizer.zero_grad()
    losses.append(total / PAIRS_PER_EPOCH)
    print(f"epoch {epoch + 1}: loss {losses[-1]:.4f}, test pair accuracy {pair_accuracy(embed):.4f}")
seconds = time.perf_counter() - start
accuracy["trained"] = pair_accuracy(embed)
print(f"{EPOCHS} epoch(s) of {PAIRS_PER_EPOCH} pairs in {seconds:.1f} s")
# --8<-- [end:train]

# --8<-- [start:plot]
after = cosines(embed, x_test, test_pairs)
same = test_pairs[2] == 1
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
bins = np.linspace(-1, 1, 61)
for ax, cos, title in ((axes[0], before, "untrained encoder"), (axes[1], after, "trained encoder")):
    ax.hist(cos[same], bins=bins, alpha=0.6, density=True, label="same class")
    ax.hist(cos[~same], bins=bins, alpha=0.6, density=True, label="different classes")
    ax.axvline(MARGIN, color="k", lw=0.8, ls="--", label=f"margin {MARGIN}")
    ax.set(xlabel="cosine similarity of the embeddings", title=title)
    ax.grid(alpha=0.3)
axes[0].set_ylabel("density (held-out test pairs)")
axes[1].legend()
fig.tight_layout()
fig.savefig(FIGURES / "04_siamese_similarity.png", dpi=100)
# --8<-- [end:plot]
print("pair accuracy: pixels {pixels:.4f}, untrained {untrained:.4f}, trained {trained:.4f}".format(**accuracy))
