"""Tutorial 5: an encoder-decoder transformer learns a toy translation, reversing sequences.

The "source language" is a sequence of 4 to 10 digits; its "translation" is the same digits
in reverse order. Teacher-forced training with ``Trainer``, then greedy decoding with the
decoder's KV cache, scored by exact-sequence accuracy on held-out sequences. Run from the
repository root::

    python docs/tutorials/05_translation.py

``PLAIT_TUTORIAL_FAST=1`` trains on a small set for one epoch (what CI runs);
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
from plait.optim import AdamW, OneCycleLR
from plait.train import Callback, Trainer

FAST = os.environ.get("PLAIT_TUTORIAL_FAST") == "1"
FIGURES = Path(os.environ.get("PLAIT_TUTORIAL_FIGURES") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
PAD, BOS, EOS, FIRST_DIGIT = 0, 1, 2, 3  # ids 3..12 are the digits 0..9
VOCAB, MIN_LEN, MAX_LEN = 13, 4, 10
N_TRAIN, EPOCHS = (1024, 1) if FAST else (20_000, 4)
BATCH = 64
# --8<-- [end:setup]


# --8<-- [start:data]
def make_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, tgt_in, tgt_out), each (n, MAX_LEN + 1) ids padded with PAD.

    src = digits, EOS; tgt_in = BOS, reversed digits; tgt_out = reversed digits, EOS
    (the decoder input shifted by one: at every position it predicts the next token).
    """
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, n)
    digits = rng.integers(FIRST_DIGIT, VOCAB, (n, MAX_LEN))
    pos = np.arange(MAX_LEN + 1)
    inside = pos[None, :MAX_LEN] < lengths[:, None]
    src = np.full((n, MAX_LEN + 1), PAD)
    src[:, :MAX_LEN] = np.where(inside, digits, PAD)
    src[np.arange(n), lengths] = EOS
    # the reversed digits: position j holds digit length-1-j
    rev_index = np.clip(lengths[:, None] - 1 - pos[None, :MAX_LEN], 0, MAX_LEN - 1)
    reversed_digits = np.where(inside, np.take_along_axis(digits, rev_index, axis=1), PAD)
    tgt_out = np.full((n, MAX_LEN + 1), PAD)
    tgt_out[:, :MAX_LEN] = reversed_digits
    tgt_out[np.arange(n), lengths] = EOS
    tgt_in = np.concatenate([np.full((n, 1), BOS), tgt_out[:, :-1]], axis=1)
    tgt_in[tgt_in == EOS] = PAD  # nothing follows the last digit
    return src.astype(np.int64), tgt_in.astype(np.int64), tgt_out.astype(np.int64)


rng = np.random.default_rng(0)
train = make_pairs(N_TRAIN, rng)
test_src, _, test_out = make_pairs(500, np.random.default_rng(1))
print("source:", train[0][0], "\ntgt_in:", train[1][0], "\ntgt_out:", train[2][0])
# --8<-- [end:data]


# --8<-- [start:loss]
class TokenCrossEntropy:
    """Cross entropy of logits (B, T, V) against ids (B, T), padding ignored.

    A loss is anything with ``value = loss(pred, target)`` and ``dpred = loss.backward()``:
    this one reshapes to the (N, C) form of CrossEntropyLoss and back.
    """

    def __init__(self) -> None:
        self.ce = CrossEntropyLoss(ignore_index=PAD)
        self.shape = None

    def __call__(self, logits, target) -> float:
        self.shape = logits.shape
        return self.ce(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    def backward(self):
        return self.ce.backward().reshape(self.shape)
# --8<-- [end:loss]


# --8<-- [start:decode]
def sequence_accuracy(model, src: np.ndarray, expected: np.ndarray) -> float:
    """Share of sources whose greedy translation matches exactly, up to and including EOS."""
    out = zoo.greedy_decode(model, src, max_len=MAX_LEN + 1, bos_id=BOS, eos_id=EOS)[:, 1:]
    out = np.pad(out, ((0, 0), (0, MAX_LEN + 1 - out.shape[1])), constant_values=EOS)
    keep = expected != PAD  # compare the digits and the EOS, not the padding after it
    return float(((out == expected) | ~keep).all(axis=1).mean())


class SequenceAccuracy(Callback):
    """After each epoch, decode the held-out sources and record the exact-match accuracy."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.values.append(sequence_accuracy(self.model, test_src, test_out))
        print(f"epoch {epoch + 1}: loss {logs['loss']:.4f}, held-out sequence accuracy {self.values[-1]:.3f}")
# --8<-- [end:decode]


# --8<-- [start:train]
manual_seed(0)
model = zoo.create("seq2seq-mini", src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, d_model=64, ffn_dim=128,
                   num_heads=4, max_len=MAX_LEN + 1, pad_id=PAD)
optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
steps = EPOCHS * -(-N_TRAIN // BATCH)
scheduler = OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
accuracy = SequenceAccuracy()
trainer = Trainer(model, TokenCrossEntropy(), optimizer, scheduler=scheduler, scheduler_interval="step",
                  clip_grad_norm=1.0, callbacks=[accuracy], seed=0)
start = time.perf_counter()
history = trainer.fit(train, epochs=EPOCHS, batch_size=BATCH, verbose=False)
seconds = time.perf_counter() - start
print(f"{model.num_parameters():,} parameters, {EPOCHS} epoch(s) of {N_TRAIN} pairs in {seconds:.1f} s")
# --8<-- [end:train]

# --8<-- [start:examples]
examples = zoo.greedy_decode(model, test_src[:3], max_len=MAX_LEN + 1, bos_id=BOS, eos_id=EOS)
for src, out in zip(test_src[:3], examples):
    digits = "".join(str(t - FIRST_DIGIT) for t in src if t >= FIRST_DIGIT)
    answer = "".join(str(t - FIRST_DIGIT) for t in out[1:] if t >= FIRST_DIGIT)
    print(f"{digits:>10} -> {answer}")
# --8<-- [end:examples]

# --8<-- [start:plot]
fig, ax_loss = plt.subplots(figsize=(6.5, 3.4))
epochs = np.arange(1, len(accuracy.values) + 1)
ax_loss.plot(epochs, history.history["loss"], "o-", color="tab:blue", label="training loss")
ax_loss.set(xlabel="epoch", ylabel="token cross entropy (nats)", xticks=epochs)
ax_acc = ax_loss.twinx()
ax_acc.plot(epochs, accuracy.values, "s--", color="tab:orange", label="held-out sequence accuracy")
ax_acc.set(ylabel="exact-sequence accuracy", ylim=(0, 1.02))
fig.legend(loc="center right", bbox_to_anchor=(0.85, 0.5))
ax_loss.grid(alpha=0.3)
ax_loss.set_title("reversing 4-10 digits: seq2seq transformer")
fig.tight_layout()
fig.savefig(FIGURES / "05_translation_curves.png", dpi=100)
# --8<-- [end:plot]
print(f"sequence accuracy: {accuracy.values[-1]:.4f}")
