"""The reads that model folders and checkpoints make, in one place, over :mod:`plait.core.reading`.

Every file is opened once, must be a regular file (a FIFO or a device is refused, not
waited on), and is read whole into memory up to a size limit; JSON is strict (duplicate
keys, NaN/Infinity, non-UTF-8 and absurd numbers are refused, naming the field).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import reading
from .errors import PlaitError, SerializationError

__all__ = ["JSON_LIMIT", "parse_json", "read_file_bytes"]

JSON_LIMIT = 64 * 1024 * 1024


def read_file_bytes(path: str | os.PathLike[str], limit: int, *, error: type[PlaitError] = SerializationError,
                    what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), read through one open file."""
    if not os.path.lexists(path):
        raise error(f"{Path(path)}: {what} not found")
    return reading.read_bytes(path, component=what, max_bytes=limit, error=error)  # type: ignore[arg-type]


def parse_json(data: bytes, path: str | os.PathLike[str], *, error: type[PlaitError] = SerializationError) -> Any:
    """Strict JSON from ``data`` (the bytes of ``path``), errors naming the file and the field."""
    return reading.parse_json(data, source=path, component="JSON file", expect=None, error=error)  # type: ignore[arg-type]
