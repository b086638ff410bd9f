"""Saves on a full disk and under a umask: a PlaitError naming the path, old files intact,
nothing left behind; permissions as a plain open()/mkdir() would give them."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import plait.core.files as files
from plait.core import CheckpointError, PlaitError, SerializationError, describe_model, registry
from plait.train import checkpoint as ck

zoo = pytest.importorskip("plait.zoo")


def _model(k: float = 1.0):
    model = zoo.create("mlp", sizes=[3, 4, 2])
    for p in model.parameters():
        p.data.fill(k)
    return model


def _tok(chars: str = "abc"):
    return registry.tokenizers.get("char")(chars)


def _zoo_save(path: Path, k: float) -> None:
    zoo.save(_model(k), path, metadata={"k": k}, tokenizer=_tok("abc" if k == 1 else "abcd"))


def _tok_save(path: Path, k: float) -> None:
    _tok("abc" if k == 1 else "abcd").save(path)


def _ckpt_save(path: Path, k: float) -> None:
    model = _model(k)
    ck.save_checkpoint(path, model.state_dict(), {"state": {}, "param_groups": []}, {"step": int(k)},
                       model_description=describe_model(model))


SAVES = {"zoo.save": (_zoo_save, "m", SerializationError), "tokenizer save": (_tok_save, "tok.json", SerializationError),
         "checkpoint": (_ckpt_save, "ck", CheckpointError)}


class _FullDisk:
    def __init__(self, f: Any) -> None:
        self._f = f

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullDisk:
        self._f.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._f.__exit__(*exc)


def _snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("kind", list(SAVES))
@pytest.mark.parametrize("nth", [1, 2, 3])
def test_disk_full_at_any_file_raises_naming_the_path_and_keeps_the_old_state(tmp_path, monkeypatch, kind, nth):
    save, name, error = SAVES[kind]
    path = tmp_path / name
    save(path, 1)
    before = _snapshot(path)
    real, opened = os.fdopen, []

    def fdopen(fd, mode="r", *a, **k):
        f = real(fd, mode, *a, **k)
        if "w" in mode:
            opened.append(f)
            if len(opened) == nth:
                return _FullDisk(f)
        return f

    monkeypatch.setattr(files.os, "fdopen", fdopen)
    try:
        save(path, 2)
    except PlaitError as exc:
        assert isinstance(exc, error), exc
        assert str(path) in str(exc) and "No space left" in str(exc), exc
        assert isinstance(exc.__cause__, OSError)
    else:  # fewer files than nth: the save had to succeed
        assert len(opened) < nth
        return
    finally:
        monkeypatch.undo()
    assert _snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("kind", list(SAVES))
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_permissions_are_those_of_a_plain_open_and_mkdir(tmp_path, kind, umask):
    save, name, _ = SAVES[kind]
    old = os.umask(umask)
    try:
        save(tmp_path / name, 1)
        save(tmp_path / name, 2)  # an overwrite too
        plain = tmp_path / "plain"
        plain.mkdir()
        (plain / "f").write_bytes(b"")
    finally:
        os.umask(old)
    file_mode, dir_mode = (plain / "f").stat().st_mode & 0o777, plain.stat().st_mode & 0o777
    path = tmp_path / name
    if path.is_dir():
        assert path.stat().st_mode & 0o777 == dir_mode
        for f in path.iterdir():
            assert f.stat().st_mode & 0o777 == file_mode, f
    else:
        assert path.stat().st_mode & 0o777 == file_mode


def test_a_checkpoint_under_a_full_disk_keeps_its_latest_link(tmp_path, monkeypatch):
    _ckpt_save(tmp_path / "a", 1)
    ck.write_pointer(tmp_path, "a")
    monkeypatch.setattr(files.os, "symlink", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    with pytest.raises(CheckpointError, match="latest.*No space"):
        ck.write_pointer(tmp_path, "b")
    monkeypatch.undo()
    assert os.readlink(tmp_path / "latest") == "a"
    loaded = ck.load_checkpoint(tmp_path)
    assert np.all(next(iter(loaded.model_state.values())) == 1)


@pytest.mark.parametrize("kind", list(SAVES))
def test_a_replaced_file_or_folder_keeps_the_mode_the_user_gave_it(tmp_path, kind):
    save, name, _ = SAVES[kind]
    path = tmp_path / name
    save(path, 1)
    path.chmod(0o700 if path.is_dir() else 0o600)  # as open("w") on an existing file keeps its mode
    save(path, 2)
    assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600)
