"""GPT-2's printable stand-in for every byte, so byte tokens can be written as JSON strings.

``bytes_to_unicode()`` maps each of the 256 byte values to one printable character: the
printable Latin-1 bytes map to themselves, the rest (controls, space, ...) to U+0100 onward.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["bytes_to_unicode", "token_to_str", "str_to_token"]


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """``{byte: char}`` for all 256 bytes, identical to GPT-2's ``encoder.py``."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\N{INVERTED EXCLAMATION MARK}"), ord("\N{NOT SIGN}") + 1))
        + list(range(ord("\N{REGISTERED SIGN}"), ord("\N{LATIN SMALL LETTER Y WITH DIAERESIS}") + 1))
    )
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


@lru_cache(maxsize=1)
def _unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def token_to_str(token: bytes) -> str:
    """The GPT-2 printable spelling of a byte token (as in ``encoder.json``)."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def str_to_token(text: str) -> bytes | None:
    """Inverse of :func:`token_to_str`; ``None`` when ``text`` has a character outside the map."""
    table = _unicode_to_bytes()
    try:
        return bytes(table[c] for c in text)
    except KeyError:
        return None
