"""Saving and loading byte-level BPE: one JSON file; every corruption is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plait.core.errors import SerializationError
from plait.tokenizers import ByteLevelBPETokenizer

CORPUS = "the cat sat on the mat; the dog ate the hat. " * 20 + "Ünïcödé 日本 😀😀"


@pytest.fixture(scope="module")
def small() -> ByteLevelBPETokenizer:
    return ByteLevelBPETokenizer().train([CORPUS], 300, special_tokens=["<|endoftext|>"], min_frequency=2)


def _payload(tok: ByteLevelBPETokenizer, tmp_path: Path) -> dict:
    path = tmp_path / "tok.json"
    tok.save(path)
    return json.loads(path.read_text(encoding="utf-8"))


def test_save_load_roundtrip(small: ByteLevelBPETokenizer, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tok.json"
    small.save(path)
    loaded = ByteLevelBPETokenizer.load(path)
    assert loaded.merges == small.merges
    assert loaded.special_tokens == small.special_tokens
    assert loaded.pattern == small.pattern
    text = CORPUS + "<|endoftext|> unseen words"
    assert loaded.encode(text, allowed_special="all") == small.encode(text, allowed_special="all")
    assert [p.name for p in path.parent.iterdir()] == ["tok.json"]  # no temp file left behind
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["format"] == "plait.byte_level_bpe" and payload["version"] == 1
    assert set(payload) == {"format", "version", "pattern", "vocab", "merges", "special_tokens"}


def test_gpt2_save_load_roundtrip(gpt2: ByteLevelBPETokenizer, tmp_path: Path) -> None:
    path = tmp_path / "gpt2.json"
    gpt2.save(path)
    loaded = ByteLevelBPETokenizer.load(path)
    text = "Hello world, it's 2024!  🤖\n\n"
    assert loaded.encode(text) == gpt2.encode(text)
    assert loaded.get_vocab() == gpt2.get_vocab()


def _corrupt(payload: dict, edit: str) -> dict | list | str:
    p = json.loads(json.dumps(payload))
    first = next(iter(p["vocab"]))
    if edit == "missing vocab":
        del p["vocab"]
    elif edit == "merges not list":
        p["merges"] = {"a": "b"}
    elif edit == "id is string":
        p["vocab"][first] = "0"
    elif edit == "duplicate id":
        p["vocab"]["Ġt"] = p["vocab"]["Ġa"] if "Ġa" in p["vocab"] else 1
    elif edit == "id out of range":
        p["vocab"][first] = 10_000
    elif edit == "merge unknown token":
        p["merges"].append(["zz", "qq"])
    elif edit == "merge result unknown":
        p["merges"].append(["!", "!"])
    elif edit == "merge not pair":
        p["merges"][0] = ["a", "b", "c"]
    elif edit == "missing byte":
        del p["vocab"]["!"]
    elif edit == "bad pattern":
        p["pattern"] = "(unclosed"
    elif edit == "wrong format":
        p["format"] = "something.else"
    elif edit == "future version":
        p["version"] = 99
    elif edit == "bad spelling":
        p["vocab"]["a b"] = 5
    elif edit == "special id bool":
        p["special_tokens"]["<|endoftext|>"] = True
    elif edit == "top level list":
        return [1, 2, 3]
    return p


EDITS = {
    "missing vocab": "missing key 'vocab'",
    "merges not list": "'merges' must be a list",
    "id is string": "not an integer",
    "duplicate id": "used twice",
    "id out of range": "out of range",
    "merge unknown token": "not in the vocabulary",
    "merge result unknown": "makes b'!!'",
    "merge not pair": "merge 0 must be a pair",
    "missing byte": "single-byte token",
    "bad pattern": "not a valid regex",
    "wrong format": "expected 'plait.byte_level_bpe'",
    "future version": "unsupported version 99",
    "bad spelling": "not a byte-level token spelling",
    "special id bool": "not an integer",
    "top level list": "top level must be a JSON object",
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_corrupt_files_raise_serialization_error(small: ByteLevelBPETokenizer, tmp_path: Path, edit: str) -> None:
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(_corrupt(_payload(small, tmp_path), edit)), encoding="utf-8")
    with pytest.raises(SerializationError, match=EDITS[edit]) as info:
        ByteLevelBPETokenizer.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"format": "plait.byte_level_bpe", "version": 1,', "not valid JSON"),
        ('{"format": "a", "format": "b"}', "appears twice"),
        ("", "not valid JSON"),
    ],
)
def test_unparsable_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "tok.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SerializationError, match=match):
        ByteLevelBPETokenizer.load(path)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match="cannot read"):
        ByteLevelBPETokenizer.load(tmp_path / "absent.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SerializationError, match="not UTF-8"):
        ByteLevelBPETokenizer.load(tmp_path / "bin.json")


def test_corrupt_gpt2_files(gpt2_files: tuple[Path, Path], tmp_path: Path) -> None:
    encoder, merges = gpt2_files
    bad_merges = tmp_path / "vocab.bpe"
    bad_merges.write_text("#version: 0.2\nĠ t\nthis line has three\n", encoding="utf-8")
    with pytest.raises(SerializationError, match="line 3"):
        ByteLevelBPETokenizer.from_gpt2_files(encoder, bad_merges)
    unknown = tmp_path / "unknown.bpe"
    unknown.write_text("#version: 0.2\nĠ t\nĠt ĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠĠ\n", encoding="utf-8")
    with pytest.raises(SerializationError, match="not in the vocabulary"):
        ByteLevelBPETokenizer.from_gpt2_files(encoder, unknown)
