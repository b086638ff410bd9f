"""WordVectorizer: Keras TextVectorization-like behaviour and files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plait.core.errors import ConfigError, SerializationError
from plait.tokenizers import NotTrainedError, TokenIdError, WordVectorizer, load_tokenizer

CORPUS = ["The cat sat.", "the DOG sat!", "A cat, a dog; the end"]


def test_vocabulary_by_frequency_then_first_appearance() -> None:
    vec = WordVectorizer().adapt(CORPUS)
    # the:3, then count-2 words in first-appearance order (cat, sat, dog, a), then end:1
    assert vec.get_vocabulary() == ["", "[UNK]", "the", "cat", "sat", "dog", "a", "end"]
    assert vec.vocabulary_size() == 8


def test_call_pads_to_longest_and_maps_oov() -> None:
    vec = WordVectorizer().adapt(CORPUS)
    out = vec(["the cat", "a zebra sat there"])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[2, 3, 0, 0], [6, 1, 4, 1]])
    np.testing.assert_array_equal(vec("The END."), [2, 7])
    assert vec.decode(out[1]) == "a [UNK] sat [UNK]"
    assert vec.decode(out[0]) == "the cat"


def test_sequence_length_pads_and_truncates() -> None:
    vec = WordVectorizer(output_sequence_length=3).adapt(CORPUS)
    np.testing.assert_array_equal(vec(["the", "the cat sat a dog"]), [[2, 0, 0], [2, 3, 4]])
    assert vec.encode("cat") == [3, 0, 0]
    assert vec([]).shape == (0, 3)


def test_max_tokens_keeps_most_frequent() -> None:
    vec = WordVectorizer(max_tokens=4).adapt(CORPUS)
    assert vec.get_vocabulary() == ["", "[UNK]", "the", "cat"]
    assert vec.encode("the dog") == [2, 1]


@pytest.mark.parametrize(
    ("standardize", "expected"),
    [
        ("lower_and_strip_punctuation", ["hello", "world", "its"]),
        ("lower", ["hello,", "world!", "it's"]),
        ("strip_punctuation", ["Hello", "World", "Its"]),
        (None, ["Hello,", "World!", "It's"]),
    ],
)
def test_standardize_options(standardize: str | None, expected: list[str]) -> None:
    assert WordVectorizer(standardize=standardize).tokenize("Hello, World! It's") == expected


def test_character_split() -> None:
    vec = WordVectorizer(split="character", standardize="lower").adapt(["abba"])
    assert vec.get_vocabulary() == ["", "[UNK]", "a", "b"]
    assert vec.encode("Abc") == [2, 3, 1]


def test_given_vocabulary_and_errors() -> None:
    vec = WordVectorizer(vocabulary=["", "[UNK]", "x", "y"])
    assert vec.get_vocabulary() == ["", "[UNK]", "x", "y"]
    assert WordVectorizer(vocabulary=["x", "y"]).get_vocabulary() == ["", "[UNK]", "x", "y"]
    with pytest.raises(ConfigError, match="repeats"):
        WordVectorizer(vocabulary=["x", "x"])
    with pytest.raises(ConfigError, match="max_tokens"):
        WordVectorizer(max_tokens=2)
    with pytest.raises(ConfigError, match="standardize"):
        WordVectorizer(standardize="upper")
    with pytest.raises(ConfigError, match="output_sequence_length"):
        WordVectorizer(output_sequence_length=0)
    with pytest.raises(NotTrainedError):
        WordVectorizer().encode("x")
    with pytest.raises(TokenIdError, match="id 4 at position 0"):
        vec.decode([4])


def test_save_load(tmp_path: Path) -> None:
    vec = WordVectorizer(max_tokens=6, output_sequence_length=5, standardize="lower").adapt(CORPUS)
    vec.save(tmp_path / "w.json")
    for loaded in (WordVectorizer.load(tmp_path / "w.json"), load_tokenizer(tmp_path / "w.json")):
        assert isinstance(loaded, WordVectorizer)
        assert loaded.get_config() == vec.get_config()
        assert loaded.get_vocabulary() == vec.get_vocabulary()
        np.testing.assert_array_equal(loaded(CORPUS), vec(CORPUS))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: p["config"].update(split="sentence"), "split must be"),
        (lambda p: p["config"].update(colour="red"), "unknown config key"),
        (lambda p: p.update(vocabulary=["x", "y"]), "must start with the pad and OOV"),
        (lambda p: p["vocabulary"].append("the"), "repeats"),
        (lambda p: p["config"].update(max_tokens=3), "more than max_tokens"),
        (lambda p: p.update(vocabulary="the cat"), "'vocabulary' must be a list"),
        (lambda p: p.update(format="plait.char"), "expected 'plait.word_vectorizer'"),
    ],
)
def test_corrupt_files(tmp_path: Path, edit, match: str) -> None:
    path = tmp_path / "w.json"
    WordVectorizer().adapt(CORPUS).save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    edit(payload)
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(SerializationError, match=match):
        WordVectorizer.load(path)
