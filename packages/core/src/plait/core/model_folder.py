"""Model folders: ``config.json`` + ``model.safetensors``, rebuilt by name through ``registry.models``.

config.json::

    {"format": "plait-model", "format_version": 1,
     "architecture": "gpt", "model_args": {...}, "dtype": "float32", "num_parameters": 123,
     "requires": [{"distribution": "plait-zoo", "version": "0.1.0", "provides": ["models:gpt"]}, ...],
     "versions": {"plait-core": "0.1.0", ...},
     "files": {"model.safetensors": {"size": 1234, "sha256": "..."}, ...},
     "tokenizer": {"file": "tokenizer.json", "type": "byte_level_bpe", ...}}   # optional

* A save builds the whole folder as a hidden sibling and swaps it in one step
  (:func:`plait.core.files.atomic_folder`): a process killed at any instant leaves the
  old or the new complete folder.
* A load reads each file once, bounded, and checks the bytes it parses against the
  SHA-256 recorded in config.json, so a load racing a save retries once and then fails
  with :class:`SerializationError` rather than pairing one save's config with another's
  weights.
* ``requires`` names the distribution (and version) that provides the architecture and
  every registered component named in its arguments; a missing one is a clear error
  ("needs my-plait 0.0.1 (pip install my-plait)"), another version a warning.

Nothing here knows a concrete model or tokenizer: everything resolves through the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import _read_shim as reading
from ._model_provenance import check_requirements, check_requires_field, describe_model, origin_of, versions_of
from .errors import ConfigError, PlaitError, SerializationError
from .files import atomic_folder, atomic_write_text, recover_folder
from .module import Module
from .registry import registry
from .weights import load_safetensors_bytes, save_safetensors

__all__ = [
    "CONFIG_FILE",
    "MODEL_FORMAT",
    "TOKENIZER_FILE",
    "WEIGHTS_FILE",
    "describe_model",
    "file_record",
    "load_model",
    "load_model_tokenizer",
    "load_model_weights",
    "read_model_config",
    "read_model_folder",
    "save_model",
    "verify_file",
    "write_model_folder",
]

MODEL_FORMAT = "plait-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_LIMIT = 16 * 1024 * 1024
FILE_LIMIT = 64 * 1024**3  # the largest file a model folder may hold (bytes)
_FLOAT_DTYPES = ("float16", "float32", "float64")
_CHILD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _dtype_of(state: Mapping[str, Any]) -> str:
    floats = {np.dtype(a.dtype).name for a in state.values() if np.dtype(a.dtype).kind == "f"}
    return floats.pop() if len(floats) == 1 else "float32"


def file_record(data: bytes) -> dict[str, Any]:
    """``{"size", "sha256"}`` of ``data``, as config.json's ``files`` records it."""
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _record_of_file(path: Path) -> dict[str, Any]:
    """The record of a file this save just wrote (hashed in chunks; never read from elsewhere)."""
    h, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        while chunk := os.read(fd, 1 << 22):
            h.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return {"size": size, "sha256": h.hexdigest()}


# -- saving --------------------------------------------------------------------------------------
def write_model_folder(
    path: str | os.PathLike[str],
    state: Mapping[str, Any],
    description: Mapping[str, Any] | None,
    *,
    metadata: Mapping[str, Any] | None = None,
    tokenizer: Any = None,
    files: Mapping[str, Callable[[Path], None]] | None = None,
    error: type[PlaitError] = SerializationError,
) -> Path:
    """Write a model folder at ``path`` in one step; returns the folder.

    ``state``: the weights (a state dict). ``description``: :func:`describe_model`'s result,
    or None for weights whose model has no registered name (the folder then loads only with
    :func:`load_model_weights`). ``files``: extra ``{name: writer(path)}`` written into the
    folder and covered by config.json's SHA-256 record (a checkpoint's optimizer and trainer
    state). ``error``: the SerializationError subclass raised (with the path) on failure.
    """
    folder = Path(path)
    desc = dict(description or {"architecture": None, "model_args": None, "requires": []})
    config: dict[str, Any] = {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, **desc,
                              "dtype": _dtype_of(state),
                              "num_parameters": int(sum(int(np.prod(a.shape)) for a in state.values())),
                              "versions": versions_of(desc.get("requires", []))}
    if metadata:
        config["metadata"] = dict(metadata)
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise error(f"{folder / CONFIG_FILE}: model config is not JSON-able: {exc}") from exc
    writers: dict[str, Callable[[Path], None]] = {
        WEIGHTS_FILE: lambda p: save_safetensors(p, dict(state), {"format": MODEL_FORMAT}),
    }
    if tokenizer is not None:
        config["tokenizer"] = _tokenizer_entry(tokenizer)
        writers[TOKENIZER_FILE] = lambda p: tokenizer.save(p)
    for name, writer in (files or {}).items():
        if not _CHILD_NAME.match(name) or name in (CONFIG_FILE, *writers):
            raise error(f"{folder}: {name!r} cannot be an extra file of a model folder")
        writers[name] = writer
    with atomic_folder(folder, error=error) as tmp:
        records = {}
        for name, writer in writers.items():
            writer(tmp / name)
            records[name] = _record_of_file(tmp / name)
        config["files"] = records
        atomic_write_text(tmp / CONFIG_FILE, json.dumps(config, indent=2, allow_nan=False) + "\n", error=error)
    return folder


def _tokenizer_entry(tokenizer: Any) -> dict[str, Any]:
    if not callable(getattr(tokenizer, "save", None)):
        raise ConfigError(f"tokenizer {type(tokenizer).__name__} has no save(path) method, so it cannot be saved")
    name = registry.tokenizers.find(type(tokenizer))
    entry: dict[str, Any] = {"file": TOKENIZER_FILE, "type": name}
    origin = origin_of("tokenizers", name) if name is not None else None
    if origin is not None:
        entry["distribution"], entry["version"] = origin
    return entry


def save_model(model: Module, path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None,
               tokenizer: Any = None, architecture: str | None = None,
               model_args: Mapping[str, Any] | None = None) -> Path:
    """Save ``model`` as a folder (config.json + model.safetensors [+ tokenizer.json]); returns it.

    Args:
        model: a registered model (or ``architecture``/``model_args`` saying how to rebuild it).
        path: the folder; an existing one is replaced in one step.
        metadata: default None; JSON-able facts stored under ``"metadata"`` in config.json.
        tokenizer: default None; anything with ``save(path)`` (a registered tokenizer is loaded
            back by :func:`load_model_tokenizer`), written as ``tokenizer.json``.
        architecture: the registered name that rebuilds ``model`` (default: found in the registry).
        model_args: the arguments that rebuild ``model`` (default: its ``config()``).

    Raises:
        ConfigError: ``model`` is not registered and no ``architecture`` is given, or the
            tokenizer has no ``save``.
        SerializationError: metadata or arguments that are not JSON-able, or the write
            failed (the previous folder is then intact).
    """
    description = describe_model(model, architecture=architecture, model_args=model_args)
    return write_model_folder(path, model.state_dict(), description, metadata=metadata, tokenizer=tokenizer)


# -- reading -------------------------------------------------------------------------------------
def _check(cond: bool, path: Path, message: str) -> None:
    if not cond:
        raise SerializationError(f"{path}: {message}")


def _check_files(files: Any, path: Path) -> None:
    _check(isinstance(files, dict) and len(files) <= 64, path, "'files' must map at most 64 file names to records")
    for name, rec in files.items():
        _check(isinstance(name, str) and bool(_CHILD_NAME.match(name)) and name != CONFIG_FILE, path,
               f"'files' names {name[:80]!r}, which is not a plain file name inside the folder")
        _check(isinstance(rec, dict) and set(rec) == {"size", "sha256"}
               and isinstance(rec["size"], int) and not isinstance(rec["size"], bool) and 0 <= rec["size"] <= FILE_LIMIT
               and isinstance(rec["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", rec["sha256"]) is not None,
               path, f"'files' record of {name!r} must be {{'size': int, 'sha256': 64 hex digits}}")


def read_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated config.json of a model folder (SerializationError naming the problem).

    Args:
        path: the model folder (not the config file).

    Raises:
        SerializationError: no such folder, config.json missing, too large, not strict JSON,
            or a field of the wrong type or an unsupported ``format_version``.
    """
    folder = Path(path)
    cfg_path = folder / CONFIG_FILE
    if not folder.is_dir() and not recover_folder(folder):
        raise SerializationError(f"{folder}: not a saved model folder (no such directory)")
    if not os.path.lexists(cfg_path):
        raise SerializationError(f"{cfg_path}: missing; a saved model folder holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    config = reading.parse_json(reading.read_file_bytes(cfg_path, CONFIG_LIMIT, what="config file"), cfg_path)
    _check(isinstance(config, dict), cfg_path, f"expected a JSON object, got {type(config).__name__}")
    _check(config.get("format") == MODEL_FORMAT, cfg_path,
           f"'format' is {config.get('format')!r}, expected {MODEL_FORMAT!r}")
    version = config.get("format_version")
    _check(isinstance(version, int) and not isinstance(version, bool) and 1 <= version <= FORMAT_VERSION, cfg_path,
           f"format_version {version!r} is not supported (this plait-core reads 1..{FORMAT_VERSION})")
    arch, args = config.get("architecture"), config.get("model_args")
    _check((isinstance(arch, str) and isinstance(args, dict)) or (arch is None and args is None and "architecture" in config),
           cfg_path, "needs a string 'architecture' and an object 'model_args'")
    _check(config.get("kind", "models") in ("models", "layers"), cfg_path, "'kind' must be 'models' or 'layers'")
    dtype = config.get("dtype", "float32")
    _check(dtype in _FLOAT_DTYPES, cfg_path, f"dtype {dtype!r} is not one of {', '.join(_FLOAT_DTYPES)}")
    _check_files(config.get("files", {}), cfg_path)
    check_requires_field(config.get("requires", []), cfg_path)
    return config


def verify_file(folder: Path, config: Mapping[str, Any], name: str, *, error: type[PlaitError] = SerializationError,
                required: bool = False) -> bytes:
    """The bytes of ``folder/name``, read once and checked against config.json's record
    (``required``: a file config.json records nothing for is refused)."""
    path = folder / name
    data = reading.read_file_bytes(path, FILE_LIMIT, error=error,
                                   what="weights file" if name == WEIGHTS_FILE else "file")
    expected = config.get("files", {}).get(name)
    if expected is None:
        if required:
            raise error(f"{folder / CONFIG_FILE}: records no size and SHA-256 for {name}")
    elif file_record(data) != expected:
        raise error(f"{path}: size or SHA-256 differs from {CONFIG_FILE} (modified, corrupt, or replaced by "
                    "a save while it was being read)")
    return data


def safetensors_from_bytes(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file already read into memory (``path`` names it in errors)."""
    return load_safetensors_bytes(data, source=path)


def read_model_folder(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The validated config.json and the weights of one save, without building the model.

    The weights' bytes are checked against the SHA-256 config.json records; a read that
    raced a save (the folder replaced between the two files) is retried once, and a
    second mismatch raises :class:`SerializationError`: never a mixed pair.
    """
    folder = Path(path)
    for attempt in (0, 1):
        config = read_model_config(folder)
        try:
            data = verify_file(folder, config, WEIGHTS_FILE)
        except SerializationError:
            if attempt == 0 and config.get("files", {}).get(WEIGHTS_FILE) is not None:
                continue  # replaced while we read: read the new pair
            raise
        return config, safetensors_from_bytes(data, folder / WEIGHTS_FILE)
    raise AssertionError("unreachable")


def _put_weights(model: Module, arrays: dict[str, np.ndarray], folder: Path, name: str) -> Module:
    try:
        model.load_state_dict(arrays, strict=True)
    except PlaitError as exc:
        raise SerializationError(f"{folder / WEIGHTS_FILE}: does not fit the {name!r} model: {exc}") from exc
    return model


def load_model_weights(model: Module, path: str | os.PathLike[str], *, architecture: str | None = None) -> Module:
    """Copy a folder's weights into ``model`` (whose architecture, if given, must match the folder's).

    Args:
        model: the Module to fill (in place, keeping its dtype and device); returned.
        path: the model folder.
        architecture: default None; when given and the folder records another architecture,
            nothing is loaded.

    Raises:
        SerializationError: the folder is invalid, a file's size or SHA-256 differs from
            config.json's record, the architectures differ, or the weights do not fit
            ``model`` (names or shapes).
    """
    folder = Path(path)
    config, arrays = read_model_folder(folder)
    saved = config["architecture"]
    if architecture is not None and saved is not None and architecture != saved:
        raise SerializationError(f"{folder / CONFIG_FILE}: holds a {saved!r} model; cannot load it into a "
                                 f"{architecture!r} model ({type(model).__name__})")
    return _put_weights(model, arrays, folder, saved or type(model).__name__)


def _default_build(name: str, args: dict[str, Any], kind: str) -> Module:
    if kind == "layers":
        return registry.build({"type": name, **args}, "layers")
    factory = registry.models.get(name)
    return factory(**args)


def load_model(path: str | os.PathLike[str], *, architecture: str | None = None,
               build: Callable[[str, dict[str, Any]], Module] | None = None) -> Module:
    """Rebuild a saved model by name (through the registry), load its weights, set eval mode.

    ``architecture`` asserts what the folder must hold; ``build(name, args)`` replaces the
    default rebuild (``registry.models.get(name)(**args)``).

    Args:
        path: the model folder written by :func:`save_model`.
        architecture: default None (any); the registered name the folder must hold.
        build: default None; ``build(name, model_args) -> Module`` used instead of the
            registry for ``kind="models"`` folders.

    Returns:
        The model, in eval mode, cast to the saved dtype.

    Raises:
        SerializationError: the folder is invalid or tampered with, records no or another
            architecture, needs plugin distributions that are missing, or the model cannot
            be rebuilt from its ``model_args``.
    """
    folder = Path(path)
    config, arrays = read_model_folder(folder)
    cfg_path = folder / CONFIG_FILE
    name = config["architecture"]
    if name is None:
        raise SerializationError(f"{cfg_path}: records no architecture (the model had no registered name); "
                                 "build the model in code and use load_model_weights")
    if architecture is not None and architecture != name:
        raise SerializationError(f"{cfg_path}: holds a {name!r} model, not the requested {architecture!r}")
    check_requirements(config, cfg_path)
    kind = config.get("kind", "models")
    try:
        model = build(name, dict(config["model_args"])) if build is not None and kind == "models" \
            else _default_build(name, dict(config["model_args"]), kind)
    except PlaitError as exc:
        raise SerializationError(f"{cfg_path}: cannot rebuild the {name!r} model: {exc}") from exc
    except Exception as exc:  # a constructor choking on hostile arguments (types, sizes, memory)
        raise SerializationError(f"{cfg_path}: cannot rebuild the {name!r} model from its model_args: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(model, Module):
        raise SerializationError(f"{cfg_path}: {name!r} built a {type(model).__name__}, not a plait Module")
    dtype = config.get("dtype", "float32")
    if dtype != "float32":
        model.astype(np.dtype(dtype))
    _put_weights(model, arrays, folder, name)
    model.eval()
    return model


def load_model_tokenizer(path: str | os.PathLike[str]) -> Any | None:
    """The tokenizer saved in a model folder (through ``registry.tokenizers``), or None if it has none.

    The tokenizer class reads its file by path; on Linux that path goes through an open
    handle of the folder, so a save replacing the folder meanwhile cannot hand it another
    save's file (the read then fails instead).

    Args:
        path: the model folder.

    Raises:
        SerializationError: the folder or its tokenizer entry is invalid, the tokenizer
            type is not registered, or its file is missing or does not match its record.
    """
    folder = Path(path)
    try:
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        dir_fd = None  # read_model_config names the problem
    try:
        pinned = Path(f"/proc/self/fd/{dir_fd}")
        base = pinned if dir_fd is not None and pinned.is_dir() else folder
        try:
            return _load_tokenizer(folder, base)
        except PlaitError as exc:
            if base == folder:
                raise
            raise SerializationError(str(exc).replace(str(base), str(folder))) from exc
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _load_tokenizer(folder: Path, base: Path) -> Any | None:
    cfg_path = folder / CONFIG_FILE
    config = read_model_config(base)
    entry = config.get("tokenizer")
    if entry is None:
        return None
    _check(isinstance(entry, dict) and entry.get("file") == TOKENIZER_FILE
           and (entry.get("type") is None or isinstance(entry.get("type"), str)),
           cfg_path, "'tokenizer' must name the registered tokenizer type saved as tokenizer.json")
    _check(entry["type"] is not None, cfg_path, "its tokenizer.json was saved by a tokenizer class that is not "
           "registered, so it has no loader here; open it with that class's load(path)")
    if "distribution" in entry:
        check_requires_field([entry], cfg_path)
        check_requirements(config, cfg_path, [entry])
    verify_file(base, config, TOKENIZER_FILE)
    try:
        cls = registry.tokenizers.get(entry["type"])
    except PlaitError as exc:
        raise SerializationError(f"{cfg_path}: cannot load its tokenizer: {exc}") from exc
    loader = getattr(cls, "load", None)
    if not callable(loader):
        raise SerializationError(f"{cfg_path}: tokenizer {entry['type']!r} has no load(path)")
    return loader(base / TOKENIZER_FILE)
