"""The IDX format of (Fashion-)MNIST: a big-endian header, then the raw array.

Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then each size as a big-endian
uint32. Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from plait.core import SerializationError, atomic_write_bytes
from plait.core.reading import read_bytes

__all__ = ["IDX_MAX_BYTES", "read_idx", "write_idx"]

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder(">").str: k for k, v in _TYPES.items()}


#: Default bound of an IDX file, compressed or not: 4 GiB (Fashion-MNIST's largest is 47 MB).
IDX_MAX_BYTES = 4 * 1024**3


def _gunzip(data: bytes, path: Path, limit: int) -> bytes:
    """Decompress every gzip member of ``data``, refusing more than ``limit`` bytes of output."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise SerializationError(f"read_idx: {path}: not a valid gzip file: {exc}") from None
        if len(out) > limit:
            raise SerializationError(f"read_idx: {path} decompresses to more than the limit of {limit} bytes")
        if not inflater.eof:
            raise SerializationError(f"read_idx: {path}: the gzip stream is truncated")
        rest = inflater.unused_data
    return bytes(out)


def _read_bytes(path: Path, limit: int) -> bytes:
    data = read_bytes(path, component="read_idx", max_bytes=limit)
    return _gunzip(data, path, limit) if data[:2] == b"\x1f\x8b" else data


def read_idx(path: str | os.PathLike[str], *, max_bytes: int = IDX_MAX_BYTES) -> np.ndarray:
    """The array stored in an IDX file (gzip or raw), in native byte order.

    The file is read once, must be a regular file, and neither it nor its decompressed
    content may exceed ``max_bytes``; a malformed file raises :class:`SerializationError`.
    """
    p = Path(path)
    data = _read_bytes(p, max_bytes)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise SerializationError(f"{p}: not an IDX file (bad magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise SerializationError(f"{p}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_TYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        raise SerializationError(f"{p}: IDX shape {shape} needs {expected} bytes of data, found {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX (gzip when ``compress`` or the name ends in ``.gz``)."""
    p = Path(path)
    arr = np.asarray(array)
    big = arr.dtype.newbyteorder(">").str
    if big not in _CODES:
        raise SerializationError(f"write_idx: dtype {arr.dtype} has no IDX type code")
    payload = bytes([0, 0, _CODES[big], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload += np.ascontiguousarray(arr, dtype=big).tobytes()
    if compress if compress is not None else p.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(p, payload)
