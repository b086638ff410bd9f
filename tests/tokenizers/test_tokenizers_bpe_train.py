"""Training byte-level BPE: the incremental trainer agrees with a from-scratch recount."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.core.errors import ConfigError, SerializationError
from plait.tokenizers import ByteLevelBPETokenizer
from plait.tokenizers.trainer import train_merges


def reference_merges(word_counts: dict[bytes, int], num_merges: int, min_frequency: int) -> list[tuple[int, int]]:
    """Textbook BPE: recount every pair before each merge; same tie rule (smallest bytes pair)."""
    words = {tuple(w): n for w, n in word_counts.items()}
    token_bytes = [bytes([b]) for b in range(256)]
    merges = []
    for _ in range(num_merges):
        counts: Counter[tuple[int, int]] = Counter()
        for symbols, n in words.items():
            for pair in zip(symbols, symbols[1:]):
                counts[pair] += n
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], token_bytes[p[0]], token_bytes[p[1]]))
        if counts[best] < min_frequency:
            break
        new_id = len(token_bytes)
        token_bytes.append(token_bytes[best[0]] + token_bytes[best[1]])
        merges.append(best)
        merged = {}
        for symbols, n in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return merges


@settings(max_examples=60, deadline=None)
@given(
    words=st.dictionaries(st.binary(min_size=1, max_size=8), st.integers(1, 5), max_size=25),
    num_merges=st.integers(0, 30),
    min_frequency=st.integers(1, 3),
)
def test_incremental_trainer_matches_recount(words: dict[bytes, int], num_merges: int, min_frequency: int) -> None:
    assert train_merges(words, num_merges, min_frequency) == reference_merges(words, num_merges, min_frequency)


def test_trainer_matches_recount_on_real_text(shakespeare: str) -> None:
    tok = ByteLevelBPETokenizer()
    counts = Counter(tok._regex.findall(shakespeare[:20_000]))
    words = {w.encode(): n for w, n in counts.items()}
    assert train_merges(words, 120) == reference_merges(words, 120, 2)


def test_repeated_symbols_and_ties() -> None:
    # "aaaa": (a,a) is counted 3 times but merges into 2 tokens; ties broken by bytes order.
    merges = train_merges({b"aaaa": 1, b"cd": 3, b"ab": 3}, 3, 1)
    assert merges == [(97, 97), (97, 98), (99, 100)]  # counts 3,3,3: "aa" < "ab" < "cd"
    assert train_merges({b"aaaa": 1, b"cd": 3, b"ab": 3}, 10, 1)[3] == (256, 256)


def test_train_gives_vocab_size_and_roundtrips(shakespeare: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(shakespeare[:100_000], encoding="utf-8")
    tok = ByteLevelBPETokenizer().train([corpus], vocab_size=400, special_tokens=["<|endoftext|>", "<pad>"])
    assert tok.vocab_size == 400
    assert tok.special_tokens == {"<|endoftext|>": 398, "<pad>": 399}
    text = shakespeare[100_000:120_000]
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len(ids) < 0.6 * len(text.encode())  # merges compress
    again = ByteLevelBPETokenizer().train(shakespeare[:100_000], 400, ["<|endoftext|>", "<pad>"])
    assert again.merges == tok.merges  # a str is a text, a Path a file; deterministic


def test_special_text_is_cut_out_of_the_corpus() -> None:
    text = "<|sep|>" * 50 + " hello world" * 5
    tok = ByteLevelBPETokenizer().train([text], 300, special_tokens=["<|sep|>"], min_frequency=1)
    assert all(b"|" not in left + right for left, right in tok.merges)
    assert tok.encode("<|sep|> hello", allowed_special="all")[0] == tok.special_tokens["<|sep|>"]


def test_min_frequency_stops_early() -> None:
    tok = ByteLevelBPETokenizer().train(["ab ab ab ab cd"], 1000, min_frequency=3)
    assert tok.merges == [(b"a", b"b"), (b" ", b"ab")]
    assert tok.vocab_size == 258


def test_gpt4_pattern_training() -> None:
    tok = ByteLevelBPETokenizer().train(["12345 12345 hello\n\nhello"], 300, pattern="gpt4", min_frequency=1)
    assert tok.encode("12345")[0] == tok.token_to_id(b"123")  # digits in groups of at most 3
    assert tok.decode(tok.encode("12345 hi")) == "12345 hi"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vocab_size": 100}, "too small"),
        ({"vocab_size": 257, "special_tokens": ["<a>", "<b>"]}, "too small"),
        ({"vocab_size": 300, "min_frequency": 0}, "min_frequency"),
        ({"vocab_size": 300, "special_tokens": ["<a>", "<a>"]}, "twice"),
        ({"vocab_size": 300, "pattern": "(unclosed"}, "not a valid regex"),
        ({"vocab_size": 300, "pattern": "(a)|b"}, "capturing"),
    ],
)
def test_bad_training_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ByteLevelBPETokenizer().train(["some text"], **kwargs)


def test_missing_training_file(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="nope.txt"):
        ByteLevelBPETokenizer().train([tmp_path / "nope.txt"], 300)
    with pytest.raises(ConfigError, match="bytes"):
        ByteLevelBPETokenizer().train([b"raw bytes"], 300)


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    ByteLevelBPETokenizer().train(["ab ab cd cd ef"], 260, show_progress=True, min_frequency=1)
    assert "BPE merges" in capsys.readouterr().err
    ByteLevelBPETokenizer().train(["ab ab cd cd ef"], 260, show_progress=None, min_frequency=1)  # not a TTY here
    assert capsys.readouterr().err == ""


def test_tokenizers_satisfy_core_protocol() -> None:
    from plait.core import TokenizerProtocol
    from plait.tokenizers import CharTokenizer, WordVectorizer

    cases = [
        (ByteLevelBPETokenizer(), "a b"),
        (CharTokenizer.from_corpus("ab"), "ab"),
        (WordVectorizer().adapt(["a b"]), "a b"),
    ]
    for tok, text in cases:
        assert isinstance(tok, TokenizerProtocol)
        assert tok.decode(tok.encode(text)) == text


def test_merges_spelling_the_same_token_share_an_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.tokenizers import bpe

    a, b, c = b"abc"
    merges = [(a, b), (256, c), (b, c), (a, 258)]  # "abc" twice: (ab, c) and (a, bc)
    monkeypatch.setattr(bpe, "train_merges", lambda *args, **kwargs: merges)
    tok = ByteLevelBPETokenizer().train(["abc"], 260, special_tokens=["<s>"])
    assert tok.vocab_size == 260 and tok.special_tokens == {"<s>": 259}
    assert tok.encode("abc") == [257] and tok.encode("xbc") == [ord("x"), 258]
    assert tok.decode([257, 258]) == "abcbc"
