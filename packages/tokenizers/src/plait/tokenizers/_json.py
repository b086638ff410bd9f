"""Strict JSON files for tokenizers: atomic writes; reads that name the file and the problem."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from plait.core.errors import SerializationError
from plait.core.files import atomic_write_text
from plait.core.reading import JSON_MAX_BYTES
from plait.core.reading import read_json as core_read_json

__all__ = ["write_json", "read_json", "require", "check_header", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")


def read_json(path: str | os.PathLike[str], *, max_bytes: int = JSON_MAX_BYTES) -> Any:
    """Parse a tokenizer JSON file: one bounded read of a regular file (a FIFO or ``/dev/zero``
    is refused), strict UTF-8 JSON (repeated keys, NaN, absurd integers and nesting bombs
    are refused, naming the file and the field)."""
    return core_read_json(path, component="tokenizer", max_bytes=max_bytes, expect=None)


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true/false"}


def require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: Any, optional: bool = False) -> Any:
    """``obj[key]`` checked to be of ``kind`` (``bool`` is not accepted as ``int``)."""
    if key not in obj:
        if optional:
            return None
        raise SerializationError(f"{path}: missing key {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        if optional and value is None:
            return None
        want = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise SerializationError(f"{path}: {key!r} must be {want}, got {json.dumps(value)[:60]}")
    return value


def check_header(payload: Any, path: Any, expected_format: str) -> None:
    if not isinstance(payload, dict):
        raise SerializationError(f"{path}: the top level must be a JSON object")
    fmt = require(payload, "format", str, path)
    if fmt != expected_format:
        raise SerializationError(f"{path}: format is {fmt!r}, expected {expected_format!r}")
    version = require(payload, "version", int, path)
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"{path}: unsupported version {version} (this plait-tokenizers reads {FORMAT_VERSION})"
        )
