"""Checkpoints: a folder per save, written atomically, with a ``latest`` pointer.

Layout of one checkpoint folder::

    model.safetensors       the model's state_dict
    optimizer.safetensors   every array of the optimizer state (moments, ...)
    state.safetensors       arrays of other state (e.g. EarlyStopping's best weights), if any
    trainer_state.json      epoch, step, optimizer scalars/param groups, scheduler, loader and
                            RNG states, history, callbacks; sizes and SHA-256 of the files above

Nested state is stored as JSON with every array replaced by ``{"__array__": key}`` (a
key into the matching safetensors file); dicts with non-string keys and tuples are
tagged so they come back exactly. Nothing is ever pickled.

A save writes a hidden temporary folder, fsyncs it, renames it into place and only then
replaces the ``latest`` pointer file (atomically). A process killed at any point leaves
the previous checkpoint and pointer intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plait.core import CheckpointError, SerializationError, atomic_write_text, load_safetensors, save_safetensors

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "latest_checkpoint",
    "load_checkpoint",
    "pack_state",
    "read_pointer",
    "save_checkpoint",
    "unpack_state",
    "write_pointer",
]

FORMAT = "plait-train-checkpoint"
VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
EXTRA_FILE = "state.safetensors"
STATE_FILE = "trainer_state.json"
LATEST = "latest"
_TMP_PREFIX = ".plait-ckpt-tmp-"


# -- JSON packing of nested state --------------------------------------------------------
def _is_array(value: Any) -> bool:
    return hasattr(value, "__array_interface__") or hasattr(value, "__cuda_array_interface__")


def pack_state(tree: Any, arrays: dict[str, Any], prefix: str) -> Any:
    """JSON-able copy of ``tree``; arrays are moved into ``arrays`` under ``prefix/...`` keys."""
    if isinstance(tree, np.generic):
        return tree.item()
    if _is_array(tree) and not isinstance(tree, (list, tuple)):
        arrays[prefix] = tree
        return {"__array__": prefix}
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree) and not ({"__array__", "__items__", "__tuple__"} & tree.keys()):
            return {k: pack_state(v, arrays, f"{prefix}/{k}") for k, v in tree.items()}
        return {"__items__": [[pack_state(k, arrays, f"{prefix}/k{i}"), pack_state(v, arrays, f"{prefix}/{i}")]
                              for i, (k, v) in enumerate(tree.items())]}
    if isinstance(tree, tuple):
        return {"__tuple__": [pack_state(v, arrays, f"{prefix}/{i}") for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [pack_state(v, arrays, f"{prefix}/{i}") for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise CheckpointError(f"cannot store {type(tree).__name__} at {prefix!r} in a checkpoint (not JSON-able or an array)")


def unpack_state(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`pack_state`."""
    if isinstance(tree, dict):
        if "__array__" in tree:
            return arrays[tree["__array__"]]
        if "__items__" in tree:
            return {_hashable(unpack_state(k, arrays)): unpack_state(v, arrays) for k, v in tree["__items__"]}
        if "__tuple__" in tree:
            return tuple(unpack_state(v, arrays) for v in tree["__tuple__"])
        return {k: unpack_state(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack_state(v, arrays) for v in tree]
    return tree


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


# -- files ------------------------------------------------------------------------------
def _digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"sha256": h.hexdigest(), "size": path.stat().st_size}


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(
    path: str | os.PathLike[str],
    model_state: dict[str, Any],
    optimizer_state: Any = None,
    trainer_state: dict[str, Any] | None = None,
) -> Path:
    """Write one checkpoint folder at ``path`` atomically (replacing an older one there)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{target.name}-", dir=target.parent))
    except OSError as exc:  # a full disk, a read-only folder, ...
        raise CheckpointError(f"{target}: cannot write the checkpoint: {exc}") from exc
    try:
        save_safetensors(tmp / MODEL_FILE, model_state, {"format": FORMAT})
        optim_arrays: dict[str, Any] = {}
        extra_arrays: dict[str, Any] = {}
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "optimizer": pack_state(optimizer_state, optim_arrays, "optimizer"),
            "trainer": pack_state(trainer_state or {}, extra_arrays, "trainer"),
        }
        save_safetensors(tmp / OPTIMIZER_FILE, optim_arrays, {"format": FORMAT})
        files = [MODEL_FILE, OPTIMIZER_FILE]
        if extra_arrays:
            save_safetensors(tmp / EXTRA_FILE, extra_arrays, {"format": FORMAT})
            files.append(EXTRA_FILE)
        doc["files"] = {name: _digest(tmp / name) for name in files}
        atomic_write_text(tmp / STATE_FILE, json.dumps(doc, indent=1))
        _fsync_dir(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}old-{target.name}-", dir=target.parent))
            os.replace(target, old / "ckpt")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:  # a full disk, a read-only folder, ...: the previous checkpoint stays as it was
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"{target}: cannot write the checkpoint: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_pointer(root: str | os.PathLike[str], name: str, pointer: str = LATEST) -> None:
    """Atomically point ``root/pointer`` (a one-line text file) at checkpoint folder ``name``."""
    try:
        atomic_write_text(Path(root) / pointer, name + "\n")
    except OSError as exc:
        raise CheckpointError(f"{Path(root) / pointer}: cannot point at {name}: {exc}") from exc


def read_pointer(root: str | os.PathLike[str], pointer: str = LATEST) -> Path | None:
    """The folder ``root/pointer`` names, or None when there is no pointer file."""
    file = Path(root) / pointer
    if not file.is_file():
        return None
    name = file.read_text().strip()
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise CheckpointError(f"{file}: pointer file holds {name!r}, not a checkpoint folder name")
    return Path(root) / name


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint under ``root`` (following ``latest``), or None."""
    return read_pointer(root)


def _restore_interrupted_overwrites(root: Path) -> None:
    """Put back a checkpoint folder that a killed overwrite had moved aside but not yet replaced."""
    prefix = f"{_TMP_PREFIX}old-"
    for backup in root.glob(f"{prefix}*"):
        name = backup.name[len(prefix):].rsplit("-", 1)[0]  # mkdtemp's random suffix has no '-'
        if (backup / "ckpt" / STATE_FILE).is_file() and name and not (root / name).exists():
            os.replace(backup / "ckpt", root / name)
            _fsync_dir(root)


def remove_stale_temporaries(root: str | os.PathLike[str]) -> None:
    """Delete half-written folders left by a save that was killed (after restoring any checkpoint
    an interrupted overwrite had moved aside)."""
    _restore_interrupted_overwrites(Path(root))
    for entry in Path(root).glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(entry, ignore_errors=True)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model arrays, the optimizer state and the trainer state."""

    path: Path
    model_state: dict[str, np.ndarray]
    optimizer_state: Any
    trainer_state: dict[str, Any]


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint folder itself, or a run folder whose ``latest`` pointer names one."""
    p = Path(path)
    if (p / STATE_FILE).is_file():
        return p
    pointed = read_pointer(p) if p.is_dir() else None
    if pointed is not None and not (pointed / STATE_FILE).is_file():
        _restore_interrupted_overwrites(p)
    if pointed is None:
        raise CheckpointError(f"{p}: no checkpoint here (neither {STATE_FILE} nor a {LATEST!r} pointer)")
    if not (pointed / STATE_FILE).is_file():
        raise CheckpointError(f"{pointed}: checkpoint named by {p / LATEST} is missing or incomplete")
    return pointed


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint; any problem raises :class:`CheckpointError` naming the path."""
    folder = resolve_checkpoint(path)
    state_file = folder / STATE_FILE
    try:
        doc = json.loads(state_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, huge numbers
        raise CheckpointError(f"{state_file}: unreadable trainer state: {type(exc).__name__}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{state_file}: not a {FORMAT} file")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"{state_file}: checkpoint version {doc.get('version')!r}, this plait-train reads {VERSION}")
    loaded: dict[str, dict[str, np.ndarray]] = {}
    files = doc.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(name, str) and "/" not in name for name in files):
        raise CheckpointError(f"{state_file}: 'files' must map file names to their size and SHA-256")
    for name, expected in files.items():
        file = folder / name
        if not file.is_file():
            raise CheckpointError(f"{file}: missing from checkpoint {folder}")
        if _digest(file) != expected:
            raise CheckpointError(f"{file}: size or SHA-256 differs from {STATE_FILE} (corrupt or modified)")
        try:
            loaded[name] = load_safetensors(file)
        except SerializationError as exc:
            raise CheckpointError(f"{file}: {exc}") from exc
    if MODEL_FILE not in loaded:
        raise CheckpointError(f"{folder}: {STATE_FILE} lists no {MODEL_FILE}")
    try:
        optimizer_state = unpack_state(doc["optimizer"], loaded.get(OPTIMIZER_FILE, {}))
        trainer_state = unpack_state(doc["trainer"], loaded.get(EXTRA_FILE, {}))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{state_file}: malformed state ({type(exc).__name__}: {exc})") from exc
    return Checkpoint(folder, loaded[MODEL_FILE], optimizer_state, trainer_state)
