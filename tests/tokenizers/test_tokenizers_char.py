"""CharTokenizer: vocabulary from a corpus, unknown-character policies, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plait.core.errors import ConfigError, SerializationError
from plait.tokenizers import CharTokenizer, NotTrainedError, TokenIdError, UnknownCharacterError, load_tokenizer


def test_vocab_is_sorted_characters_after_specials(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello\n", encoding="utf-8")
    tok = CharTokenizer(special_tokens=["<pad>"]).fit([corpus, "wörld"])
    assert tok.get_vocab() == {c: i for i, c in enumerate(["<pad>", "\n", "d", "e", "h", "l", "o", "r", "w", "ö"])}
    assert tok.encode("hello") == [4, 3, 5, 5, 6]
    assert tok.decode([0, 4, 3]) == "<pad>he"
    assert tok.decode(np.array([0, 4, 3]), skip_special=True) == "he"


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=50))
def test_roundtrip_on_its_own_corpus(text: str) -> None:
    tok = CharTokenizer.from_corpus(text or "x")
    assert tok.decode(tok.encode(text)) == text


def test_unknown_policies() -> None:
    assert CharTokenizer.from_corpus("abc", unknown="skip").encode("abzc") == [0, 1, 2]
    unk = CharTokenizer.from_corpus("abc", unknown="unk", unk_token="?")
    assert unk.encode("abzc") == [1, 2, 0, 3] and unk.decode(unk.encode("azb")) == "a?b"
    with pytest.raises(UnknownCharacterError, match="'z' \\(U\\+007A\\) at index 2"):
        CharTokenizer.from_corpus("abc").encode("abzc")
    with pytest.raises(ConfigError, match="unknown must be"):
        CharTokenizer(unknown="ignore")  # type: ignore[arg-type]


def test_errors() -> None:
    tok = CharTokenizer.from_corpus("abc")
    with pytest.raises(TokenIdError, match="id 3 at position 1"):
        tok.decode([0, 3])
    with pytest.raises(TokenIdError, match="id -1"):
        tok.decode([-1])
    with pytest.raises(NotTrainedError):
        CharTokenizer().encode("a")
    with pytest.raises(ConfigError, match="single characters"):
        CharTokenizer(chars=["ab"])


def test_save_load(tmp_path: Path) -> None:
    tok = CharTokenizer.from_corpus("hello world", unknown="unk", special_tokens=["<bos>"])
    tok.save(tmp_path / "char.json")
    for loaded in (CharTokenizer.load(tmp_path / "char.json"), load_tokenizer(tmp_path / "char.json")):
        assert isinstance(loaded, CharTokenizer)
        assert loaded.get_vocab() == tok.get_vocab()
        assert loaded.encode("hello?") == tok.encode("hello?")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: p.update(chars=["a", "a"]), "twice"),
        (lambda p: p.update(chars=["b", "a"]), "sorted"),
        (lambda p: p.update(chars=["ab"]), "single characters"),
        (lambda p: p.update(chars=[1]), "strings only"),
        (lambda p: p.update(special_tokens=[]), "unk_token"),
        (lambda p: p.pop("chars"), "missing key 'chars'"),
        (lambda p: p.update(unknown="maybe"), "unknown must be"),
    ],
)
def test_corrupt_files(tmp_path: Path, edit, match: str) -> None:
    path = tmp_path / "char.json"
    CharTokenizer.from_corpus("ab", unknown="unk").save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    edit(payload)
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(SerializationError, match=match):
        CharTokenizer.load(path)
