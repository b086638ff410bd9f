"""Installing only plait-core into a fresh virtual environment gives core and nothing else."""

from __future__ import annotations

import subprocess
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
