"""SIGKILL during saves, and loads racing saves: the path the user gave always loads, whole.

Three saves are attacked: ``plait.zoo.save`` (a model folder with its tokenizer), a
tokenizer's own ``save`` (one file), and a checkpoint overwritten in place (plus its
``latest`` link). Each is killed

* at random instants of a busy save loop (a forked child per trial, >= 50 trials each), and
* deterministically just before and just after every rename, exchange, fsync, temporary
  creation and removal of one save (also with the fallback swap used where the system has
  no ``RENAME_EXCHANGE``);

after every kill the path loads, to exactly the old or the new state (weights, metadata
and tokenizer of one save), and the next save removes what the killed one left behind.
Then one process overwrites a model folder and a checkpoint in a loop while this one loads
them: every load is a consistent pair or a PlaitError, never a mixed pair or another error.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import plait.core.files as files
from plait.core import PlaitError, load_model, load_model_tokenizer, registry
from plait.core.model_folder import read_model_folder
from plait.train import checkpoint as ck

zoo = pytest.importorskip("plait.zoo")



@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch):
    """fsync guards against power loss, which a SIGKILL does not simulate (the page cache survives);
    stubbing it keeps the suite fast. The kill points just before and after each fsync remain."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def _tokenizer(k: int):
    return registry.tokenizers.get("char")("".join(chr(0x100 + i) for i in range(1 + k)))


def _k_of_tokenizer(tok) -> int:
    return len(tok.get_vocab()) - 1


class Model:
    """``zoo.save`` of an MLP whose every weight is ``k``, with metadata step k and tokenizer k."""

    def __init__(self) -> None:
        self.model = zoo.create("mlp", sizes=[4, 8, 3])

    def save(self, path: Path, k: int) -> None:
        for p in self.model.parameters():
            p.data.fill(k)
        zoo.save(self.model, path, metadata={"step": k}, tokenizer=_tokenizer(k))

    @staticmethod
    def check(path: Path, racing: bool = False) -> int:
        config, weights = read_model_folder(path)  # one load: config.json and the weights it verified
        k = config["metadata"]["step"]
        assert all(np.all(w == k) for w in weights.values()), "config and weights of two saves"
        model, tok = zoo.load(path), load_model_tokenizer(path)  # later loads: the same save unless racing
        later = next(iter(model.parameters())).data.flat[0]
        assert all(np.all(p.data == later) for p in model.parameters()), "weights of two saves"
        assert (later >= k and _k_of_tokenizer(tok) >= k) if racing else (later == k == _k_of_tokenizer(tok))
        return k


class Tokenizer:
    """A tokenizer's own ``save`` (one JSON file) of vocabulary k."""

    def save(self, path: Path, k: int) -> None:
        _tokenizer(k).save(path)

    @staticmethod
    def check(path: Path) -> int:
        return _k_of_tokenizer(registry.tokenizers.get("char").load(path))


class Checkpoint:
    """A checkpoint overwritten in place (``run/same``) and its ``latest`` link."""

    def __init__(self) -> None:
        self.desc = zoo.create("mlp", sizes=[4, 8, 3])
        self.shapes = {k: v.shape for k, v in self.desc.state_dict().items()}

    def save(self, root: Path, k: int) -> None:
        model = {n: np.full(s, k, np.float32) for n, s in self.shapes.items()}
        optim = {"state": {0: {"m": np.full(5, -k, np.float32)}}, "param_groups": [{"lr": 0.1, "params": [0]}]}
        from plait.core import describe_model

        ck.save_checkpoint(root / "same", model, optim, {"step": k, "epoch": k},
                           model_description=describe_model(self.desc))
        ck.write_pointer(root, "same")

    @staticmethod
    def check(root: Path, racing: bool = False) -> int:
        loaded = ck.load_checkpoint(root)
        k = loaded.trainer_state["step"]
        assert all(np.all(v == k) for v in loaded.model_state.values()), "model of another save"
        assert np.all(loaded.optimizer_state["state"][0]["m"] == -k), "optimizer of another save"
        model = load_model(root / "latest")  # the checkpoint opens as a model folder too
        later = next(iter(model.parameters())).data.flat[0]
        assert all(np.all(p.data == later) for p in model.parameters()), "weights of two saves"
        assert later >= k if racing else later == k
        return k


KINDS = {"zoo.save": Model, "tokenizer save": Tokenizer, "checkpoint overwrite": Checkpoint}


def _target(tmp: Path, kind: str) -> Path:
    return tmp / ("tok.json" if kind == "tokenizer save" else "m")


def _fork(child: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 0
        try:
            child()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


def _no_leftovers(path: Path) -> None:
    hidden = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert not hidden, f"temporaries left behind: {hidden}"


# -- random instants ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_sigkill_at_random_instants_leaves_the_old_or_new_state(tmp_path, kind):
    saver = KINDS[kind]()
    rng = random.Random(f"crash-{kind}")
    base = tmp_path / "probe"
    base.mkdir()
    start = time.perf_counter()
    for k in range(3):
        saver.save(_target(base, kind), k)
    one_save = (time.perf_counter() - start) / 3
    seen = set()
    work = tmp_path / "run"
    work.mkdir()
    path = _target(work, kind)
    saver.save(path, 0)
    last = 0
    for trial in range(50):
        r, w = os.pipe()

        def child(w=w, first=last + 1) -> None:
            os.write(w, b"x")
            k = first
            while True:
                saver.save(path, k)
                k += 1

        pid = _fork(child)
        os.close(w)
        os.read(r, 1)  # the writer runs
        os.close(r)
        time.sleep(rng.uniform(0, 1.5 * one_save))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        k = saver.check(path)  # the state before the kill, or one the child completed
        assert k >= last, f"trial {trial}: went back from {last} to {k}"
        seen.add(k > last)
        last = k
        if trial % 10 == 9:  # the next save cleans what the killed one left
            last += 1
            saver.save(path, last)
            assert saver.check(path) == last
            _no_leftovers(path)
    assert seen == {True, False}  # some kills kept the old state, some came after a completed save


# -- every step of one save, deterministically ----------------------------------------------------
_STEPS = [(files, "exchange"), (os, "rename"), (os, "replace"), (os, "fsync"), (os, "symlink"), (shutil, "rmtree"),
          (tempfile, "mkdtemp"), (tempfile, "mkstemp")]


def _instrument(on_call: Callable[[], None]) -> None:
    for owner, attr in _STEPS:
        real = getattr(owner, attr)

        def wrapped(*a, _real=real, **kw):
            on_call()
            out = _real(*a, **kw)
            on_call()
            return out

        setattr(owner, attr, wrapped)


def _count_points(saver, path: Path, counter: Path, fallback: bool) -> int:
    def child() -> None:
        calls = [0]
        if fallback:
            files.exchange = lambda a, b: False
        _instrument(lambda: calls.__setitem__(0, calls[0] + 1))
        saver.save(path, 2)
        counter.write_text(str(calls[0]))

    _, status = os.waitpid(_fork(child), 0)
    assert status == 0
    return int(counter.read_text())


@pytest.mark.parametrize("kind, fallback", [(k, False) for k in KINDS] + [("zoo.save", True)],
                         ids=[*KINDS, "zoo.save with the fallback swap"])
def test_sigkill_at_every_step_leaves_the_old_or_new_state(tmp_path, kind, fallback):
    saver = KINDS[kind]()
    probe = tmp_path / "probe"
    probe.mkdir()
    saver.save(_target(probe, kind), 1)
    points = _count_points(saver, _target(probe, kind), tmp_path / "count", fallback)
    assert points >= 6
    outcomes = set()
    for point in range(1, points + 1):
        work = tmp_path / f"p{point}"
        work.mkdir()
        path = _target(work, kind)
        saver.save(path, 1)

        def child(path=path, point=point) -> None:
            calls = [0]

            def maybe_die() -> None:
                calls[0] += 1
                if calls[0] == point:
                    os.kill(os.getpid(), signal.SIGKILL)

            if fallback:
                files.exchange = lambda a, b: False
            _instrument(maybe_die)
            saver.save(path, 2)

        _, status = os.waitpid(_fork(child), 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"point {point} not reached"
        outcomes.add(saver.check(path))
        saver.save(path, 3)  # the next save works and cleans up
        assert saver.check(path) == 3
        _no_leftovers(path)
        shutil.rmtree(work)
    assert outcomes == {1, 2}


# -- loads racing saves ---------------------------------------------------------------------------
def test_loads_racing_saves_see_a_consistent_pair_or_a_plait_error(tmp_path):
    model_saver, ckpt_saver = Model(), Checkpoint()
    folder, run = tmp_path / "m", tmp_path / "run"
    model_saver.save(folder, 0)
    ckpt_saver.save(run, 0)
    stop = tmp_path / "stop"

    def writer() -> None:
        k = 1
        while not stop.exists():
            model_saver.save(folder, k)
            ckpt_saver.save(run, k)
            k += 1

    pid = _fork(writer)
    ok = {"model": 0, "checkpoint": 0}
    refused = {"model": 0, "checkpoint": 0}
    latest = {"model": 0, "checkpoint": 0}
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            for name, check, path in (("model", Model.check, folder), ("checkpoint", Checkpoint.check, run)):
                try:
                    k = check(path, racing=True)
                except PlaitError:
                    refused[name] += 1
                    continue
                assert k >= latest[name], "went back to an older save"
                latest[name] = k
                ok[name] += 1
    finally:
        stop.touch()
        _, status = os.waitpid(pid, 0)
    assert status == 0, "the writer failed"
    print(f"racing loads: consistent {ok}, refused with a PlaitError {refused}, last save seen {latest}")
    assert min(ok.values()) >= 10, (ok, refused)
    assert min(latest.values()) >= 1, latest  # the loads really overlapped saves
