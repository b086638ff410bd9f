"""Special tokens: which ones an ``encode`` call may emit, and cutting text around them.

The rules are tiktoken's. ``allowed_special`` ("all" or a set) names the special tokens that
are matched in the text (before pre-tokenisation) and emitted as their ids.
``disallowed_special`` ("all" = every special token not allowed, or a set) names those whose
text raises :class:`DisallowedSpecialTokenError` if it appears; special tokens that are
neither allowed nor disallowed are encoded as the plain text they spell.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Union

from .errors import DisallowedSpecialTokenError, SpecialTokenError

if TYPE_CHECKING:
    import regex

__all__ = ["SpecialSpec", "resolve_special", "split_on_special", "special_regex"]

SpecialSpec = Union[Literal["all"], Collection[str]]


def _as_set(spec: SpecialSpec, known: Mapping[str, int], what: str) -> frozenset[str]:
    if spec == "all":
        return frozenset(known)
    if isinstance(spec, str):
        raise SpecialTokenError(f"{what} must be 'all' or a set of special tokens, got the string {spec!r}")
    chosen = frozenset(spec)
    unknown = sorted(chosen - known.keys())
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise SpecialTokenError(f"{what} names unknown special token(s) {unknown}; this tokenizer has: {have}")
    return chosen


def resolve_special(
    known: Mapping[str, int], allowed: SpecialSpec, disallowed: SpecialSpec
) -> tuple[frozenset[str], frozenset[str]]:
    """-> (allowed, disallowed) as sets of known special tokens."""
    allowed_set = _as_set(allowed, known, "allowed_special")
    if disallowed == "all":
        return allowed_set, frozenset(known) - allowed_set
    return allowed_set, _as_set(disallowed, known, "disallowed_special")


@lru_cache(maxsize=64)
def special_regex(tokens: frozenset[str]) -> regex.Pattern[str]:
    """One alternation of the tokens, longest first so a token that prefixes another loses."""
    import regex  # noqa: PLC0415 - loaded on first use, not at import

    return regex.compile("|".join(regex.escape(t) for t in sorted(tokens, key=lambda t: (-len(t), t))))


def check_disallowed(text: str, disallowed: frozenset[str]) -> None:
    if not disallowed:
        return
    found = special_regex(disallowed).search(text)
    if found is not None:
        raise DisallowedSpecialTokenError(
            f"the text contains the special token {found.group()!r} at index {found.start()}, which is not "
            f"allowed: pass allowed_special={{{found.group()!r}}} (or 'all') to encode it as a special token, "
            f"or disallowed_special=() to encode it as plain text"
        )


def split_on_special(text: str, allowed: frozenset[str]) -> Iterator[tuple[str, str | None]]:
    """Yield ``(plain_text, special_or_None)`` chunks covering ``text`` in order."""
    if not allowed:
        yield text, None
        return
    start = 0
    for match in special_regex(allowed).finditer(text):
        yield text[start : match.start()], match.group()
        start = match.end()
    yield text[start:], None
