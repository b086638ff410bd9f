"""Small bundled data: scikit-learn's 8x8 digits and plain text files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from plait.core import SerializationError
from plait.core.reading import TEXT_MAX_BYTES, read_bytes

__all__ = ["load_digits", "load_text"]


def load_digits(flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: 1,797 8x8 digit images, float32 in [0, 1] ((N, 8, 8) or (N, 64)), int64 labels.

    Needs scikit-learn, which ships the data (``pip install 'plait-train[digits]'``).
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("load_digits needs scikit-learn, an optional dependency: pip install 'plait-train[digits]'") from exc
    bunch = sk_load_digits()
    x = bunch.data.astype(np.float32) / np.float32(16.0)
    return (x if flatten else x.reshape(-1, 8, 8)), bunch.target.astype(np.int64)


def load_text(path: str | os.PathLike[str], encoding: str = "utf-8", *, max_bytes: int = TEXT_MAX_BYTES) -> str:
    """The whole text of ``path`` (e.g. tinyshakespeare.txt).

    Raises FileNotFoundError if there is no such file, and SerializationError if it is not
    a regular file (a FIFO, a device), is larger than ``max_bytes`` or is not valid ``encoding``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"load_text: no file at {p}")
    data = read_bytes(p, component="load_text", max_bytes=max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SerializationError(f"load_text: {p} is not {encoding} text ({exc.reason} at byte {exc.start})") from None
    except LookupError:
        raise SerializationError(f"load_text: unknown encoding {encoding!r}") from None
