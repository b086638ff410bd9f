"""Installing pieces into fresh virtual environments: core alone, then layers; core + layers + zoo from
the checkout's folders; and zoo from one folder of wheels built by hatch (nothing else comes along)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_core_alone_then_layers(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")

    def pip_install(*paths: Path) -> None:
        subprocess.run([py, "-m", "pip", "install", "-q", *map(str, paths)], check=True, timeout=600)

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=120)

    pip_install(ROOT / "packages" / "core")
    ok = run("import plait.core; from plait.core import registry; print(registry.initializers.names()[:2])")
    assert ok.returncode == 0, ok.stderr
    missing = run("import plait.layers")
    assert missing.returncode != 0 and "ModuleNotFoundError" in missing.stderr

    pip_install(ROOT / "packages" / "layers")
    added = run("import plait.layers; from plait.core import registry; print('linear' in registry.layers.names())")
    assert added.returncode == 0 and added.stdout.strip() == "True", added.stderr


def _venv(path: Path) -> str:
    venv.EnvBuilder(with_pip=True).create(path)
    return str(path / "bin" / "python")


def _installed(py: str) -> set[str]:
    out = subprocess.run([py, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True,
                         timeout=120)
    import json

    return {p["name"] for p in json.loads(out.stdout) if p["name"].startswith("plait-")}


_ZOO_WORKS = ("import numpy as np, plait.zoo as zoo\n"
              "m = zoo.create('lenet5'); print(m(np.zeros((1, 1, 28, 28), np.float32)).shape)")


@pytest.mark.slow
def test_pieces_install_from_the_checkout_folders(tmp_path):
    """The README's command: pip install ./packages/core ./packages/layers ./packages/zoo."""
    py = _venv(tmp_path / "venv")
    folders = [str(ROOT / "packages" / p) for p in ("core", "layers", "zoo")]
    subprocess.run([py, "-m", "pip", "install", "-q", *folders], check=True, timeout=600)
    assert _installed(py) == {"plait-core", "plait-layers", "plait-zoo"}
    out = subprocess.run([py, "-c", _ZOO_WORKS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "(1, 10)", out.stderr
    plait = str(tmp_path / "venv" / "bin" / "plait")
    missing = subprocess.run([plait, "train", "lenet5"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert "pip install plait-train; from a checkout: pip install ./packages/train" in missing.stderr


@pytest.mark.slow
def test_one_dist_folder_installs_only_what_zoo_needs(tmp_path):
    """hatch build -a -t wheel DIST, then pip install --find-links DIST plait-zoo."""
    dist = tmp_path / "dist"
    hatch = shutil.which("hatch")
    if hatch:
        env = {k: v for k, v in os.environ.items() if k not in ("HATCH_ENV_ACTIVE", "VIRTUAL_ENV")}  # not `hatch test`'s
        subprocess.run([hatch, "build", "-a", "-t", "wheel", str(dist)], cwd=ROOT, check=True, timeout=600,
                       capture_output=True, env=env)
    else:  # the same wheels, built by pip
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                        *[str(p) for p in sorted((ROOT / "packages").iterdir())]], check=True, timeout=600)
    wheels = sorted(p.name.split("-")[0] for p in dist.glob("*.whl"))
    assert wheels == ["plait_core", "plait_layers", "plait_optim", "plait_tokenizers", "plait_train", "plait_zoo"]
    py = _venv(tmp_path / "venv")
    subprocess.run([py, "-m", "pip", "install", "-q", "--find-links", str(dist), "plait-zoo"], check=True, timeout=600)
    assert _installed(py) == {"plait-core", "plait-layers", "plait-zoo"}
    out = subprocess.run([py, "-c", _ZOO_WORKS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "(1, 10)", out.stderr
