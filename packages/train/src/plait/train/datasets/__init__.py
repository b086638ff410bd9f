"""Datasets: (Fashion-)MNIST from IDX files, scikit-learn's digits, text files."""

from __future__ import annotations

from .download import DownloadError, download
from .idx import read_idx, write_idx
from .mnist import data_home, load_fashion_mnist, load_mnist
from .small import load_digits, load_text

__all__ = [
    "DownloadError",
    "data_home",
    "download",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_text",
    "read_idx",
    "write_idx",
]
