"""Weights I/O in safetensors (never pickle: loading a file cannot run code).

Arrays on the GPU are copied to the host before saving; files are written atomically.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .backend import to_numpy
from .errors import SerializationError
from .files import atomic_write_bytes

__all__ = ["load_safetensors", "read_safetensors_metadata", "save_safetensors"]

_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


def save_safetensors(path: str | os.PathLike[str], arrays: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    """Write ``{name: array}`` (NumPy or CuPy) and string ``metadata`` to ``path`` atomically."""
    from safetensors.numpy import save  # noqa: PLC0415

    host = {}
    for name, a in arrays.items():
        arr = np.asarray(to_numpy(a), order="C")  # ascontiguousarray would turn 0-d into 1-d
        if arr.dtype == object or arr.dtype.kind in "cUSV":
            raise SerializationError(f"save_safetensors({path}): array {name!r} has unsupported dtype {arr.dtype}")
        host[name] = arr
    meta = None
    if metadata:
        bad = {k: v for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)}
        if bad:
            raise SerializationError(f"save_safetensors({path}): metadata must map str to str, got {bad!r}")
        meta = dict(metadata)
    atomic_write_bytes(path, save(host, metadata=meta))


def _read_header(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise SerializationError(f"{path}: not a safetensors file (only {len(head)} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER or n + 8 > size:
                raise SerializationError(f"{path}: header length {n} exceeds the file size {size} (truncated or corrupt)")
            raw = f.read(n)
    except OSError as exc:
        raise SerializationError(f"{path}: cannot read weights file: {exc}") from exc
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"{path}: safetensors header is not valid JSON: {exc}") from exc
    except RecursionError:  # a nesting bomb such as [[[[...]]]]
        raise SerializationError(f"{path}: safetensors header is nested too deeply to be a header") from None
    if not isinstance(header, dict):
        raise SerializationError(f"{path}: safetensors header must be a JSON object")
    return header


# safetensors dtypes that NumPy has no dtype for (unknown dtypes are the library's to reject).
_NO_NUMPY_DTYPE = frozenset({"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"})


def _check_dtypes(path: Path, header: dict[str, Any]) -> None:
    for name, info in header.items():
        dtype = info.get("dtype") if isinstance(info, dict) and name != "__metadata__" else None
        if isinstance(dtype, str) and dtype in _NO_NUMPY_DTYPE:
            raise SerializationError(
                f"{path}: tensor {name!r} has dtype {dtype}, which NumPy cannot hold; convert the file to F32 first"
            )


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, without reading the arrays."""
    meta = _read_header(Path(path)).get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise SerializationError(f"{path}: __metadata__ must be a JSON object")
    odd = next(((k, v) for k, v in meta.items() if not isinstance(v, str)), None)
    if odd is not None:  # the safetensors format (and load_safetensors) allows strings only
        raise SerializationError(f"{path}: __metadata__ values must be strings, got {type(odd[1]).__name__} "
                                 f"for key {odd[0]!r}")
    return dict(meta)


def load_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of a safetensors file into NumPy.

    A missing, truncated or malformed file raises :class:`SerializationError` naming the
    path and the problem; the safetensors library validates offsets, dtypes and sizes
    against the file length before allocating anything.
    """
    from safetensors import SafetensorError  # noqa: PLC0415
    from safetensors.numpy import load  # noqa: PLC0415

    p = Path(path)
    if not p.is_file():
        raise SerializationError(f"{p}: weights file not found")
    _check_dtypes(p, _read_header(p))
    try:
        data = p.read_bytes()
        arrays = load(data)
    except SafetensorError as exc:
        raise SerializationError(f"{p}: malformed safetensors file: {exc}") from exc
    except (ValueError, TypeError, KeyError, OverflowError, MemoryError) as exc:
        raise SerializationError(f"{p}: cannot decode safetensors file: {type(exc).__name__}: {exc}") from exc
    return dict(arrays)
