"""Weights I/O in safetensors (never pickle: loading a file cannot run code).

Arrays on the GPU are copied to the host before saving; files are written atomically.
A file is read once, bounded, and only if it is a regular file; the ``safetensors``
library parses and validates it, after Plait's strict check of the header's JSON.
"""

from __future__ import annotations

import os
import struct
import warnings
from typing import Any

import numpy as np

from .backend import to_numpy
from .errors import ConfigError, SerializationError
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
    """Write ``{name: array}`` (NumPy or CuPy) and string ``metadata`` to ``path`` atomically.

    Args:
        path: the file to replace (see :func:`plait.core.atomic_write`).
        arrays: tensor name -> array of any shape and a real numeric or bool dtype (CuPy
            arrays are copied to the host first).
        metadata: default None; a ``{str: str}`` mapping stored as the file's ``__metadata__``.

    Raises:
        SerializationError: an array of complex, text or object dtype, metadata that is not
            ``{str: str}``, or the write failed (the old file is then intact).
    """
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


def _parse_header(raw: bytes, source: Any, bfloat16: str | None = None) -> dict[str, Any]:
    """The header as strict JSON: UTF-8, no repeated tensor name, no 5000-digit integer, no NaN.

    A dtype NumPy cannot hold is refused, except BF16 when ``bfloat16`` says what to make of it.
    """
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
        if isinstance(dtype, str) and dtype in _NO_NUMPY_DTYPE and not (dtype == "BF16" and bfloat16):
            raise SerializationError(
                f"{source}: tensor {name!r} has dtype {dtype}, which NumPy cannot hold; convert the file to F32 first"
                + (" (or load it with bfloat16='float32')" if dtype == "BF16" else "")
            )
    return header


# safetensors dtypes that NumPy has no dtype for (unknown dtypes are the library's to reject).
_NO_NUMPY_DTYPE = frozenset({"BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"})


def safetensors_metadata(data: bytes, *, source: Any) -> dict[str, str]:
    """The ``__metadata__`` of the safetensors file whose bytes are ``data`` (``source`` names it).

    Args:
        data: the bytes of the file (only the header is parsed).
        source: names the file in messages.

    Raises:
        SerializationError: a header that is cut short, too long or not strict JSON.
    """
    n = _header(data[:8], len(data), source)
    return dict(_parse_header(data[8 : 8 + n], source).get("__metadata__") or {})


def read_safetensors_metadata(path: str | os.PathLike[str], *, max_bytes: int = WEIGHTS_MAX_BYTES) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, reading only its header (one bounded open).

    Args:
        path: the ``.safetensors`` file.
        max_bytes: default :data:`WEIGHTS_MAX_BYTES` (64 GiB); a larger file is refused.

    Raises:
        SerializationError: the file is missing, not a regular file, too large, or its
            header is malformed.
    """
    with open_regular(path, component="read_safetensors_metadata", max_bytes=max_bytes, what="weights file") as (f, size):
        n = _header(f.read(8), size, path)
        raw = f.read(n)
    if len(raw) < n:
        raise SerializationError(f"{path}: the header was cut short while reading (the file shrank)")
    return dict(_parse_header(raw, path).get("__metadata__") or {})


def _bfloat16_option(bfloat16: str | None) -> str | None:
    if bfloat16 not in (None, "float32"):
        raise ConfigError(f"safetensors: bfloat16 must be None (refuse BF16 tensors) or 'float32', got {bfloat16!r}")
    return bfloat16


def _with_bfloat16(data: bytes, header: dict[str, Any], source: Any) -> dict[str, np.ndarray]:
    """Every array of a file holding BF16 tensors, those widened to float32 (exact: a 16-bit shift).

    The library still parses and validates the file (``deserialize``); only the conversion of
    its raw little-endian bytes into NumPy arrays is done here.
    """
    from safetensors import deserialize  # noqa: PLC0415

    bf16 = [k for k, v in header.items() if isinstance(v, dict) and v.get("dtype") == "BF16"]
    out = {}
    for name, view in deserialize(data):
        shape, dtype = view["shape"], view["dtype"]
        if dtype == "BF16":
            arr = (np.frombuffer(view["data"], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(view["data"], dtype=_NUMPY_DTYPES[dtype])
        out[name] = arr.reshape(shape)
    warnings.warn(f"{source}: {len(bf16)} bfloat16 tensor(s) converted to float32 on load (exact: every bfloat16 "
                  "value is a float32 value)", UserWarning, stacklevel=4)
    return out


# safetensors dtype -> NumPy (little-endian, as the format stores them); others are refused above
_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "U64": "<u8", "I32": "<i4", "U32": "<u4",
                 "I16": "<i2", "U16": "<u2", "I8": "i1", "U8": "u1", "BOOL": "?", "C64": "<c8"}


def load_safetensors_bytes(data: bytes, *, source: Any, bfloat16: str | None = None) -> dict[str, np.ndarray]:
    """Every array of the safetensors file whose bytes are ``data``; ``source`` names it in errors.

    The entry for callers that hash exactly the bytes they parsed. Plait checks the header
    strictly (see :func:`plait.core.parse_json`: repeated names, absurd integers and NaN are
    refused, naming the field); the ``safetensors`` library then parses and validates it
    (offsets, dtypes, shapes against the data length) before anything is allocated.

    Args:
        data: the bytes of the file.
        source: names the file in messages.
        bfloat16: default ``None``: refuses BF16 tensors (NumPy has no bfloat16); ``"float32"``
            widens them to float32, exactly, with a :class:`UserWarning`.

    Raises:
        SerializationError: a malformed header or file, or BF16 tensors with ``bfloat16=None``.
        TypeError: ``bfloat16`` is neither None nor ``"float32"``.
    """
    from safetensors import SafetensorError  # noqa: PLC0415
    from safetensors.numpy import load  # noqa: PLC0415

    option = _bfloat16_option(bfloat16)
    n = _header(data[:8], len(data), source)
    header = _parse_header(data[8 : 8 + n], source, option)
    has_bf16 = any(isinstance(v, dict) and v.get("dtype") == "BF16" for v in header.values())
    try:
        arrays = _with_bfloat16(data, header, source) if has_bf16 else load(data)
    except SafetensorError as exc:
        raise SerializationError(f"{source}: malformed safetensors file: {exc}") from exc
    except (ValueError, TypeError, KeyError, OverflowError, MemoryError) as exc:
        raise SerializationError(f"{source}: cannot decode safetensors file: {type(exc).__name__}: {exc}") from exc
    return dict(arrays)


def load_safetensors(path: str | os.PathLike[str], *, max_bytes: int = WEIGHTS_MAX_BYTES,
                     bfloat16: str | None = None) -> dict[str, np.ndarray]:
    """Read every array of a safetensors file into NumPy.

    The file is read once (a regular file of at most ``max_bytes``; FIFOs, devices and
    directories are refused), then parsed by :func:`load_safetensors_bytes` (``bfloat16``:
    see there). A missing, truncated or malformed file raises :class:`SerializationError`
    naming the path and the problem.

    Args:
        path: the ``.safetensors`` file.
        max_bytes: default :data:`WEIGHTS_MAX_BYTES` (64 GiB); a larger file is refused unread.
        bfloat16: default None (BF16 tensors refused); ``"float32"`` widens them exactly.

    Returns:
        ``{name: numpy array}`` with the file's shapes and dtypes.

    Raises:
        SerializationError: the file is missing, unreadable, too large or malformed.
        TypeError: ``bfloat16`` is neither None nor ``"float32"``.
    """
    _bfloat16_option(bfloat16)
    data = read_bytes(path, component="load_safetensors", max_bytes=max_bytes, what="weights file")
    return load_safetensors_bytes(data, source=path, bfloat16=bfloat16)
