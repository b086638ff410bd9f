"""The reads that model folders and checkpoints make, in one place.

Every file is opened once, must be a regular file (a FIFO or a device is refused, not
waited on), and is read whole into memory up to a size limit; JSON is strict (duplicate
keys, NaN/Infinity, non-UTF-8 and absurd numbers are refused).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import PlaitError, SerializationError

__all__ = ["JSON_LIMIT", "parse_json", "read_file_bytes"]

JSON_LIMIT = 64 * 1024 * 1024


def read_file_bytes(path: str | os.PathLike[str], limit: int, *, error: type[PlaitError] = SerializationError,
                    what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), read through one open file."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except OSError as exc:
        raise error(f"{p}: cannot open the {what}: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{p}: expected a regular {what}, found a special file or folder")
        if st.st_size > limit:
            raise error(f"{p}: the {what} is {st.st_size} bytes, more than the limit of {limit}")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise error(f"{p}: the {what} grew past the limit of {limit} bytes while being read")
        return data
    except OSError as exc:
        raise error(f"{p}: cannot read the {what}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


class _NonFinite:
    def __init__(self, name: str) -> None:
        self.name = name


def _find_non_finite(node: Any, where: str) -> tuple[str, str] | None:
    stack = [(node, where)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, _NonFinite):
            return at, value.name
        if isinstance(value, dict):
            stack.extend((v, f"{at}.{k}" if at else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(value))
    return None


def parse_json(data: bytes, path: str | os.PathLike[str], *, error: type[PlaitError] = SerializationError) -> Any:
    """Strict JSON from ``data`` (the bytes of ``path``), errors naming the file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_constant=_NonFinite)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (RecursionError, ValueError) as exc:  # nesting bombs, numbers past Python's digit limit, duplicates
        raise error(f"{path}: not a usable JSON document ({type(exc).__name__}: {exc})") from None
    bad = _find_non_finite(doc, "")
    if bad is not None:
        raise error(f"{path}: {bad[0] or 'the document'} is {bad[1]}, which is not a JSON number")
    return doc
