"""Small bundled data: scikit-learn's 8x8 digits and plain text files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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


def load_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    """The whole text of ``path`` (e.g. tinyshakespeare.txt)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"load_text: no file at {p}")
    return p.read_text(encoding=encoding)
