"""Pre-tokenisation patterns: the text is cut into pieces by one regex before BPE runs.

``"gpt2"`` is GPT-2's pattern (tiktoken's ``r50k``/``gpt2``), written without the possessive
quantifiers and the ``\\s++$`` branch: those only save backtracking and split every string
the same way (the tests check this against tiktoken), and this spelling runs faster on the
``regex`` module. ``"gpt4"`` is tiktoken's ``cl100k_base`` pattern verbatim.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from plait.core.errors import ConfigError

from .errors import TokenizerError

if TYPE_CHECKING:
    import regex

__all__ = ["GPT2_PATTERN", "GPT4_PATTERN", "PATTERNS", "compile_pattern", "resolve_pattern", "split_pieces"]

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s"""
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
PATTERNS: dict[str, str] = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "cl100k": GPT4_PATTERN}

# A custom regex may backtrack catastrophically (``(?:a|aa)+c`` on "aaaa..."): it gets a
# time budget of this many seconds plus SECONDS_PER_CHAR per character, ~100x what a sane
# pattern needs, and raises instead of hanging.
BASE_SECONDS, SECONDS_PER_CHAR = 1.0, 1e-5


def resolve_pattern(pattern: str) -> str:
    """A pattern name (``"gpt2"``, ``"gpt4"``) or a custom regex -> the regex source."""
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"pattern must be 'gpt2', 'gpt4' or a regex string, got {pattern!r}")
    source = PATTERNS.get(pattern, pattern)
    compile_pattern(source)  # fail early on a bad custom regex
    return source


@lru_cache(maxsize=16)
def compile_pattern(source: str) -> regex.Pattern[str]:
    """Compile a pattern; a custom one gets a one-character fallback branch.

    The fallback (``|[\\s\\S]``) makes every character land in some piece, so text the
    custom regex does not match is still encoded (one piece per character) and round-trips.
    """
    import regex  # noqa: PLC0415 - loaded by the first tokenizer that needs it, not at import

    try:
        compiled = regex.compile(source)
    except regex.error as exc:
        raise ConfigError(f"pattern {source!r} is not a valid regex: {exc}") from None
    if compiled.groups:
        raise ConfigError(f"pattern {source!r} has capturing groups; write them as (?:...)")
    if source in (GPT2_PATTERN, GPT4_PATTERN):  # these cover every character already
        return compiled
    return regex.compile(f"(?:{source})|[\\s\\S]")


def split_pieces(compiled: regex.Pattern[str], text: str) -> list[str]:
    """The pieces of ``text`` (``compiled.findall``); a custom regex runs under a time budget."""
    if compiled.pattern in (GPT2_PATTERN, GPT4_PATTERN):
        return compiled.findall(text)
    budget = BASE_SECONDS + SECONDS_PER_CHAR * len(text)
    try:
        return compiled.findall(text, timeout=budget)
    except TimeoutError:
        raise TokenizerError(
            f"the pre-tokenisation regex {compiled.pattern!r} ran over its {budget:.1f} s budget on a text of "
            f"{len(text)} characters (catastrophic backtracking?); simplify the pattern"
        ) from None
