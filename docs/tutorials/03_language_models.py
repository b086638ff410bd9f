"""Tutorial 3: language models on tinyshakespeare, a character LSTM and a GPT on BPE tokens.

Train a byte-level BPE tokenizer, train both models with a hand-written loop, compare their
validation loss in nats per character (perplexity), and sample text. Run from the
repository root::

    python docs/tutorials/03_language_models.py path/to/tinyshakespeare.txt

The text path may also come from ``PLAIT_TUTORIAL_TEXT``. ``PLAIT_TUTORIAL_FAST=1`` uses a
slice of the text and a few steps (what CI runs); ``PLAIT_TUTORIAL_FIGURES=DIR`` writes the
figures to DIR instead of docs/tutorials/figures.
"""

# --8<-- [start:setup]
import math
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import plait.zoo as zoo
from plait.core import manual_seed, no_grad
from plait.layers import CrossEntropyLoss
from plait.optim import AdamW, clip_grad_norm_
from plait.tokenizers import ByteLevelBPETokenizer, CharTokenizer

FAST = os.environ.get("PLAIT_TUTORIAL_FAST") == "1"
FIGURES = Path(os.environ.get("PLAIT_TUTORIAL_FIGURES") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
TEXT = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLAIT_TUTORIAL_TEXT", "tinyshakespeare.txt"))
STEPS = 8 if FAST else 300         # optimizer steps per model
EVAL_EVERY = 4 if FAST else 50
BATCH, CONTEXT = (8, 32) if FAST else (16, 64)  # windows per step, tokens per window
# --8<-- [end:setup]

# --8<-- [start:data]
if not TEXT.is_file():
    raise SystemExit(f"no text file at {TEXT}: pass the path to tinyshakespeare.txt")
text = TEXT.read_text(encoding="utf-8")
if FAST:
    text = text[:100_000]
split = int(0.9 * len(text))
train_text, val_text = text[:split], text[split:]  # the last 10% is held out
print(f"{len(text):,} characters, {len(set(text))} distinct")
# --8<-- [end:data]

# --8<-- [start:tokenizers]
chars = CharTokenizer().fit([train_text, val_text])  # one id per character
bpe = ByteLevelBPETokenizer().train([train_text], vocab_size=512, show_progress=False)
tokenizers = {"char-lstm": chars, "gpt-nano (BPE 512)": bpe}
data = {}
for name, tok in tokenizers.items():
    train_ids = np.asarray(tok.encode(train_text), dtype=np.int64)
    val_ids = np.asarray(tok.encode(val_text), dtype=np.int64)
    data[name] = (train_ids, val_ids, len(val_text) / len(val_ids))  # characters per token
    print(f"{name}: vocabulary {tok.vocab_size}, {len(val_text) / len(val_ids):.2f} characters per token")
print("BPE pieces of 'ROMEO: What light':", [bpe.decode([i]) for i in bpe.encode("ROMEO: What light")])
# --8<-- [end:tokenizers]


# --8<-- [start:helpers]
def batch_of_windows(ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BATCH random windows: inputs ids[s:s+CONTEXT], targets shifted by one token."""
    starts = rng.integers(0, len(ids) - CONTEXT - 1, BATCH)
    window = ids[starts[:, None] + np.arange(CONTEXT + 1)]
    return window[:, :-1], window[:, 1:]


def validation_loss(model, ids: np.ndarray, max_windows: int = 64) -> float:
    """Mean next-token cross entropy (nats per token) over non-overlapping validation windows."""
    n = min(max_windows, (len(ids) - 1) // CONTEXT)
    window = ids[np.arange(n)[:, None] * CONTEXT + np.arange(CONTEXT + 1)]
    loss_fn = CrossEntropyLoss()
    model.eval()
    with no_grad():
        logits = model(window[:, :-1])
        value = loss_fn(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))
    model.train()
    return value
# --8<-- [end:helpers]


# --8<-- [start:train]
def train(model, train_ids: np.ndarray, val_ids: np.ndarray, lr: float) -> list[tuple[int, float, float]]:
    """STEPS AdamW steps; returns (step, seconds, validation nats per token) every EVAL_EVERY steps."""
    loss_fn = CrossEntropyLoss()
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(0)
    curve, seconds = [(0, 0.0, validation_loss(model, val_ids))], 0.0
    for step in range(1, STEPS + 1):
        start = time.perf_counter()
        x, y = batch_of_windows(train_ids, rng)
        logits = model(x)                                      # (B, T, V)
        vocab = logits.shape[-1]
        loss_fn(logits.reshape(-1, vocab), y.reshape(-1))      # every position predicts the next token
        model.backward(loss_fn.backward().reshape(logits.shape))
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        seconds += time.perf_counter() - start
        if step % EVAL_EVERY == 0:
            curve.append((step, seconds, validation_loss(model, val_ids)))
    return curve


models = {
    "char-lstm": lambda v: zoo.create("char-lstm", vocab_size=v),
    "gpt-nano (BPE 512)": lambda v: zoo.create("gpt-nano", vocab_size=v, context_length=CONTEXT),
}
curves, trained = {}, {}
for name, make in models.items():
    train_ids, val_ids, chars_per_token = data[name]
    manual_seed(0)
    model = make(tokenizers[name].vocab_size)
    curves[name] = train(model, train_ids, val_ids, lr=3e-3)
    trained[name] = model
    nats = curves[name][-1][2] / chars_per_token  # per token -> per character
    print(f"{name}: {model.num_parameters():,} parameters, {STEPS} steps in {curves[name][-1][1]:.1f} s, "
          f"validation {curves[name][-1][2]:.3f} nats/token = {nats:.3f} nats/char "
          f"(perplexity {math.exp(curves[name][-1][2]):.1f} per token, {math.exp(nats):.2f} per char)")
# --8<-- [end:train]

# --8<-- [start:sample]
for name, model in trained.items():
    tok = tokenizers[name]
    prompt = np.asarray(tok.encode("ROMEO:\n"), dtype=np.int64)
    ids = zoo.generate(model, prompt, max_new_tokens=120 if name.startswith("char") else 40,
                       temperature=0.8, top_k=20, seed=0)
    print(f"--- {name} sample ---\n{tok.decode(ids.tolist())}\n")
# --8<-- [end:sample]

# --8<-- [start:plot]
fig, (ax_step, ax_time) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for name, curve in curves.items():
    per_char = [c[2] / data[name][2] for c in curve]
    ax_step.plot([c[0] for c in curve], per_char, "o-", label=name)
    ax_time.plot([c[1] for c in curve], per_char, "o-", label=name)
ax_step.set(xlabel="optimizer step", ylabel="validation nats per character")
ax_time.set(xlabel="training seconds")
for ax in (ax_step, ax_time):
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle("tinyshakespeare: validation loss per character")
fig.tight_layout()
fig.savefig(FIGURES / "03_lm_validation.png", dpi=100)
# --8<-- [end:plot]
print("validation nats per character: " + ", ".join(f"{n} {c[-1][2] / data[n][2]:.3f}" for n, c in curves.items()))
