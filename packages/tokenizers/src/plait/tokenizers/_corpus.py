"""Reading training corpora: texts and files, counted once into pieces."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Union

from plait.core.errors import ConfigError
from plait.core.reading import read_text

from ._special import special_regex
from .patterns import split_pieces

if TYPE_CHECKING:
    import regex

__all__ = ["TextsOrPaths", "iter_texts", "count_pieces", "replace_surrogates"]

TextsOrPaths = Union[str, "os.PathLike[str]", Iterable[Union[str, "os.PathLike[str]"]]]


def iter_texts(texts_or_paths: TextsOrPaths) -> Iterator[str]:
    """Yield each text: a ``str`` is text itself, an ``os.PathLike`` (``pathlib.Path``) a UTF-8 file.

    A single ``str`` or path counts as one item (it is not iterated character by character).
    """
    items = [texts_or_paths] if isinstance(texts_or_paths, (str, os.PathLike)) else texts_or_paths
    for item in items:
        if isinstance(item, str):
            yield item
        elif isinstance(item, os.PathLike):
            yield read_text_file(Path(item))
        else:
            raise ConfigError(f"training data must be str texts or pathlib.Path files, got {type(item).__name__}")


def read_text_file(path: Path) -> str:
    """A UTF-8 corpus file: one bounded read of a regular file (FIFOs and devices are refused)."""
    return read_text(path, component="tokenizer corpus")


def replace_surrogates(text: str) -> str:
    """Lone surrogates -> U+FFFD; a high+low surrogate pair -> the character it encodes (tiktoken's rule)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def count_pieces(texts: Iterable[str], pattern: regex.Pattern[str], special: Iterable[str]) -> dict[bytes, int]:
    """Pre-tokenise every text (special-token text cut out first) and count pieces as UTF-8 bytes."""
    cutter = special_regex(frozenset(special)) if special else None
    counts: Counter[str] = Counter()
    for text in texts:
        for chunk in cutter.split(text) if cutter is not None else (text,):
            counts.update(split_pieces(pattern, chunk))
    as_bytes: dict[bytes, int] = {}
    for piece, n in counts.items():
        try:
            data = piece.encode("utf-8")
        except UnicodeEncodeError:
            data = replace_surrogates(piece).encode("utf-8")
        as_bytes[data] = as_bytes.get(data, 0) + n
    return as_bytes
