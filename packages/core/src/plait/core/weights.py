"""Weights I/O in safetensors (never pickle: loading a file cannot run code).

Arrays on the GPU are copied to the host before saving; files are written atomically.
A file is read once, bounded, and only if it is a regular file; the ``safetensors``
library parses and validates it, after Plait's strict check of the header's JSON.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np

from .backend import to_numpy
from .errors import SerializationError
from .files import atomic_write_bytes
from .reading import open_regular, parse_json, read_bytes

__all__ = [
    "WEIGHTS_MAX_BYTES",
    "load_safetensors",
    "load_safetensors_bytes",
    "read_safetensors_metadata",
    "safetensors_metadata",
    "save_safetensors",
]

_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
#: Default bound of a weights file: 64 GiB (2**34 float32 values); pass ``max_bytes`` for more.
WEIGHTS_MAX_BYTES = 2**36


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


def _header(head: bytes, size: int, source: Any) -> int:
    """The header length from the first 8 bytes of a file of ``size`` bytes, checked against it."""
    if len(head) < 8:
        raise SerializationError(f"{source}: not a safetensors file (only {len(head)} bytes)")
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER or n + 8 > size:
        raise SerializationError(f"{source}: header length {n} exceeds the file size {size} (truncated or corrupt)")
    return n


def _parse_header(raw: bytes, source: Any) -> dict[str, Any]:
    """The header as strict JSON: UTF-8, no repeated tensor name, no 5000-digit integer, no NaN."""
    header = parse_json(raw, source=source, component="safetensors header", expect=dict)
    meta = header.get("__metadata__")
    if meta is not None:
        if not isinstance(meta, dict):
            raise SerializationError(f"{source}: __metadata__ must be a JSON object")
        odd = next(((k, v) for k, v in meta.items() if not isinstance(v, str)), None)
        if odd is not None:  # the safetensors format allows strings only
            raise SerializationError(f"{source}: __metadata__ values must be strings, got {type(odd[1]).__name__} "
                                     f"for key {odd[0]!r}")
    for name, info in header.items():
        dtype = info.get("dtype") if isinstance(info, dict) and name != "__metadata__" else None
        if isinstance(dtype, str) and dtype in _NO_NUMPY_DTYPE:
            raise SerializationError(
                f"{source}: tensor {name!r} has dtype {dtype}, which NumPy cannot hold; convert the file to F32 first"
            )
    return header


# safetensors dtypes that NumPy has no dtype for (unknown dtypes are the library's to reject).
_NO_NUMPY_DTYPE = frozenset({"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"})


def safetensors_metadata(data: bytes, *, source: Any) -> dict[str, str]:
    """The ``__metadata__`` of the safetensors file whose bytes are ``data`` (``source`` names it)."""
    n = _header(data[:8], len(data), source)
    return dict(_parse_header(data[8 : 8 + n], source).get("__metadata__") or {})


def read_safetensors_metadata(path: str | os.PathLike[str], *, max_bytes: int = WEIGHTS_MAX_BYTES) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, reading only its header (one bounded open)."""
    with open_regular(path, component="read_safetensors_metadata", max_bytes=max_bytes) as (f, size):
        n = _header(f.read(8), size, path)
        raw = f.read(n)
    if len(raw) < n:
        raise SerializationError(f"{path}: the header was cut short while reading (the file shrank)")
    return dict(_parse_header(raw, path).get("__metadata__") or {})


def load_safetensors_bytes(data: bytes, *, source: Any) -> dict[str, np.ndarray]:
    """Every array of the safetensors file whose bytes are ``data``; ``source`` names it in errors.

    The entry for callers that hash exactly the bytes they parsed. Plait checks the header
    strictly (see :func:`plait.core.parse_json`: repeated names, absurd integers and NaN are
    refused, naming the field); the ``safetensors`` library then parses and validates it
    (offsets, dtypes, shapes against the data length) before anything is allocated.
    """
    from safetensors import SafetensorError  # noqa: PLC0415
    from safetensors.numpy import load  # noqa: PLC0415

    n = _header(data[:8], len(data), source)
    _parse_header(data[8 : 8 + n], source)
    try:
        arrays = load(data)
    except SafetensorError as exc:
        raise SerializationError(f"{source}: malformed safetensors file: {exc}") from exc
    except (ValueError, TypeError, KeyError, OverflowError, MemoryError) as exc:
        raise SerializationError(f"{source}: cannot decode safetensors file: {type(exc).__name__}: {exc}") from exc
    return dict(arrays)


def load_safetensors(path: str | os.PathLike[str], *, max_bytes: int = WEIGHTS_MAX_BYTES) -> dict[str, np.ndarray]:
    """Read every array of a safetensors file into NumPy.

    The file is read once (a regular file of at most ``max_bytes``; FIFOs, devices and
    directories are refused), then parsed by :func:`load_safetensors_bytes`. A missing,
    truncated or malformed file raises :class:`SerializationError` naming the path and the
    problem.
    """
    data = read_bytes(path, component="load_safetensors", max_bytes=max_bytes)
    return load_safetensors_bytes(data, source=path)
