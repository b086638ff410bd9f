"""Bounded, validated reads of the files Plait loads.

Every file Plait reads goes through :func:`read_bytes` (or :func:`read_text` /
:func:`read_json`, built on it):

* **one open per file**, with ``O_NONBLOCK`` so that a FIFO cannot block; ``fstat`` on
  that descriptor refuses anything but a regular file (directories, FIFOs, sockets,
  devices, symlinks to ``/dev/zero``) before a byte is read;
* **bounded**: a file larger than ``max_bytes`` is refused from its size, and at most
  ``max_bytes + 1`` bytes are ever read (a file that grows while being read is refused);
* **every OSError** becomes a :class:`~plait.core.errors.SerializationError` (or the
  subclass given as ``error``) naming the component and the path.

:func:`parse_json` / :func:`read_json` are strict where :mod:`json` is lenient: the bytes
must be UTF-8, an object may not repeat a key, ``NaN``/``Infinity`` (and floats that
overflow to infinity) are refused, integers longer than :data:`MAX_INT_DIGITS` digits are
refused before any ``int()`` conversion, nesting bombs are refused, and the top-level type
is checked. Errors name the file and the field (``model_args.layers[2]``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import SerializationError

__all__ = [
    "JSON_MAX_BYTES",
    "MAX_INT_DIGITS",
    "TEXT_MAX_BYTES",
    "decode_utf8",
    "open_regular",
    "parse_json",
    "read_bytes",
    "read_json",
    "read_text",
]

#: Default bound of a JSON file (configs, tokenizers, state files): 256 MiB.
JSON_MAX_BYTES = 256 * 1024 * 1024
#: Default bound of a text file (corpora, merge lists): 4 GiB.
TEXT_MAX_BYTES = 4 * 1024**3
#: Longest integer accepted in a JSON file (2**128 has 39 digits).
MAX_INT_DIGITS = 40

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_CHUNK = 1 << 24


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _limit(max_bytes: int) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise TypeError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
    return max_bytes


@contextlib.contextmanager
def open_regular(
    path: str | os.PathLike[str],
    *,
    component: str,
    max_bytes: int,
    error: type[SerializationError] = SerializationError,
    what: str = "file",
) -> Iterator[tuple[BinaryIO, int]]:
    """Yield ``(file, size)`` for the regular file ``path``, checked before any byte is read.

    The file is opened once with ``O_NONBLOCK`` (a FIFO cannot block) and ``fstat``-ed:
    anything but a regular file, or a file over ``max_bytes``, raises ``error``. OSErrors
    raised while the block reads from the file are turned into ``error`` too. ``what``
    names the file in messages (``"weights file"``).
    """
    limit = _limit(max_bytes)
    try:
        fd = os.open(os.fspath(path), _FLAGS)
    except OSError as exc:
        why = f"{what} not found" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        if isinstance(exc, IsADirectoryError) or (isinstance(exc, PermissionError) and Path(path).is_dir()):
            why = "it is a directory, not a file"
        raise error(f"{component}: cannot read the {what} {path}: {why}") from None
    except (TypeError, ValueError) as exc:  # a path with a NUL byte, or not a path at all
        raise error(f"{component}: cannot read the {what} {path!r}: {exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{component}: cannot read the {what} {path}: it is {_kind(st.st_mode)}, expected a regular file")
        if st.st_size > limit:
            raise error(f"{component}: {path} has {st.st_size} bytes, more than the limit of {limit} bytes")
        f = os.fdopen(fd, "rb", closefd=True)  # buffered: read(n) loops until n bytes or EOF
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise error(f"{component}: cannot read the {what} {path}: {exc.strerror or exc}") from None
        raise
    with f:
        try:
            yield f, st.st_size  # type: ignore[misc]
        except OSError as exc:
            raise error(f"{component}: cannot read the {what} {path}: {exc.strerror or exc}") from None
        except MemoryError:
            raise error(f"{component}: {path} does not fit in memory") from None


def read_bytes(
    path: str | os.PathLike[str],
    *,
    component: str,
    max_bytes: int,
    error: type[SerializationError] = SerializationError,
    what: str = "file",
) -> bytes:
    """The whole content of the regular file ``path``, read through one descriptor.

    Args:
        path: the file.
        component: who reads it, for messages (``"tokenizer"``, ``"load_safetensors"``, ...).
        max_bytes: the largest size accepted; a larger file is refused without reading it.
        error: default :class:`SerializationError`; the subclass to raise.
        what: default ``"file"``; how messages name the file (``"weights file"``).

    Raises:
        error: the file is missing or unreadable, is not a regular file, or exceeds ``max_bytes``.
    """
    limit = _limit(max_bytes)
    with open_regular(path, component=component, max_bytes=limit, error=error, what=what) as (f, size):
        data = f.read(size + 1)
        if len(data) > size:  # the file grew while we read it: read on, up to the bound
            parts = [data]
            total = len(data)
            while total <= limit:
                part = f.read(min(_CHUNK, limit + 1 - total))
                if not part:
                    break
                parts.append(part)
                total += len(part)
            data = b"".join(parts)
    if len(data) > limit:
        raise error(f"{component}: {path} has more than the limit of {limit} bytes")
    return data


def read_text(
    path: str | os.PathLike[str],
    *,
    component: str,
    max_bytes: int = TEXT_MAX_BYTES,
    error: type[SerializationError] = SerializationError,
) -> str:
    """The content of ``path`` decoded as strict UTF-8 (bounded like :func:`read_bytes`).

    Args:
        path: the file.
        component: who reads it, for messages (``"CharTokenizer"``).
        max_bytes: default :data:`TEXT_MAX_BYTES` (4 GiB); a larger file is refused unread.
        error: default :class:`SerializationError`; the subclass to raise.

    Raises:
        SerializationError: (or ``error``) the file is missing, unreadable, not a regular
            file, larger than ``max_bytes``, or not valid UTF-8.
    """
    data = read_bytes(path, component=component, max_bytes=max_bytes, error=error)
    return decode_utf8(data, source=path, component=component, error=error)


def decode_utf8(data: bytes, *, source: Any, component: str, error: type[SerializationError] = SerializationError) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{component}: {source} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class _Refused:
    """Stands in for a value JSON allows but Plait refuses, until its field is named."""

    __slots__ = ("value", "why")

    def __init__(self, why: str, value: Any = None) -> None:
        self.why, self.value = why, value  # value: +-inf where the caller allows it


_TYPE_NAMES = {dict: "a JSON object", list: "a list", str: "a string", int: "an integer", float: "a number", bool: "true/false",
               type(None): "null"}


def _describe(kinds: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def _settle(root: Any, allow_infinity: Collection[str]) -> tuple[str, str] | None:
    """Put the allowed infinities in place; ``(field, why)`` of the first other refused value.

    Iterative (no recursion): the document may be deep.
    """
    stack: list[tuple[Any, Any, Any, str]] = [(root, None, None, "")]
    while stack:
        node, parent, key, at = stack.pop()
        if isinstance(node, _Refused):
            if node.value is not None and isinstance(parent, dict) and key in allow_infinity:
                parent[key] = node.value
                continue
            return at, node.why
        if isinstance(node, dict):
            stack.extend((v, node, k, f"{at}.{k}" if at else str(k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, node, i, f"{at}[{i}]") for i, v in reversed(list(enumerate(node))))
    return None


def parse_json(
    data: bytes | str,
    *,
    source: Any,
    component: str,
    expect: type | tuple[type, ...] | None = dict,
    error: type[SerializationError] = SerializationError,
    allow_infinity: Collection[str] = (),
) -> Any:
    """Parse JSON strictly (see the module docstring); ``source`` names the file in messages.

    Args:
        data: the bytes read (must be UTF-8) or already decoded text.
        source: the file (or other origin) the data came from.
        component: who reads it, for messages.
        expect: default ``dict``; the type(s) the top level must have (``None``: any).
        error: default :class:`SerializationError`; the subclass to raise.
        allow_infinity: default ``()``; object keys whose value may be ``Infinity``/``-Infinity``
            (as ``json.dumps`` writes a best-so-far score of ``inf``); ``NaN`` is never accepted.

    Raises:
        SerializationError: (or ``error``) not UTF-8, not JSON, a repeated key, a refused
            number, nesting too deep, or a top level of another type than ``expect``.
    """
    text = data if isinstance(data, str) else decode_utf8(data, source=source, component=component, error=error)
    refused: list[bool] = []

    def refuse(why: str) -> _Refused:
        refused.append(True)
        return _Refused(why)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            out[key] = refuse("the key appears twice in one object") if key in out else value
        return out

    def constant(name: str) -> Any:
        refused.append(True)
        return _Refused(f"{name} is not a finite number", {"Infinity": math.inf, "-Infinity": -math.inf}.get(name))

    def real(s: str) -> Any:
        x = float(s)
        return x if math.isfinite(x) else refuse(f"{s[:40]} overflows to infinity")

    def integer(s: str) -> Any:
        digits = len(s) - s.startswith("-")
        return int(s) if digits <= MAX_INT_DIGITS else refuse(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=real, parse_int=integer)
    except json.JSONDecodeError as exc:
        raise error(f"{component}: {source} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:  # a nesting bomb such as [[[[...]]]]
        raise error(f"{component}: {source}: JSON nested too deeply") from None
    except (ValueError, OverflowError) as exc:
        raise error(f"{component}: {source}: cannot parse JSON: {exc}") from None
    if refused:
        problem = _settle(value, frozenset(allow_infinity))
        if problem is not None:
            raise error(f"{component}: {source}: field {problem[0] or '(top level)'}: {problem[1]}")
    if expect is not None:
        kinds = expect if isinstance(expect, tuple) else (expect,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise error(f"{component}: {source}: the top level must be {_describe(kinds)}, got {_describe((type(value),))}")
    return value


def read_json(
    path: str | os.PathLike[str],
    *,
    component: str,
    max_bytes: int = JSON_MAX_BYTES,
    expect: type | tuple[type, ...] | None = dict,
    error: type[SerializationError] = SerializationError,
    allow_infinity: Collection[str] = (),
) -> Any:
    """:func:`read_bytes` then :func:`parse_json`: a bounded, strict JSON file.

    Args:
        path: the file.
        component: who reads it, for messages.
        max_bytes: default :data:`JSON_MAX_BYTES` (256 MiB); a larger file is refused unread.
        expect: default ``dict``; the type(s) the top level must have (``None``: any).
        error: default :class:`SerializationError`; the subclass to raise.
        allow_infinity: default ``()``; object keys whose value may be ``Infinity``.

    Raises:
        SerializationError: (or ``error``) any problem :func:`read_bytes` or
            :func:`parse_json` reports.
    """
    data = read_bytes(path, component=component, max_bytes=max_bytes, error=error)
    return parse_json(data, source=path, component=component, expect=expect, error=error, allow_infinity=allow_infinity)
