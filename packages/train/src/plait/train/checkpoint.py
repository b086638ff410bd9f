"""Checkpoints: a folder per save, written in one step, that is also a loadable model folder.

Layout of one checkpoint folder::

    config.json             the model folder's record (plait.core.model_folder): architecture and
                            arguments when the model has a registered name, and the size and
                            SHA-256 of EVERY other file below: the checkpoint's integrity record
    model.safetensors       the model's state_dict (so ``plait.zoo.load``/``load_model`` open it)
    optimizer.safetensors   every array of the optimizer state (moments, ...)
    state.safetensors       arrays of other state (e.g. EarlyStopping's best weights), if any
    trainer_state.json      epoch, step, optimizer scalars/param groups, scheduler, loader and
                            RNG states, history, callbacks

Nested state is stored as JSON with every array replaced by ``{"__array__": key}`` (a
key into the matching safetensors file) and non-finite floats by ``{"__float__": "inf"}``;
dicts with non-string keys and tuples are tagged so they come back exactly. Nothing is
ever pickled.

A save builds the folder as a hidden sibling and swaps it in at once
(:func:`plait.core.files.atomic_folder`); ``latest``/``best`` are symbolic links to the
folder (replaced atomically), so they open as model folders too. A load reads each file
once and checks it against config.json; every name read from a state file (pointers,
``ModelCheckpoint``'s list) is checked to be a plain child of the run folder first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import tempfile  # noqa: F401 - the module whose mkdtemp a save calls (tests instrument it)
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plait.core import CheckpointError, PlaitError, SerializationError, atomic_write_text, reading, save_safetensors
from plait.core import files as core_files
from plait.core import model_folder as mf

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "check_child_name",
    "latest_checkpoint",
    "load_checkpoint",
    "pack_state",
    "read_pointer",
    "save_checkpoint",
    "unpack_state",
    "write_pointer",
]

FORMAT = "plait-train-checkpoint"
VERSION = 2
MODEL_FILE = mf.WEIGHTS_FILE
CONFIG_FILE = mf.CONFIG_FILE
OPTIMIZER_FILE = "optimizer.safetensors"
EXTRA_FILE = "state.safetensors"
STATE_FILE = "trainer_state.json"
LATEST = "latest"
_POINTER_LIMIT = 4096
_MAX_NAME = 255
_TAGS = frozenset({"__array__", "__items__", "__tuple__", "__float__"})


# -- names read from files ----------------------------------------------------------------------
def check_child_name(name: Any, root: str | os.PathLike[str], where: str) -> str:
    """``name`` if it is a plain child of the folder ``root``; CheckpointError naming ``where`` otherwise.

    A plain child name is a non-empty string of at most 255 characters, printable, with no
    path separator, not ``.``/``..``, not hidden, and, where ``root/name`` is a symbolic
    link, one that stays inside ``root``.
    """
    shown = repr(name)[:80]
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME or len(name.encode("utf-8", "replace")) > _MAX_NAME:
        raise CheckpointError(f"{where}: {shown} is not a folder name (1 to {_MAX_NAME} characters)")
    if "/" in name or "\\" in name or name.startswith(".") or not name.isprintable() or os.path.isabs(name):
        raise CheckpointError(f"{where}: {shown} is not a plain name inside {root} (separators, '..', hidden "
                              "or absolute names are refused)")
    path = Path(root) / name
    if path.is_symlink():
        real, base = os.path.realpath(path), os.path.realpath(root)
        if os.path.dirname(real) != base:
            raise CheckpointError(f"{where}: {shown} is a symbolic link leading out of {root}")
    return name


# -- JSON packing of nested state --------------------------------------------------------
def _is_array(value: Any) -> bool:
    return hasattr(value, "__array_interface__") or hasattr(value, "__cuda_array_interface__")


def pack_state(tree: Any, arrays: dict[str, Any], prefix: str) -> Any:
    """JSON-able copy of ``tree``; arrays are moved into ``arrays`` under ``prefix/...`` keys."""
    if isinstance(tree, np.generic):
        tree = tree.item()
    if _is_array(tree) and not isinstance(tree, (list, tuple)):
        arrays[prefix] = tree
        return {"__array__": prefix}
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree) and not (_TAGS & tree.keys()):
            return {k: pack_state(v, arrays, f"{prefix}/{k}") for k, v in tree.items()}
        return {"__items__": [[pack_state(k, arrays, f"{prefix}/k{i}"), pack_state(v, arrays, f"{prefix}/{i}")]
                              for i, (k, v) in enumerate(tree.items())]}
    if isinstance(tree, tuple):
        return {"__tuple__": [pack_state(v, arrays, f"{prefix}/{i}") for i, v in enumerate(tree)]}
    if isinstance(tree, list):
        return [pack_state(v, arrays, f"{prefix}/{i}") for i, v in enumerate(tree)]
    if isinstance(tree, float) and not math.isfinite(tree):
        return {"__float__": repr(tree)}  # 'inf', '-inf', 'nan': JSON has no such numbers
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise CheckpointError(f"cannot store {type(tree).__name__} at {prefix!r} in a checkpoint (not JSON-able or an array)")


def unpack_state(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`pack_state`."""
    if isinstance(tree, dict):
        if "__array__" in tree:
            return arrays[tree["__array__"]]
        if "__float__" in tree:
            if tree["__float__"] not in ("inf", "-inf", "nan"):
                raise ValueError(f"__float__ must be 'inf', '-inf' or 'nan', got {str(tree['__float__'])[:40]!r}")
            return float(tree["__float__"])
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
    """The ``{"size", "sha256"}`` record config.json keeps of the file ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def _fsync_dir(path: Path) -> None:
    core_files.fsync_folder(path)


def save_checkpoint(
    path: str | os.PathLike[str],
    model_state: dict[str, Any],
    optimizer_state: Any = None,
    trainer_state: dict[str, Any] | None = None,
    *,
    model_description: Mapping[str, Any] | None = None,
) -> Path:
    """Write one checkpoint folder at ``path`` in one step (replacing an older one there).

    ``model_description`` (:func:`plait.core.describe_model` of the model) makes the folder
    loadable by name as a model folder too.

    Args:
        path: the checkpoint folder (missing parents are created).
        model_state: the model's ``state_dict()`` (name -> array).
        optimizer_state: default None; the optimizer's ``state_dict()`` (arrays go to
            ``optimizer.safetensors``, the rest to JSON).
        trainer_state: default None (empty); any nested dict of JSON values and arrays
            (epoch, RNG, scheduler, loader and callback states).
        model_description: default None (the folder then loads only with
            ``load_model_weights``); keyword-only.

    Returns:
        The checkpoint folder.

    Raises:
        CheckpointError: a value that cannot be stored (an object, a complex array), or the
            write failed (the previous checkpoint is then intact).
    """
    target = Path(path)
    optim_arrays: dict[str, Any] = {}
    extra_arrays: dict[str, Any] = {}
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "optimizer": pack_state(optimizer_state, optim_arrays, "optimizer"),
        "trainer": pack_state(trainer_state or {}, extra_arrays, "trainer"),
    }
    text = json.dumps(doc, indent=1, allow_nan=False)
    writers = {OPTIMIZER_FILE: lambda p: save_safetensors(p, optim_arrays, {"format": FORMAT})}
    if extra_arrays:
        writers[EXTRA_FILE] = lambda p: save_safetensors(p, extra_arrays, {"format": FORMAT})
    writers[STATE_FILE] = lambda p: atomic_write_text(p, text, error=CheckpointError)
    try:
        return mf.write_model_folder(target, model_state, model_description, files=writers, error=CheckpointError)
    except CheckpointError:
        raise
    except SerializationError as exc:  # e.g. an array of a dtype safetensors cannot hold
        raise CheckpointError(f"{target}: cannot write the checkpoint: {exc}") from exc


def write_pointer(root: str | os.PathLike[str], name: str, pointer: str = LATEST) -> None:
    """Point ``root/pointer`` at checkpoint folder ``name``: a relative symbolic link, replaced atomically
    (a one-line text file where the system has no symbolic links)."""
    root = Path(root)
    check_child_name(name, root, f"write_pointer({pointer!r})")
    check_child_name(pointer, root, "write_pointer")
    link = root / pointer
    if link.is_dir() and not link.is_symlink():
        raise CheckpointError(f"{link}: is a folder, not a pointer; refusing to replace it")
    try:
        core_files.remove_stale_siblings(link)
        tmp = root / f".{pointer}.plait-tmp-{os.getpid()}-{secrets.token_hex(4)}"  # os.symlink never overwrites
        try:
            os.symlink(name, tmp)
        except (NotImplementedError, PermissionError):  # no symbolic links here: a text file
            atomic_write_text(link, name + "\n", error=CheckpointError)
            return
        try:
            os.replace(tmp, link)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(root)
    except OSError as exc:
        raise CheckpointError(f"{link}: cannot point at {name}: {exc.strerror or exc}") from exc


def read_pointer(root: str | os.PathLike[str], pointer: str = LATEST) -> Path | None:
    """The folder ``root/pointer`` names (checked to be a plain child of ``root``), or None without one."""
    root = Path(root)
    file = root / pointer
    if file.is_symlink():
        try:
            name = os.readlink(file)
        except OSError as exc:
            raise CheckpointError(f"{file}: cannot read the pointer: {exc.strerror or exc}") from exc
    elif file.exists():
        data = reading.read_bytes(file, component="checkpoint pointer", max_bytes=_POINTER_LIMIT, error=CheckpointError)
        try:
            name = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CheckpointError(f"{file}: the pointer file is not UTF-8 text") from None
    else:
        return None
    return root / check_child_name(name, root, f"{file}")


def latest_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint under ``root`` (following ``latest``), or None.

    Args:
        root: the run folder holding the checkpoints and the ``latest`` pointer.

    Raises:
        CheckpointError: the pointer exists but is malformed or names a path outside ``root``.
    """
    return read_pointer(root)


def remove_stale_temporaries(root: str | os.PathLike[str]) -> None:
    """Delete half-written folders left in ``root`` by saves that were killed (after putting back any
    checkpoint a killed fallback swap had moved aside)."""
    core_files.remove_stale_in(root)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model arrays, the optimizer state and the trainer state.

    Args:
        path: the checkpoint folder it was read from.
        model_state: the model's arrays by name (NumPy).
        optimizer_state: the optimizer's state dict as saved (None when none was saved).
        trainer_state: the trainer state dict as saved.
    """

    path: Path
    model_state: dict[str, np.ndarray]
    optimizer_state: Any
    trainer_state: dict[str, Any]


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint folder itself, or a run folder whose ``latest`` pointer names one."""
    p = Path(path)
    if not os.path.lexists(p):
        core_files.recover_folder(p)
    if (p / STATE_FILE).is_file():
        return p
    pointed = read_pointer(p) if p.is_dir() else None
    if pointed is None:
        raise CheckpointError(f"{p}: no checkpoint here (neither {STATE_FILE} nor a {LATEST!r} pointer)")
    if not os.path.lexists(pointed):
        core_files.recover_folder(pointed)
    if not (pointed / STATE_FILE).is_file():
        raise CheckpointError(f"{pointed}: checkpoint named by {p / LATEST} is missing or incomplete")
    return pointed


def _verified(folder: Path, config: Mapping[str, Any], name: str) -> bytes:
    return mf.verify_file(folder, config, name, error=CheckpointError, required=True)


def _read_once(folder: Path) -> Checkpoint:
    try:
        config = mf.read_model_config(folder)
    except CheckpointError:
        raise
    except SerializationError as exc:
        raise CheckpointError(f"{folder}: not a readable checkpoint: {exc}") from exc
    state_file = folder / STATE_FILE
    doc = reading.parse_json(_verified(folder, config, STATE_FILE), source=state_file, component="checkpoint",
                             expect=dict, error=CheckpointError)
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"{state_file}: not a {FORMAT} file")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"{state_file}: checkpoint version {str(doc.get('version'))[:20]}, "
                              f"this plait-train reads {VERSION}")
    unknown = set(doc) - {"format", "version", "optimizer", "trainer"}
    if unknown:
        raise CheckpointError(f"{state_file}: unknown key(s) {', '.join(sorted(map(repr, unknown)))[:200]}")
    loaded: dict[str, dict[str, np.ndarray]] = {}
    for name in (MODEL_FILE, OPTIMIZER_FILE, EXTRA_FILE):
        if name == EXTRA_FILE and name not in config.get("files", {}):
            continue
        try:
            loaded[name] = mf.safetensors_from_bytes(_verified(folder, config, name), folder / name)
        except CheckpointError:
            raise
        except SerializationError as exc:
            raise CheckpointError(str(exc)) from exc
    try:
        optimizer_state = unpack_state(doc["optimizer"], loaded[OPTIMIZER_FILE])
        trainer_state = unpack_state(doc["trainer"], loaded.get(EXTRA_FILE, {}))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{state_file}: malformed state ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(trainer_state, dict):
        raise CheckpointError(f"{state_file}: 'trainer' must be an object")
    return Checkpoint(folder, loaded[MODEL_FILE], optimizer_state, trainer_state)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint; any problem raises :class:`CheckpointError` naming the path.

    Every file is read once and checked against config.json's SHA-256 record; a load that
    raced a save (of the same folder, or one that moved ``latest`` and pruned the folder it
    named) retries once, and never mixes two saves.

    Args:
        path: a checkpoint folder, or a run folder whose ``latest`` pointer names one.

    Raises:
        CheckpointError: no checkpoint there, a missing, malformed or tampered file, or
            another format or version.
    """
    for attempt in (0, 1):
        folder = resolve_checkpoint(path)
        try:
            return _read_once(folder)
        except CheckpointError as exc:
            moved = folder != Path(path)  # found through a pointer that a save may have just moved
            if attempt == 0 and ("SHA-256" in str(exc) or moved):
                continue
            raise
        except PlaitError as exc:  # defensive: nothing but CheckpointError leaves a checkpoint load
            raise CheckpointError(f"{folder}: {exc}") from exc
    raise AssertionError("unreachable")


def remove_checkpoint(root: str | os.PathLike[str], name: str) -> None:
    """Delete checkpoint folder ``root/name`` (a plain child name; a symbolic link is only unlinked)."""
    root = Path(root)
    check_child_name(name, root, f"remove_checkpoint({root})")
    path = root / name
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
