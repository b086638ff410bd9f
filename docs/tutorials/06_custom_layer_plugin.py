"""Tutorial 6: your own layer and plugin, from the maths to ``pip install`` to ``zoo.load``.

The distribution ``docs/tutorials/06_plugin`` (plait-swish) holds a layer, Swish with a
learnable beta, written as a maths pair, and a zoo preset that uses it. This script installs
it with pip into a temporary folder, checks its gradients with finite differences, finds it
in the registry, trains the preset on scikit-learn's digits, saves the model and loads it
back by name, in this process and in a fresh one. Run from the repository root::

    python docs/tutorials/06_custom_layer_plugin.py

``PLAIT_TUTORIAL_FAST=1`` trains for one epoch (what CI runs);
``PLAIT_TUTORIAL_FIGURES=DIR`` writes the figures to DIR instead of docs/tutorials/figures.
"""

# --8<-- [start:setup]
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import plait.zoo as zoo
from plait.core import manual_seed, no_grad, registry
from plait.core.testing import gradcheck, numerical_gradient
from plait.layers import CrossEntropyLoss
from plait.optim import AdamW
from plait.train import Trainer
from plait.train.datasets import load_digits

FAST = os.environ.get("PLAIT_TUTORIAL_FAST") == "1"
FIGURES = Path(os.environ.get("PLAIT_TUTORIAL_FIGURES") or Path(__file__).parent / "figures")
FIGURES.mkdir(parents=True, exist_ok=True)
DISTRIBUTION = Path(__file__).parent / "06_plugin"  # pyproject.toml + src/plait_swish
EPOCHS = 1 if FAST else 30
_work = tempfile.TemporaryDirectory(prefix="plait-tutorial-6-")  # removed when the script ends
WORK = Path(_work.name)
# --8<-- [end:setup]

# --8<-- [start:install]
# pip builds in a copy, so no build/ or *.egg-info folder lands in the source tree.
source, site = WORK / "plait-swish", WORK / "site-packages"
shutil.copytree(DISTRIBUTION, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
if importlib.util.find_spec("setuptools") is not None:
    # Offline: no index (--no-index), no dependencies (plait is installed), and the build
    # backend taken from this environment instead of a fresh one (--no-build-isolation).
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--no-build-isolation", "--target", str(site), str(source)], check=True)
    how = "pip"
else:
    # An environment without setuptools cannot build offline; what pip would write is the
    # package plus a .dist-info folder whose entry_points.txt names the plugin module.
    shutil.copytree(source / "src" / "plait_swish", site / "plait_swish")
    info = site / "plait_swish-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plait-swish\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[plait]\nswish = plait_swish.plugin\n")
    how = "a hand-written .dist-info (setuptools is not installed)"
sys.path.insert(0, str(site))  # what `pip install` into the environment itself would give
print(f"installed plait-swish with {how}: {sorted(p.name for p in site.iterdir() if not p.name.startswith('_'))}")
# --8<-- [end:install]

# --8<-- [start:gradcheck]
from plait_swish import BetaSwish, beta_swish_backward, beta_swish_forward  # noqa: E402 - installed just above

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 6)) * 3  # float64, spread over the curved part and both tails
beta = np.array([1.3])
dy = rng.standard_normal(x.shape)
y, ctx = beta_swish_forward(x, beta)
dx, dbeta = beta_swish_backward(dy, ctx, beta)


def objective() -> float:  # a scalar whose gradient is (dx, dbeta): sum(y * dy)
    return float((beta_swish_forward(x, beta)[0] * dy).sum())


every_entry = list(np.ndindex(x.shape))
error_dx = np.abs(dx - numerical_gradient(objective, x, every_entry, eps=1e-6).reshape(x.shape)).max()
error_dbeta = np.abs(dbeta - numerical_gradient(objective, beta, [(0,)], eps=1e-6)).max()
print(f"the pair against finite differences: dx max abs error {error_dx:.1e}, dbeta {error_dbeta:.1e}")
assert beta_swish_backward(dy, ctx, beta, need_dx=False)[0] is None  # no input gradient asked, none computed

gradcheck(BetaSwish(beta=1.3).double(), x)  # the layer, through Module's bookkeeping; raises on a mismatch
print("gradcheck(BetaSwish): passed")
# --8<-- [end:gradcheck]

# --8<-- [start:registry]
# the first lookup loads every installed plugin, plait-swish among them
print("registry.layers['beta_swish']:", registry.layers.get("beta_swish").__name__,
      "from", registry.layers.origin("beta_swish"))
print("zoo preset:", zoo.model_config("swish-mlp-digits"))
layer = registry.build({"type": "beta_swish", "beta": 2.0})  # built from a config, as a saved model is
# --8<-- [end:registry]

# --8<-- [start:train]
x_all, y_all = load_digits(flatten=True)  # 1,797 8x8 images from scikit-learn, (N, 64) in [0, 1]
order = np.random.default_rng(0).permutation(len(x_all))
train, test = order[:1400], order[1400:]
manual_seed(0)
model = zoo.create("swish-mlp-digits")  # Linear(64, 128) -> BetaSwish -> Linear(128, 10)
trainer = Trainer(model, CrossEntropyLoss(), AdamW(model.parameters(), lr=3e-3), metrics=["accuracy"], seed=0)
history = trainer.fit((x_all[train], y_all[train]), val=(x_all[test], y_all[test]), epochs=EPOCHS, batch_size=64,
                      verbose=False)
learned_beta = float(dict(model.named_parameters())["layers.1.beta"].data[0])
print(f"test accuracy {history.history['val_accuracy'][-1]:.4f} after {EPOCHS} epoch(s); learned beta {learned_beta:.3f}")
# --8<-- [end:train]

# --8<-- [start:save]
folder = zoo.save(model, WORK / "swish-mlp")  # config.json names "mlp" and "beta_swish"
model.eval()
with no_grad():
    expected = model(x_all[test])
same = zoo.load(folder)
with no_grad():
    print("zoo.load in this process: same logits:", np.array_equal(same(x_all[test]), expected))

# A fresh Python with plait-swish installed finds the layer by its name alone.
np.save(WORK / "x.npy", x_all[test])
check = ("import sys, numpy as np, plait.zoo as zoo; from plait.core import no_grad, PlaitError\n"
         "try:\n    model = zoo.load(sys.argv[1])\nexcept PlaitError as exc:\n"
         "    sys.exit(f'{type(exc).__name__}: {exc}')\n"
         "with no_grad():\n    np.save(sys.argv[2], model(np.load(sys.argv[3])))\n")
args = [sys.executable, "-c", check, str(folder), str(WORK / "fresh.npy"), str(WORK / "x.npy")]
env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
subprocess.run(args, env=env, check=True)
print("zoo.load in a fresh process: same logits:", np.array_equal(np.load(WORK / "fresh.npy"), expected))

# Without the plugin, the saved model cannot be built, and the error says which layer is missing.
without = subprocess.run(args, capture_output=True, text=True)
print("zoo.load without plait-swish:", without.stderr.strip().splitlines()[-1])
# --8<-- [end:save]

# --8<-- [start:plot]
fig, (ax_fn, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
z = np.linspace(-5, 5, 201)
for b in (0.5, 1.0, 4.0):
    ax_fn.plot(z, beta_swish_forward(z, np.array([b]))[0], lw=1, label=f"beta = {b:g}")
ax_fn.plot(z, beta_swish_forward(z, np.array([learned_beta]))[0], "k", lw=2, label=f"learned: {learned_beta:.2f}")
ax_fn.set(xlabel="x", ylabel="x sigmoid(beta x)", title="BetaSwish")
epochs = np.arange(1, EPOCHS + 1)
ax_acc.plot(epochs, history.history["accuracy"], label="training")
ax_acc.plot(epochs, history.history["val_accuracy"], label="test")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="swish-mlp-digits on 8x8 digits")
for ax in (ax_fn, ax_acc):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
fig.savefig(FIGURES / "06_beta_swish.png", dpi=100)
# --8<-- [end:plot]
