"""Hostile checkpoint state: names and fields read from state files are checked when loaded.

A stranger's run folder can rewrite trainer_state.json *and* the SHA-256 record in
config.json (the checksums catch corruption and races, not intent), so every case below
re-seals the record after editing: what stops it is the validation, not the checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plait.core import CheckpointError, manual_seed
from plait.layers import Linear, MSELoss
from plait.optim import SGD
from plait.train import ModelCheckpoint, Trainer, load_checkpoint
from plait.train import checkpoint as ck


def reseal(folder: Path) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg["files"] = {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                    for name in cfg["files"] for data in [(folder / name).read_bytes()]}
    (folder / "config.json").write_text(json.dumps(cfg))


def _trainer(run: Path) -> Trainer:
    manual_seed(0)
    model = Linear(3, 2)
    return Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1), callbacks=[ModelCheckpoint(run, monitor="loss")],
                   seed=0)


_X = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def run_template(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("tpl") / "run"
    _trainer(run).fit((_X, _X[:, :2]), epochs=2, batch_size=4, verbose=False)
    return run


@pytest.fixture
def run(run_template, tmp_path) -> Path:
    out = tmp_path / "work" / "run"
    shutil.copytree(run_template, out, symlinks=True)
    return out


def _edit_state(run: Path, change) -> Path:
    folder = run / os.readlink(run / "latest")
    doc = json.loads((folder / ck.STATE_FILE).read_text())
    change(doc["trainer"])
    (folder / ck.STATE_FILE).write_text(json.dumps(doc))
    reseal(folder)
    return folder


def _resume(run: Path) -> None:
    _trainer(run).fit((_X, _X[:, :2]), epochs=4, batch_size=4, verbose=False, resume_from=run)


def _saved_list(value: Any):
    def change(state: dict) -> None:
        key = next(k for k in state["callbacks"] if "checkpoint" in k.lower())
        state["callbacks"][key]["saved"] = value

    return change


@pytest.mark.parametrize("name", ["../victim", "VICTIM_ABS", "a/../../victim", "..", ".hidden", "x" * 5000, "a\nb",
                                  "escape"])
def test_a_hostile_saved_list_never_reaches_rmtree(run, name):
    """Before: resuming pruned ``dirpath/<name>`` with shutil.rmtree, deleting ``victim`` outside the run."""
    victim = run.parent / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    if name == "VICTIM_ABS":
        name = str(victim)
    if name == "escape":  # a symbolic link inside the run folder that leads out of it
        (run / "escape").symlink_to(victim)
    _edit_state(run, _saved_list([name, "epoch-0001", "epoch-0002"]))
    with pytest.raises(CheckpointError, match=r"trainer_state.json.*saved|saved.*folder name|plain name|leading out"):
        _resume(run)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_unsealed_trainer_state_is_caught_by_the_checksum(run):
    folder = run / os.readlink(run / "latest")
    doc = json.loads((folder / ck.STATE_FILE).read_text())
    doc["trainer"]["epoch"] = 1
    (folder / ck.STATE_FILE).write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"trainer_state.json: size or SHA-256 differs"):
        load_checkpoint(run)


def _history(state: dict) -> dict:
    return next(v for k, v in state["callbacks"].items() if "history" in k.lower())


def _set(field: str, value: Any):
    def change(state: dict) -> None:
        target = state
        *path, last = field.split(".")
        for key in path:
            target = target[key]
        target[last] = value

    return change


FIELDS = {
    "negative epoch": (_set("epoch", -1), "trainer.epoch"),
    "huge step": (_set("step", 10**30), "trainer.step"),
    "infinite epoch": (_set("epoch", {"__float__": "inf"}), "trainer.epoch"),
    "fractional step": (_set("step", 2.5), "trainer.step"),
    "boolean skipped": (_set("skipped_batches", True), "trainer.skipped_batches"),
    "rng state out of range": (_set("global_rng.state.state", 2**130), "trainer.global_rng: field 'state.state'"),
    "rng state negative": (_set("global_rng.state.inc", -5), "trainer.global_rng: field 'state.inc'"),
    "rng of another generator": (_set("global_rng.bit_generator", "MT19937"), "trainer.global_rng: bit_generator"),
    "unknown key": (_set("evil", 1), "unknown key"),
    "progress sets any attribute": (_set("epoch_progress", {"loss_sum": 1.0, "count": 1,
                                                             "metrics": [{"__class__": 1}]}), "epoch_progress"),
    "history not numbers": (lambda s: _history(s).update(history={"loss": ["x", "y"]}), "History"),
    "5000-character metric name": (lambda s: _history(s).update(history={"l" * 5000: [1.0, 2.0]}), "History"),
}


@pytest.mark.parametrize("case", list(FIELDS))
def test_hostile_trainer_state_fields_name_the_file_and_field(run, case):
    change, field = FIELDS[case]
    if field == "History":
        assert any("history" in k.lower() for k in _state_keys(run))  # the trainer saves its History
    _edit_state(run, change)
    with pytest.raises(CheckpointError) as err:
        _resume(run)
    assert "trainer_state.json" in str(err.value) and field in str(err.value), err.value


def _state_keys(run: Path) -> list[str]:
    folder = run / os.readlink(run / "latest")
    return list(json.loads((folder / ck.STATE_FILE).read_text())["trainer"]["callbacks"])


@pytest.mark.parametrize("content", [b"\xff\xfe\x00", b"x" * 5000, b"../victim", b"/etc", b"", b"epoch-0001/.."],
                         ids=["not UTF-8", "5000 characters", "parent", "absolute", "empty", "separator"])
def test_hostile_text_pointers_are_refused(run, content):
    (run / "latest").unlink()
    (run / "latest").write_bytes(content)
    with pytest.raises(CheckpointError, match="latest"):
        load_checkpoint(run)


@pytest.mark.parametrize("target", ["../victim", "/tmp", "x" * 300])
def test_hostile_pointer_links_are_refused(run, target):
    (run.parent / "victim").mkdir()
    (run / "latest").unlink()
    (run / "latest").symlink_to(target)
    with pytest.raises(CheckpointError, match="latest"):
        load_checkpoint(run)


def test_a_fifo_pointer_is_refused_not_waited_on(run):
    (run / "latest").unlink()
    os.mkfifo(run / "latest")
    with pytest.raises(CheckpointError, match="expected a regular file"):
        load_checkpoint(run)


def test_a_genuine_run_still_resumes_and_prunes_to_the_default_bound(run):
    _resume(run)
    folders = sorted(p.name for p in run.iterdir() if p.is_dir() and not p.is_symlink())
    assert folders == ["epoch-0001", "epoch-0002", "epoch-0003", "epoch-0004"]
    trainer = _trainer(run)
    trainer.fit((_X, _X[:, :2]), epochs=9, batch_size=4, verbose=False, resume_from=run)
    folders = sorted(p.name for p in run.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(folders) <= 5 + 1 and "epoch-0009" in folders  # 5 kept, plus the best if older
    assert load_checkpoint(run).trainer_state["epoch"] == 9
