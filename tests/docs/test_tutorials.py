"""The tutorials under docs/tutorials run, in their small CI setting, and write their figures.

Each script runs in a subprocess with ``PLAIT_TUTORIAL_FAST=1`` and its figures sent to a
temporary folder (so a test run leaves the committed figures alone). Tutorials that need
Fashion-MNIST or tinyshakespeare skip when the data are absent (tinyshakespeare is looked
for in ``../shared/data`` beside the repository, or at ``$PLAIT_TUTORIAL_TEXT``); the
PyTorch-porting tutorial skips without torch and transformers (test dependencies).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = REPO / "docs" / "tutorials"
TEXT = Path(os.environ.get("PLAIT_TUTORIAL_TEXT") or REPO.parent / "shared" / "data" / "tinyshakespeare.txt")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _have_fashion_mnist() -> bool:
    """The four IDX files in the cache or the Debian package's folder (where the loader looks)."""
    from plait.train.datasets import data_home

    parts = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for folder in (data_home() / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist")):
        if all((folder / p).is_file() or (folder / f"{p}.gz").is_file() for p in parts):
            return True
    return False


def _needs_fashion_mnist() -> None:
    if not _have_fashion_mnist():
        pytest.skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist) or cached")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PLAIT_DEVICE"}  # the tutorials run on the CPU
    # tiny models: one BLAS thread is several times faster than two on a busy CI machine
    env.update(PLAIT_TUTORIAL_FAST="1", PLAIT_TUTORIAL_FIGURES=str(tmp_path), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def _run(script: str, tmp_path: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(TUTORIALS / script), *args], cwd=REPO, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _figures_written(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        path = tmp_path / name
        assert path.is_file(), f"{name} was not written"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, f"{name} is not a plausible PNG ({len(data)} bytes)"
        # the page embeds the committed copy of the same figure
        assert (TUTORIALS / "figures" / name).is_file(), f"docs/tutorials/figures/{name} is not committed"


def _metric(pattern: str, out: str) -> list[float]:
    found = re.search(pattern, out)
    assert found, f"{pattern!r} not in the output:\n{out[-2000:]}"
    return [float(g) for g in found.groups()]


def test_first_network(tmp_path):
    _needs_fashion_mnist()
    out = _run("01_first_network.py", tmp_path)
    loop, trainer = _metric(r"test accuracy: loop ([\d.]+) .*Trainer ([\d.]+)", out)
    assert loop > 0.5  # 10 classes: chance is 0.1
    assert loop == trainer  # same seed, same batches: Trainer runs exactly the hand-written loop
    _figures_written(tmp_path, ["01_mlp_curves.png"])


def test_cnn(tmp_path):
    _needs_fashion_mnist()
    out = _run("02_cnn.py", tmp_path)
    lenet, resnet = _metric(r"test accuracy: lenet5 ([\d.]+), resnet8-mnist ([\d.]+)", out)
    assert lenet > 0.2 and 0.0 <= resnet <= 1.0
    _figures_written(tmp_path, ["02_cnn_loss.png", "02_cnn_confusion.png"])


def test_language_models(tmp_path):
    if not TEXT.is_file():
        pytest.skip(f"tinyshakespeare is not at {TEXT}")
    out = _run("03_language_models.py", tmp_path, str(TEXT))
    lstm, gpt = _metric(r"validation nats per character: char-lstm ([\d.]+), gpt-nano \(BPE 512\) ([\d.]+)", out)
    assert 0.5 < lstm < 4.2 and 0.5 < gpt < 4.2  # 4.2 nats = a uniform guess over ~65 characters
    assert "--- char-lstm sample ---\nROMEO:" in out
    _figures_written(tmp_path, ["03_lm_validation.png"])


def test_language_models_without_text_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, str(TUTORIALS / "03_language_models.py"), str(tmp_path / "missing.txt")],
                          cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "no text file at" in proc.stderr and "Traceback" not in proc.stderr


def test_siamese(tmp_path):
    _needs_fashion_mnist()
    out = _run("04_siamese.py", tmp_path)
    (gap,) = _metric(r"shared gradient - \(branch 1 \+ branch 2\): max abs ([\d.e+-]+)", out)
    assert gap < 1e-6  # the two backwards of the shared encoder add up to the sum of its branches
    (both,) = _metric(r"finite differences vs both branches: max relative error ([\d.e+-]+)", out)
    (one,) = _metric(r"finite differences vs branch 1 only: max relative error ([\d.e+-]+)", out)
    assert both < 1e-4 < 0.05 < one  # the shared gradient is the derivative; one branch alone is not
    pixels, untrained, trained = _metric(r"pair accuracy: pixels ([\d.]+), untrained ([\d.]+), trained ([\d.]+)", out)
    assert trained > max(pixels, untrained) and trained > 0.7  # chance is 0.5
    _figures_written(tmp_path, ["04_siamese_similarity.png"])


def test_translation(tmp_path):
    out = _run("05_translation.py", tmp_path)
    (exact,) = _metric(r"sequence accuracy: ([\d.]+)", out)
    assert 0.0 <= exact <= 1.0
    _figures_written(tmp_path, ["05_translation_curves.png"])


def test_custom_layer_plugin(tmp_path):
    distribution = TUTORIALS / "06_plugin"
    before = sorted(str(p.relative_to(distribution)) for p in distribution.rglob("*"))
    out = _run("06_custom_layer_plugin.py", tmp_path)
    assert "installed plait-swish with" in out
    dx, dbeta = _metric(r"finite differences: dx max abs error ([\d.e+-]+), dbeta ([\d.e+-]+)", out)
    assert dx < 1e-7 and dbeta < 1e-7  # float64 central differences of the maths pair
    assert "gradcheck(BetaSwish): passed" in out
    assert "registry.layers['beta_swish']: BetaSwish from plait-swish" in out  # found through its entry point
    (accuracy,) = _metric(r"test accuracy ([\d.]+) after", out)
    assert accuracy > 0.5  # 10 digits: chance is 0.1
    assert "zoo.load in this process: same logits: True" in out
    assert "zoo.load in a fresh process: same logits: True" in out
    assert re.search(r"zoo.load without plait-swish: SerializationError: .*needs plait-swish", out)
    _figures_written(tmp_path, ["06_beta_swish.png"])
    # pip built in a copy: nothing (build/, *.egg-info, __pycache__) was added to the distribution's folder
    assert sorted(str(p.relative_to(distribution)) for p in distribution.rglob("*")) == before


def test_porting_pytorch(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    out = _run("07_porting_pytorch.py", tmp_path)
    (gap,) = _metric(r"loss gap first step [\d.e+-]+, largest ([\d.e+-]+)", out)
    assert gap < 1e-4  # the port trains like the torch script, step for step
    torch_acc, plait_acc = _metric(r"test accuracy: torch ([\d.]+), plait ([\d.]+)", out)
    assert torch_acc == plait_acc and "same predictions: True" in out
    (zoo_gap,) = _metric(r"zoo cnn-digits with the torch weights: logits max abs difference ([\d.e+-]+)", out)
    assert zoo_gap < 1e-4
    (gpt_gap,) = _metric(r"logits vs transformers: max abs difference ([\d.e+-]+)", out)
    assert gpt_gap < 1e-5
    assert "greedy tokens equal transformers': True" in out
    _figures_written(tmp_path, ["07_port_losses.png"])


def test_custom_layer_plugin_without_setuptools(tmp_path):
    """Where no build backend is installed, the tutorial writes the .dist-info itself, as its page says."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['setuptools'] = None  # find_spec -> None\n")
    env = _env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hide), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(TUTORIALS / "06_custom_layer_plugin.py")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "installed plait-swish with a hand-written .dist-info" in proc.stdout
    assert "registry.layers['beta_swish']: BetaSwish from plait-swish" in proc.stdout
    assert "zoo.load in a fresh process: same logits: True" in proc.stdout
