"""Encoding and decoding: round trips, surrogates, bad ids, special-token rules, cache."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.tokenizers import (
    ByteLevelBPETokenizer,
    DisallowedSpecialTokenError,
    SpecialTokenError,
    TokenIdError,
    TokenizerError,
    _merge,
)

CORPUS = "Hello world! It's a test, isn't it? 123 4567 — naïve café 日本語 😀 \n\n  spaced   out\t\n" * 10


@pytest.fixture(scope="module")
def tok() -> ByteLevelBPETokenizer:
    return ByteLevelBPETokenizer().train([CORPUS], 320, special_tokens=["<|endoftext|>", "<|pad|>"], min_frequency=1)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80))
def test_decode_encode_roundtrip(tok: ByteLevelBPETokenizer, text: str) -> None:
    assert tok.decode(tok.encode(text, disallowed_special=())) == text


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=40))
def test_surrogatepass_roundtrips_every_string(tok: ByteLevelBPETokenizer, text: str) -> None:
    ids = tok.encode(text, disallowed_special=(), surrogates="surrogatepass")
    assert tok.decode(ids, errors="surrogatepass") == text


def test_lone_surrogate_policy(tok: ByteLevelBPETokenizer) -> None:
    text = "a\ud800b \udfff \ud83d\ude00"  # two lone surrogates, then a pair spelling 😀
    assert tok.decode(tok.encode(text)) == "a\ufffdb \ufffd 😀"
    assert tok.encode(text) == tok.encode("a\ufffdb \ufffd 😀")
    assert tok.decode(tok.encode(text, surrogates="surrogatepass"), errors="surrogatepass") == text
    with pytest.raises(TokenizerError, match="surrogates"):
        tok.encode(text, surrogates="ignore")  # type: ignore[arg-type]


def test_invalid_utf8_decodes_with_replacement(tok: ByteLevelBPETokenizer) -> None:
    ids = tok.encode("é")  # two bytes
    head = [tok.token_to_id(b"\xc3")] if len(ids) == 2 else [tok._vocab.byte_ids[0xC3]]
    assert tok.decode(head) == "\ufffd"
    assert tok.decode_bytes(head) == b"\xc3"
    with pytest.raises(TokenizerError, match="not valid UTF-8"):
        tok.decode(head, errors="strict")
    with pytest.raises(TokenizerError, match="error handler"):
        tok.decode(head, errors="nonsense")


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([1, 2, 320], "token id 320 \\(at position 2\\) is out of range \\[0, 320\\)"),
        ([-1], "token id -1"),
        ([1, "2"], "item 1 is '2'"),
        ([1.0], "item 0 is 1.0"),
        ([None], "item 0 is None"),
        ([1, True], "item 1 is True"),
        (np.array([False, True]), "item 0 is False"),
    ],
)
def test_bad_ids_raise(tok: ByteLevelBPETokenizer, ids: list, match: str) -> None:
    with pytest.raises(TokenIdError, match=match):
        tok.decode(ids)


def test_decode_accepts_numpy(tok: ByteLevelBPETokenizer) -> None:
    ids = tok.encode("Hello world!")
    assert tok.decode(np.array(ids, dtype=np.int64)) == "Hello world!"
    assert tok.decode([np.int32(i) for i in ids]) == "Hello world!"
    assert tok.decode_batch([ids, []]) == ["Hello world!", ""]


def test_special_token_rules(tok: ByteLevelBPETokenizer) -> None:
    eot, pad = tok.special_tokens["<|endoftext|>"], tok.special_tokens["<|pad|>"]
    text = "a<|endoftext|>b<|pad|>"
    assert tok.encode(text, allowed_special="all") == [*tok.encode("a"), eot, *tok.encode("b"), pad]
    with pytest.raises(DisallowedSpecialTokenError, match="<\\|pad\\|>"):
        tok.encode(text, allowed_special={"<|endoftext|>"})
    ids = tok.encode(text, allowed_special={"<|endoftext|>"}, disallowed_special=())
    assert eot in ids and pad not in ids and tok.decode(ids) == text
    assert tok.encode_ordinary(text) == tok.encode(text, disallowed_special=())
    with pytest.raises(SpecialTokenError, match="unknown special token.*<\\|nope\\|>"):
        tok.encode("x", allowed_special={"<|nope|>"})
    with pytest.raises(SpecialTokenError, match="'all' or a set"):
        tok.encode("x", allowed_special="<|pad|>")
    with pytest.raises(TokenizerError, match="expects a str"):
        tok.encode(b"bytes")  # type: ignore[arg-type]


def test_overlapping_special_tokens_prefer_longest() -> None:
    tok = ByteLevelBPETokenizer(special_tokens=["<s>", "<s>x"])
    assert tok.encode("<s>x<s>", allowed_special="all") == [257, 256]


def test_vocabulary_accessors(tok: ByteLevelBPETokenizer) -> None:
    assert tok.vocab_size == 320 and len(tok.get_vocab()) == 318
    last = b"".join(tok.merges[-1])
    assert tok.token_to_id(last) == 317 and tok.id_to_token(317) == last
    assert tok.token_to_id("<|pad|>") == 319
    with pytest.raises(TokenIdError):
        tok.id_to_token(320)
    with pytest.raises(TokenizerError, match="not a token"):
        tok.token_to_id(b"\x00\x00\x00zzz")
    assert "vocab_size=320" in repr(tok)


def test_cache_is_bounded_and_transparent(tok: ByteLevelBPETokenizer) -> None:
    small = ByteLevelBPETokenizer.from_vocab(tok._vocab.tokens, tok.merges, tok.pattern, tok.special_tokens)
    small.cache_size = 3
    text = "one two three four five six seven"
    assert small.encode(text) == tok.encode(text)
    assert len(small._cache) <= 3
    assert small.encode_batch([text, "x"]) == [tok.encode(text), tok.encode("x")]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=400) | st.text(alphabet="abcdefgh ing", max_size=400).map(str.encode))
def test_long_piece_heap_merge_matches_list_merge(gpt2_vocab_parts, data: bytes) -> None:
    ranks, merged_ids, byte_ids = gpt2_vocab_parts
    ids = [byte_ids[b] for b in data]
    expected = _merge.apply_merges(list(ids[: _merge.LONG_PIECE - 1]), ranks, merged_ids)
    assert _merge._apply_merges_heap(ids[: _merge.LONG_PIECE - 1], ranks, merged_ids) == expected
    whole = _merge._apply_merges_heap(list(ids), ranks, merged_ids)
    assert whole == _list_merge_unbounded(list(ids), ranks, merged_ids)


def _list_merge_unbounded(ids: list[int], ranks: dict, merged_ids: list[int]) -> list[int]:
    while len(ids) > 1:
        pair_ranks = [ranks.get(p, 1 << 62) for p in zip(ids, ids[1:])]
        r = min(pair_ranks)
        if r == 1 << 62:
            break
        i = pair_ranks.index(r)
        ids[i : i + 2] = [merged_ids[r]]
    return ids


@pytest.fixture(scope="module")
def gpt2_vocab_parts(gpt2: ByteLevelBPETokenizer) -> tuple:
    return gpt2._vocab.ranks, gpt2._vocab.merged_ids, gpt2._vocab.byte_ids


def test_very_long_piece_is_fast_and_exact(gpt2: ByteLevelBPETokenizer, tiktoken_gpt2) -> None:
    import random
    import time

    rng = random.Random(0)
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000))
    assert gpt2.encode(text) == tiktoken_gpt2.encode_ordinary(text)
    long_text = text * 20  # one 60k-letter piece: quadratic merging would take minutes
    start = time.perf_counter()
    ids = gpt2.encode(long_text)
    assert time.perf_counter() - start < 5.0
    assert gpt2.decode(ids) == long_text
    assert long_text not in gpt2._cache


def test_custom_pattern_covers_unmatched_text() -> None:
    tok = ByteLevelBPETokenizer(pattern=r"\w+").train(["hello hello, world!"], 270, min_frequency=1)
    text = "hello, ünmatched ☃ text!"
    assert tok.decode(tok.encode(text)) == text


def test_untrained_tokenizer_is_byte_level() -> None:
    tok = ByteLevelBPETokenizer()
    assert tok.encode("hé") == [104, 0xC3, 0xA9]
    assert tok.vocab_size == 256
