"""Strict JSON files for tokenizers: atomic writes; reads that name the file and the problem."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plait.core.errors import SerializationError
from plait.core.files import atomic_write_text

__all__ = ["write_json", "read_json", "require", "check_header", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; duplicate keys are an error (json would silently keep the last)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SerializationError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SerializationError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise SerializationError(f"{path}: {exc}") from None
    except RecursionError:  # a nesting bomb such as [[[[...]]]]
        raise SerializationError(f"{path}: JSON nested too deeply to be a tokenizer file") from None


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
