"""Tutorial 7: porting a PyTorch script to Plait, then loading torch and GPT-2 weights.

A small PyTorch CNN training script on scikit-learn's 8x8 digits and its Plait port, line
for line, trained from the same initial weights on the same batches (the loss curves agree);
the torch weights loaded into the zoo's ``cnn-digits`` through a safetensors file; and a
Hugging Face GPT-2 folder loaded with ``zoo.from_pretrained``, its logits and greedy tokens
checked against ``transformers``. Needs torch and transformers (test dependencies). Run from
the repository root::

    python docs/tutorials/07_porting_pytorch.py                   # a small random GPT-2, built here
    python docs/tutorials/07_porting_pytorch.py path/to/gpt2      # a real GPT-2 folder (hf download gpt2)

``PLAIT_TUTORIAL_FAST=1`` trains for one epoch (what CI runs);
``PLAIT_TUTORIAL_FIGURES=DIR`` writes the figures to DIR instead of docs/tutorials/figures.
"""

# --8<-- [start:setup]
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import safetensors.torch
import torch
import transformers
from torch import nn

import plait.zoo as zoo
from plait.core import no_grad
from plait.layers import Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, ReLU, Sequential
from plait.optim import AdamW, CosineAnnealingLR
from plait.train.datasets import load_digits

FAST = os.environ.get("PLAIT_TUTORIAL_FAST") == "1"
FIGURES = Path(os.environ.get("PLAIT_TUTORIAL_FIGURES") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
GPT2_FOLDER = Path(sys.argv[1]) if len(sys.argv) > 1 else None
EPOCHS, BATCH = (1, 64) if FAST else (20, 64)
_work = tempfile.TemporaryDirectory(prefix="plait-tutorial-7-")  # removed when the script ends
WORK = Path(_work.name)
torch.set_num_threads(1)  # compare like with like: one thread each (see the tutorials' index)
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

x_all, y_all = load_digits()  # (1797, 8, 8) float32 in [0, 1], int64 labels
x_all = x_all[:, None]        # (N, 1, 8, 8): channels first in both frameworks
order = np.random.default_rng(0).permutation(len(x_all))
train, test = order[:1400], order[1400:]
steps_per_epoch = -(-len(train) // BATCH)


def batches(epoch: int):
    """The same shuffled batches for both frameworks: index arrays into x_all."""
    perm = np.random.default_rng(epoch).permutation(train)
    return [perm[i:i + BATCH] for i in range(0, len(perm), BATCH)]
# --8<-- [end:setup]


# --8<-- [start:torch]
# ---- the PyTorch script ----
torch.manual_seed(0)
torch_model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10),
)
initial = {k: v.detach().clone() for k, v in torch_model.state_dict().items()}  # for the port
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.AdamW(torch_model.parameters(), lr=3e-3, weight_decay=0.01)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS * steps_per_epoch)
torch_losses = []
start = time.perf_counter()
for epoch in range(EPOCHS):
    torch_model.train()
    for idx in batches(epoch):
        xb, yb = torch.from_numpy(x_all[idx]), torch.from_numpy(y_all[idx])
        optimizer.zero_grad()
        loss = loss_fn(torch_model(xb), yb)
        loss.backward()
        optimizer.step()
        scheduler.step()
        torch_losses.append(loss.item())
torch_seconds = time.perf_counter() - start
torch_model.eval()
with torch.no_grad():
    torch_logits = torch_model(torch.from_numpy(x_all[test])).numpy()
# --8<-- [end:torch]

# --8<-- [start:plait]
# ---- the Plait port ----
model = Sequential(
    Conv2d(1, 16, 3, padding=1), ReLU(), MaxPool2d(2),
    Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
    Flatten(), Linear(32 * 2 * 2, 64), ReLU(), Linear(64, 10),
)
model.load_state_dict({k: v.numpy() for k, v in initial.items()})  # the same keys: "0.weight", ...
loss_fn = CrossEntropyLoss()
optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
scheduler = CosineAnnealingLR(optimizer, T_max=EPOCHS * steps_per_epoch)
plait_losses = []
start = time.perf_counter()
for epoch in range(EPOCHS):
    model.train()
    for idx in batches(epoch):
        xb, yb = x_all[idx], y_all[idx]                  # NumPy arrays, no conversion
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)                    # a Python float
        model.backward(loss_fn.backward())               # loss.backward(), written out
        optimizer.step()
        scheduler.step()
        plait_losses.append(loss)
plait_seconds = time.perf_counter() - start
model.eval()
with no_grad():
    plait_logits = model(x_all[test])
# --8<-- [end:plait]

# --8<-- [start:compare]
torch_losses, plait_losses = np.array(torch_losses), np.array(plait_losses)
gap = np.abs(torch_losses - plait_losses)
accuracy = {name: float((logits.argmax(axis=1) == y_all[test]).mean())
            for name, logits in (("torch", torch_logits), ("plait", plait_logits))}
print(f"{len(gap)} steps: loss gap first step {gap[0]:.1e}, largest {gap.max():.1e}; "
      f"training {torch_seconds:.1f} s (torch) and {plait_seconds:.1f} s (plait)")
print("test accuracy: torch {torch:.4f}, plait {plait:.4f}".format(**accuracy)
      + f"; same predictions: {np.array_equal(torch_logits.argmax(axis=1), plait_logits.argmax(axis=1))}"
      + f"; test logits max abs difference {np.abs(torch_logits - plait_logits).max():.1e}")
# --8<-- [end:compare]

# --8<-- [start:torch_weights]
# torch weights, saved the usual way, into the zoo architecture of the same shape
safetensors.torch.save_file(torch_model.state_dict(), WORK / "cnn.safetensors")
zoo_model = zoo.create("cnn-digits")  # conv 16 -> pool -> conv 32 -> pool -> 64 -> 10, 3x3 kernels
zoo.load_torch_state_dict(zoo_model, WORK / "cnn.safetensors")  # nn.Sequential keys, matched in order
zoo_model.eval()
with no_grad():
    zoo_logits = zoo_model(x_all[test])
print(f"zoo cnn-digits with the torch weights: logits max abs difference "
      f"{np.abs(zoo_logits - torch_logits).max():.1e}")
zoo.save(zoo_model, WORK / "cnn-digits")  # now a Plait model folder: zoo.load, plait predict, ...
# --8<-- [end:torch_weights]

# --8<-- [start:gpt2]
if GPT2_FOLDER is None:  # no real GPT-2 at hand: a small random one, written by transformers itself
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4)
    GPT2_FOLDER = WORK / "gpt2-small-random"
    transformers.GPT2LMHeadModel(config).save_pretrained(GPT2_FOLDER)  # config.json + model.safetensors
hf = transformers.GPT2LMHeadModel.from_pretrained(GPT2_FOLDER).eval()
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*tokenizer")  # the random folder has no tokenizer files
    gpt, tokenizer = zoo.from_pretrained(GPT2_FOLDER)
ids = np.random.default_rng(0).integers(0, hf.config.vocab_size, size=(2, 24))
with no_grad():
    ours = gpt(ids)
with torch.no_grad():
    theirs = hf(torch.from_numpy(ids)).logits.numpy()
print(f"GPT-2 ({gpt.num_parameters():,} parameters) logits vs transformers: max abs difference "
      f"{np.abs(ours - theirs).max():.1e} (largest logit {np.abs(theirs).max():.1f})")
prompt = np.asarray(tokenizer.encode("The meaning of life is") if tokenizer else [464, 3616, 286, 1204, 318])
greedy = zoo.generate(gpt, prompt, 20, temperature=0)
expected = hf.generate(torch.from_numpy(prompt)[None], max_new_tokens=20, do_sample=False,
                       pad_token_id=50256)[0].numpy()
print("greedy tokens equal transformers':", np.array_equal(greedy, expected))
if tokenizer is not None:
    print(repr(tokenizer.decode(greedy.tolist())))
# --8<-- [end:gpt2]

# --8<-- [start:plot]
fig, (ax_loss, ax_gap) = plt.subplots(1, 2, figsize=(9, 3.4))
steps = np.arange(1, len(gap) + 1)
ax_loss.plot(steps, torch_losses, lw=2.5, alpha=0.5, label="PyTorch")
ax_loss.plot(steps, plait_losses, "k", lw=0.8, label="Plait")
ax_loss.set(xlabel="step", ylabel="training loss (batch)", title="the same script in both frameworks", yscale="log")
ax_loss.legend()
ax_gap.semilogy(steps, np.maximum(gap, 1e-9), ".", ms=3)
ax_gap.set(xlabel="step", ylabel="|loss(torch) - loss(plait)|", title="the gap per step (0 drawn at 1e-9)")
for ax in (ax_loss, ax_gap):
    ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(FIGURES / "07_port_losses.png", dpi=100)
# --8<-- [end:plot]
