"""Crash-safe training: non-finite losses, checkpoint saves killed at every point, full disks.

tests/train covers a NaN loss (raise/skip/TerminateOnNaN) and one save killed mid-write.
Here: +inf as well as NaN, and a Trainer that stays usable after the error; a save killed
with SIGKILL at *every* step of the save (each file write, fsync and rename, counted
deterministically) and at random moments of a busy save loop, both for a new checkpoint
folder and for one overwriting the folder ``latest`` names; and ENOSPC at each write.
After every kill the run folder's ``latest`` checkpoint loads and is self-consistent.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.core import CheckpointError, Module, Param, manual_seed
from plait.layers import Linear, MSELoss
from plait.optim import SGD
from plait.train import TerminateOnNaN, Trainer, load_checkpoint
from plait.train import checkpoint as ck
from plait.train.trainer import NonFiniteLossError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# -- non-finite losses --------------------------------------------------------------------------
class BlowsUpAt(Module):
    """y = x W; the output turns into ``value`` from global call ``at`` on."""

    def __init__(self, at: int, value: float) -> None:
        super().__init__()
        self.w = Param(np.eye(2, dtype=np.float32))
        self.calls, self.at, self.value = 0, at, value

    def forward(self, x):
        self.calls += 1
        self.save_for_backward(x)
        y = x @ self.w.data
        return y + np.float32(self.value) if self.calls == self.at else y

    def backward(self, dy):
        x = self.saved()
        self.w.accumulate(x.T @ dy)
        return dy @ self.w.data.T


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_loss_names_the_step_and_the_trainer_stays_usable(value, tmp_path):
    x = np.ones((32, 2), np.float32)
    model = BlowsUpAt(at=3, value=value)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01))
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 3 \(global step 3\)"):
        trainer.fit((x, x), epochs=1, batch_size=8, shuffle=False, verbose=False)
    assert np.isfinite(model.w.data).all() and model.w.grad is None or np.all(model.w.grad == 0)
    trainer.fit((x, x), epochs=1, batch_size=8, shuffle=False, verbose=False)  # goes on cleanly
    assert np.isfinite(model.w.data).all()
    trainer.save_checkpoint(tmp_path / "after")
    assert np.array_equal(load_checkpoint(tmp_path / "after").model_state["w"], model.w.data)


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_terminate_on_nan_names_the_step(value, capsys):
    x = np.ones((32, 2), np.float32)
    model = BlowsUpAt(at=2, value=value)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01), callbacks=[TerminateOnNaN()])
    trainer.fit((x, x), epochs=2, batch_size=8, shuffle=False, verbose=False)
    assert trainer.stop_training and "batch 2" in (trainer.stop_reason or capsys.readouterr().out)
    assert np.isfinite(model.w.data).all()


# -- SIGKILL during saves ------------------------------------------------------------------------
def _state(step: int, size: int = 64) -> tuple[dict, dict, dict]:
    model = {"w": np.full((size, size), step, np.float32), "b": np.full(size, step, np.float32)}
    optim = {"state": {0: {"momentum_buffer": np.full((size, size), -step, np.float32)}},
             "param_groups": [{"lr": 0.1, "params": [0]}]}
    return model, optim, {"step": step, "epoch": step}


def _save(root: Path, name: str, step: int, size: int = 64) -> None:
    ck.save_checkpoint(root / name, *_state(step, size))
    ck.write_pointer(root, name)


def _assert_latest_is_consistent(root: Path, steps: set[int]) -> int:
    """The run's latest checkpoint loads; its model, optimizer and trainer state agree."""
    loaded = load_checkpoint(root)
    step = loaded.trainer_state["step"]
    assert step in steps, f"latest checkpoint holds step {step}, expected one of {steps}"
    assert np.all(loaded.model_state["w"] == step) and np.all(loaded.model_state["b"] == step)
    assert np.all(loaded.optimizer_state["state"][0]["momentum_buffer"] == -step)
    return step


def _fork(child: Any) -> int:
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            child()
        finally:
            os._exit(0)
    return pid


_INSTRUMENTED = [("save_safetensors", ck), ("atomic_write_text", ck), ("_fsync_dir", ck), ("_digest", ck),
                 ("replace", os), ("rmtree", ck.shutil), ("mkdtemp", ck.tempfile)]


def _count_points(root: Path, name: str) -> int:
    """How many instrumented calls one save + pointer write makes (run in a child)."""
    counter = root / "count"

    def child() -> None:
        calls = [0]
        for attr, owner in _INSTRUMENTED:
            real = getattr(owner, attr)

            def counted(*a, _real=real, **k):
                calls[0] += 1
                return _real(*a, **k)

            setattr(owner, attr, counted)
        _save(root, name, 2)
        counter.write_text(str(calls[0]))

    _, status = os.waitpid(_fork(child), 0)
    assert status == 0
    n = int(counter.read_text())
    counter.unlink()
    return n


def _kill_at(point: int, root: Path, name: str) -> None:
    """Save step 2 into ``name``; SIGKILL self just before (even) or after (odd) instrumented call."""
    calls = [0]

    def maybe_die() -> None:
        calls[0] += 1
        if calls[0] == point:
            os.kill(os.getpid(), signal.SIGKILL)

    for attr, owner in _INSTRUMENTED:
        real = getattr(owner, attr)

        def killing(*a, _real=real, **k):
            maybe_die()
            out = _real(*a, **k)
            maybe_die()
            return out

        setattr(owner, attr, killing)
    _save(root, name, 2)


@pytest.mark.parametrize("overwrite", [False, True], ids=["new folder", "overwrite latest"])
def test_save_killed_at_every_step_leaves_a_loadable_latest(tmp_path, overwrite):
    probe = tmp_path / "probe"
    _save(probe, "epoch-0001", 1)
    points = 2 * _count_points(probe, "epoch-0001" if overwrite else "epoch-0002")
    assert points >= 10
    outcomes = set()
    for point in range(1, points + 1):
        root = tmp_path / f"run-{point}"
        _save(root, "epoch-0001", 1)
        pid = _fork(lambda root=root, point=point: _kill_at(point, root, "epoch-0001" if overwrite else "epoch-0002"))
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"point {point} was not reached"
        outcomes.add(_assert_latest_is_consistent(root, {1, 2}))
        ck.remove_stale_temporaries(root)  # what the next run does first
        _assert_latest_is_consistent(root, {1, 2})
        _save(root, "epoch-0003", 3)  # and saving goes on
        assert _assert_latest_is_consistent(root, {3}) == 3
    assert outcomes == {1, 2}  # early kills keep step 1; a kill after the pointer write keeps step 2


@pytest.mark.parametrize("overwrite", [False, True], ids=["new folders", "same folder"])
def test_saves_killed_at_random_moments(tmp_path, overwrite):
    rng = random.Random(1234)
    for trial in range(10):
        root = tmp_path / f"run-{trial}"
        _save(root, "epoch-0000", 0, size=256)
        ready = root / "ready"

        def child(root=root, ready=ready) -> None:
            ready.touch()
            for step in range(1, 10_000):
                _save(root, "same" if overwrite else f"epoch-{step:04d}", step, size=256)

        pid = _fork(child)
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.12))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        _assert_latest_is_consistent(root, set(range(10_000)))
        ck.remove_stale_temporaries(root)
        _assert_latest_is_consistent(root, set(range(10_000)))


# -- full disk ---------------------------------------------------------------------------------------
def _trainer() -> Trainer:
    manual_seed(0)
    model = Linear(3, 2)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1, momentum=0.9), seed=0)
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    trainer.fit((x, x[:, :2]), epochs=1, batch_size=4, verbose=False)
    return trainer


class _FullDisk:
    """Wraps a file so that writing fails with ENOSPC once ``budget`` bytes are written."""

    def __init__(self, f: Any, budget: int) -> None:
        self._f, self._budget = f, budget

    def write(self, data: Any) -> int:
        self._budget -= len(data)
        if self._budget < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullDisk:
        self._f.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._f.__exit__(*exc)


@pytest.mark.parametrize("where", ["model file", "optimizer file", "trainer state", "fsync", "mkdir"])
def test_full_disk_fails_the_save_cleanly_and_keeps_the_training_state(tmp_path, monkeypatch, where):
    trainer = _trainer()
    root = tmp_path / "run"
    trainer.save_checkpoint(root / "epoch-0001")
    ck.write_pointer(root, "epoch-0001")
    weights = {k: v.copy() for k, v in trainer.model.state_dict().items()}
    optim = trainer.optimizer.state_dict()

    import plait.core.files as files

    real_fdopen, opened = os.fdopen, []

    def fdopen(fd, mode="r", *a, **k):
        f = real_fdopen(fd, mode, *a, **k)
        opened.append(f)
        target = {"model file": 1, "optimizer file": 2, "trainer state": 3}.get(where)
        return _FullDisk(f, 10) if len(opened) == target else f

    if where == "fsync":
        monkeypatch.setattr(files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    elif where == "mkdir":
        monkeypatch.setattr(ck.tempfile, "mkdtemp", lambda **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    else:
        monkeypatch.setattr(files.os, "fdopen", fdopen)
    with pytest.raises(CheckpointError, match=r"epoch-0002.*(No space|ENOSPC|space left)") as err:
        trainer.save_checkpoint(root / "epoch-0002")
    assert isinstance(err.value.__cause__, OSError)
    monkeypatch.undo()

    assert sorted(p.name for p in root.iterdir()) == ["epoch-0001", "latest"]  # nothing half-written left
    assert load_checkpoint(root).path.name == "epoch-0001"
    for k, v in trainer.model.state_dict().items():  # the in-memory state is untouched ...
        assert np.array_equal(v, weights[k])
    assert trainer.optimizer.state_dict()["param_groups"] == optim["param_groups"]
    x = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)
    trainer.fit((x, x[:, :2]), epochs=1, batch_size=4, verbose=False)  # ... and training goes on
    trainer.save_checkpoint(root / "epoch-0002")  # once there is room again, the save works
    assert np.array_equal(load_checkpoint(root / "epoch-0002").model_state["weight"], trainer.model.weight.data)


# -- hostile checkpoint folders ----------------------------------------------------------------------
_junk = st.recursive(
    st.none() | st.booleans() | st.sampled_from([-1, 0, 1, 7, 2**70]) | st.floats() | st.text(max_size=4)
    | st.just({"__array__": "optimizer/nope"}) | st.just({"__items__": 5}) | st.just({"__tuple__": {"a": 1}}),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _tree_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _tree_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _tree_paths(v, (*prefix, i))
    return out


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "epoch-0001"
    _trainer().save_checkpoint(folder)
    return folder


def _load_both(folder: Path) -> None:
    """Reading and resuming: CheckpointError naming the folder, or success. Nothing else."""
    for load in (load_checkpoint, lambda f: _trainer().load_checkpoint(f)):
        try:
            load(folder)
        except CheckpointError as exc:
            assert folder.name in str(exc), exc


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_trainer_state(good_checkpoint, tmp_path, data):
    folder = tmp_path / "epoch-0001"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(good_checkpoint, folder)
    doc = json.loads((folder / ck.STATE_FILE).read_text())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        path = data.draw(st.sampled_from([p for p in _tree_paths(doc) if p]), label="path")
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = json.loads(json.dumps(data.draw(_junk, label="value")))
        if not isinstance(doc, dict) or not [p for p in _tree_paths(doc) if p]:
            break
    (folder / ck.STATE_FILE).write_text(json.dumps(doc))
    _reseal(folder)  # as a stranger's edited folder would be: past the checksum, into the validation
    _load_both(folder)


def _reseal(folder: Path) -> None:
    """Record the edited files' sizes and SHA-256 in the checkpoint's config.json."""
    import hashlib

    cfg = json.loads((folder / "config.json").read_text())
    cfg["files"] = {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                    for name in cfg["files"] for data in [(folder / name).read_bytes()]}
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"format": "plait-train-checkpoint", "version": ' + "9" * 5000 + "}",
                                  '{"a":' * 900 + "1" + "}" * 900, "\udcff"],
                         ids=["nesting bomb", "5000-digit number", "900 levels", "not UTF-8"])
def test_hostile_trainer_state_text(good_checkpoint, tmp_path, text):
    folder = tmp_path / "epoch-0001"
    shutil.copytree(good_checkpoint, folder)
    (folder / ck.STATE_FILE).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(CheckpointError, match="epoch-0001"):
        load_checkpoint(folder)
