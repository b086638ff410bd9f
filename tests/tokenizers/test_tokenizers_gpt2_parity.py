"""GPT-2's files through ByteLevelBPETokenizer give tiktoken's gpt2 ids, id for id."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.tokenizers import GPT4_PATTERN, ByteLevelBPETokenizer, DisallowedSpecialTokenError

HARD_STRINGS = [
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "a\n\n\nb",
    "  \t \n  x  ",
    "trailing spaces   ",
    "   leading",
    "tab\tand\r\nCRLF\r\n",
    "I'm you're we've they'll she'd it's don't",
    "I'M YOU'RE WE'VE THEY'LL SHE'D IT'S DON'T",
    "'s 't 're 've 'm 'll 'd ''s '''",
    "digits 0 12 345 6789 1234567890 3.14159 1,000,000",
    "٣٤٥ ४२ 一二三 Ⅻ",
    "Hello мир Γειά σου שלום مرحبا नमस्ते",
    "日本語のテキスト、中文文本。한국어 텍스트",
    "emoji 😀😃 👍🏽 🇫🇷",
    "family 👨‍👩‍👧‍👦 and 🏳️‍🌈 ZWJ sequences",
    "combining: e\u0301 a\u0308 n\u0303 \u0065\u0301\u0327 Z\u0351\u0362\u0334",
    "control \x00\x01\x07\x1b[0m\x7f chars",
    "\u200b\u200c\u200d\ufeff zero-width",
    "mixed12abc!!??...---___",
    "<|endoftext|> as plain text",
    "    def f(x):\n        return x ** 2\n",
    "\u3000ideographic\u00a0nbsp\u2028line-sep",
    "a" * 300,
    "ab" * 200 + " " + "🙂" * 50,
]


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_hard_strings_match_tiktoken(gpt2: ByteLevelBPETokenizer, tiktoken_gpt2, text: str) -> None:
    ids = gpt2.encode(text, disallowed_special=())
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(ids) == text


def test_shakespeare_matches_tiktoken(gpt2: ByteLevelBPETokenizer, tiktoken_gpt2, shakespeare: str) -> None:
    text = shakespeare[:300_000]
    ids = gpt2.encode(text)
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(ids) == text
    assert gpt2.encode_batch(text.split("\n\n")[:50]) == tiktoken_gpt2.encode_ordinary_batch(text.split("\n\n")[:50])


_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)) | st.sampled_from(list(" \t\n\r'sdmtlvre0123456789aA")),
    max_size=60,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXT)
def test_random_text_matches_tiktoken(gpt2: ByteLevelBPETokenizer, tiktoken_gpt2, text: str) -> None:
    ids = gpt2.encode(text, disallowed_special=())
    assert ids == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(ids) == text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=30))
def test_lone_surrogates_match_tiktoken(gpt2: ByteLevelBPETokenizer, tiktoken_gpt2, text: str) -> None:
    """tiktoken replaces lone surrogates by U+FFFD before encoding; so do we (the default policy)."""
    assert gpt2.encode(text, disallowed_special=()) == tiktoken_gpt2.encode(text, disallowed_special=())


def test_gpt4_pattern_matches_tiktoken(tiktoken_with_pattern, gpt2: ByteLevelBPETokenizer, shakespeare: str) -> None:
    """The cl100k pre-tokenisation regex, checked with GPT-2's ranks under both libraries."""
    oracle = tiktoken_with_pattern(GPT4_PATTERN)
    ours = ByteLevelBPETokenizer.from_vocab(
        {t: i for t, i in gpt2._vocab.tokens.items()}, gpt2.merges, "gpt4", gpt2.special_tokens
    )
    for text in [*HARD_STRINGS, shakespeare[:50_000]]:
        assert ours.encode(text, disallowed_special=()) == oracle.encode_ordinary(text)


def test_special_tokens_follow_tiktoken(gpt2: ByteLevelBPETokenizer, tiktoken_gpt2) -> None:
    text = "Hello<|endoftext|> world<|endoftext|>"
    assert gpt2.encode(text, allowed_special="all") == tiktoken_gpt2.encode(text, allowed_special="all")
    assert gpt2.encode(text, allowed_special={"<|endoftext|>"}).count(50256) == 2
    assert gpt2.encode(text, disallowed_special=()) == tiktoken_gpt2.encode(text, disallowed_special=())
    with pytest.raises(ValueError):
        tiktoken_gpt2.encode(text)
    with pytest.raises(DisallowedSpecialTokenError, match="<\\|endoftext\\|>.*index 5"):
        gpt2.encode(text)
    assert gpt2.decode(gpt2.encode(text, allowed_special="all")) == text


def test_gpt2_vocabulary_shape(gpt2: ByteLevelBPETokenizer) -> None:
    assert gpt2.vocab_size == 50257
    assert gpt2.special_tokens == {"<|endoftext|>": 50256}
    assert len(gpt2.merges) == 50000
    assert gpt2.merges[0] == (b" ", b"t")
    assert gpt2.token_to_id(b" the") == 262
    assert gpt2.id_to_token(50256) == b"<|endoftext|>"
