"""Hostile tokenizer files: hypothesis mutates valid files; each either loads into a working
tokenizer or raises SerializationError naming the file. Nothing else escapes.

tests/tokenizers/test_tokenizers_bpe_files.py covers one hand-made corruption per rule;
this file throws random structural edits, raw byte damage and nesting bombs at the BPE,
char and word-vectorizer JSON files and at GPT-2's ``encoder.json`` + ``vocab.bpe``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.core import registry
from plait.core.errors import PlaitError, SerializationError
from plait.tokenizers import ByteLevelBPETokenizer, CharTokenizer, WordVectorizer, load_tokenizer

FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TEXT = "the cat sat on the mat, ünïcödé 日本 😀 <|endoftext|> tail"
CORPUS = Path(__file__).parent / "corpus" / "tokenizers"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, dict]:
    """The parsed JSON of one valid file per tokenizer format."""
    folder = tmp_path_factory.mktemp("tok")
    bpe = ByteLevelBPETokenizer().train(["the cat sat on the mat " * 10], 270, special_tokens=["<|endoftext|>"])
    char = CharTokenizer(unknown="unk").fit(["the cat sat on the mat"])
    word = WordVectorizer(max_tokens=20, output_sequence_length=6).adapt(["the cat sat on the mat"])
    payloads = {}
    for name, tok in {"bpe": bpe, "char": char, "word": word}.items():
        tok.save(folder / f"{name}.json")
        payloads[name] = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    payloads["gpt2_encoder"] = {**bpe.get_vocab()}
    payloads["gpt2_merges"] = payloads["bpe"]["merges"]
    return payloads


LOADERS = {"bpe": ByteLevelBPETokenizer.load, "char": CharTokenizer.load, "word": WordVectorizer.load}


def _exercise(tok: Any) -> None:
    """A tokenizer that loaded works: byte-level BPE round-trips any text; a char tokenizer
    round-trips text made of its own characters; a word vectorizer its own words; every id
    is in ``[0, vocab_size)``."""
    if isinstance(tok, ByteLevelBPETokenizer):
        ids = tok.encode(TEXT, allowed_special="all")
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == TEXT
    elif isinstance(tok, CharTokenizer):
        chars = [c for c in tok.get_vocab() if len(c) == 1 and c not in tok.special_tokens]
        text = "".join(chars * 2)
        ids = tok.encode(text)
        assert all(0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == text
    else:
        ids = tok.encode(TEXT)
        assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
        if tok.output_sequence_length is not None:
            assert len(ids) == tok.output_sequence_length
        words = [w for w in tok.get_vocabulary()[2:] if tok.tokenize(w) == [w]][:5]
        if tok.output_sequence_length is None or tok.output_sequence_length >= len(words):
            assert tok.decode(tok.encode(" ".join(words))) == " ".join(words)


def _load_or_serialization_error(loader: Any, path: Path) -> None:
    try:
        tok = loader(path)
    except SerializationError as exc:
        assert str(path) in str(exc), exc
        return
    _exercise(tok)


# -- structural edits of the parsed JSON ---------------------------------------------------------
_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
) | st.just([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]) | st.just(10**300)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in list(node.items())[:40]:  # big vocabularies: the first entries are enough
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:40]):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(payload: Any, data: st.DataObject) -> Any:
    doc = json.loads(json.dumps(payload))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return json.loads(json.dumps(data.draw(_junk, label="whole document")))
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = data.draw(st.sampled_from(["replace", "delete", "duplicate", "rename"]), label="op")
        last = path[-1]
        if op == "replace":
            parent[last] = json.loads(json.dumps(data.draw(_junk, label="value")))  # fresh objects
        elif op == "delete":
            del parent[last]
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[last])))
        elif op == "rename" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=4), label="new key")] = parent.pop(last)
    return doc


@pytest.mark.parametrize("fmt", list(LOADERS))
@FUZZ
@given(data=st.data())
def test_mutated_tokenizer_json(saved, tmp_path, fmt, data):
    path = tmp_path / f"{fmt}.json"
    path.write_text(json.dumps(_mutate(saved[fmt], data), ensure_ascii=data.draw(st.booleans())), encoding="utf-8")
    _load_or_serialization_error(LOADERS[fmt], path)
    _load_or_serialization_error(load_tokenizer, path)


@pytest.mark.parametrize("fmt", list(LOADERS))
@FUZZ
@given(data=st.data())
def test_byte_damaged_tokenizer_json(saved, tmp_path, fmt, data):
    blob = bytearray(json.dumps(saved[fmt]).encode())
    pos = data.draw(st.integers(0, len(blob) - 1), label="pos")
    op = data.draw(st.sampled_from(["truncate", "flip", "insert"]), label="op")
    if op == "truncate":
        del blob[pos:]
    elif op == "flip":
        blob[pos] ^= data.draw(st.integers(1, 255), label="mask")
    else:
        blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=6), label="bytes")
    path = tmp_path / f"{fmt}.json"
    path.write_bytes(bytes(blob))
    _load_or_serialization_error(LOADERS[fmt], path)


@pytest.mark.parametrize("bomb", ["[" * 100_000, '{"a":' * 100_000, '{"format": ' + "[" * 50_000])
@pytest.mark.parametrize("fmt", list(LOADERS))
def test_nesting_bombs(tmp_path, fmt, bomb):
    path = tmp_path / "bomb.json"
    path.write_text(bomb, encoding="utf-8")
    with pytest.raises(SerializationError, match="bomb.json"):
        LOADERS[fmt](path)


def test_huge_numbers_and_non_utf8(tmp_path):
    for text, match in [('{"format": "plait.byte_level_bpe", "version": ' + "9" * 5000 + "}", "bomb.json"),
                        ('{"format": "plait.byte_level_bpe", "version": 1e999}', "version"),
                        ('{"format": "plait.char", "version": NaN}', "version")]:
        path = tmp_path / "bomb.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(SerializationError, match=match):
            load_tokenizer(path)
    (tmp_path / "latin1.json").write_bytes('{"format": "plait.char", "chars": ["é"]}'.encode("latin-1"))
    with pytest.raises(SerializationError, match="not UTF-8"):
        CharTokenizer.load(tmp_path / "latin1.json")


@pytest.mark.parametrize("length", [2**20 + 1, 10**12])
def test_word_vectorizer_file_asking_for_huge_rows_is_refused_at_load(saved, tmp_path, length):
    path = tmp_path / "word.json"
    payload = {**saved["word"], "config": {**saved["word"]["config"], "output_sequence_length": length}}
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(SerializationError, match="output_sequence_length"):
        WordVectorizer.load(path)


# -- GPT-2's encoder.json + vocab.bpe ---------------------------------------------------------
def _write_gpt2(folder: Path, encoder: Any, merges: list) -> tuple[Path, Path]:
    enc, bpe = folder / "encoder.json", folder / "vocab.bpe"
    enc.write_text(json.dumps(encoder), encoding="utf-8")
    bpe.write_text("#version: 0.2\n" + "".join(" ".join(map(str, m)) + "\n" for m in merges), encoding="utf-8")
    return enc, bpe


def test_synthetic_gpt2_files_load(saved, tmp_path):
    tok = ByteLevelBPETokenizer.from_gpt2_files(*_write_gpt2(tmp_path, saved["gpt2_encoder"], saved["gpt2_merges"]))
    assert tok.decode(tok.encode(TEXT, allowed_special="all")) == TEXT


@FUZZ
@given(data=st.data())
def test_mutated_gpt2_encoder(saved, tmp_path, data):
    enc, bpe = _write_gpt2(tmp_path, _mutate(saved["gpt2_encoder"], data), saved["gpt2_merges"])
    try:
        tok = ByteLevelBPETokenizer.from_gpt2_files(enc, bpe)
    except SerializationError as exc:
        assert "encoder.json" in str(exc) or "vocab.bpe" in str(exc)
        return
    _exercise(tok)


_line = st.text(st.characters(codec="utf-8"), max_size=12)


@FUZZ
@given(data=st.data())
def test_mutated_gpt2_merges(saved, tmp_path, data):
    merges: list = [list(m) for m in saved["gpt2_merges"]]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        pos = data.draw(st.integers(0, len(merges)), label="pos")
        merges.insert(pos, [data.draw(_line, label="line")])
    enc, bpe = _write_gpt2(tmp_path, saved["gpt2_encoder"], merges)
    if data.draw(st.booleans(), label="raw bytes"):
        bpe.write_bytes(bpe.read_bytes() + data.draw(st.binary(min_size=1, max_size=8), label="tail"))
    try:
        tok = ByteLevelBPETokenizer.from_gpt2_files(enc, bpe)
    except SerializationError as exc:
        assert "vocab.bpe" in str(exc) or "encoder.json" in str(exc)
        return
    _exercise(tok)


def test_gpt2_files_missing_or_binary(saved, tmp_path):
    enc, bpe = _write_gpt2(tmp_path, saved["gpt2_encoder"], saved["gpt2_merges"])
    with pytest.raises(SerializationError, match="absent.bpe"):
        ByteLevelBPETokenizer.from_gpt2_files(enc, tmp_path / "absent.bpe")
    bpe.write_bytes(b"#version: 0.2\n\xff\xfe \x80\n")
    with pytest.raises(SerializationError, match="vocab.bpe"):
        ByteLevelBPETokenizer.from_gpt2_files(enc, bpe)
    enc.write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(SerializationError, match="encoder.json"):
        ByteLevelBPETokenizer.from_gpt2_files(enc, bpe)


# -- the stored corpus ------------------------------------------------------------------------
def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.json")) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_file(path):
    if path.name.startswith("ok_"):
        _exercise(load_tokenizer(path))
        return
    with pytest.raises(SerializationError) as err:
        load_tokenizer(path)
    assert str(path) in str(err.value)


# -- what a loaded tokenizer is then fed -----------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(saved, tmp_path_factory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("loaded")
    out = {}
    for fmt, payload in saved.items():
        if fmt in LOADERS:
            (folder / f"{fmt}.json").write_text(json.dumps(payload), encoding="utf-8")
            out[fmt] = LOADERS[fmt](folder / f"{fmt}.json")
    return out


_ids = st.lists(st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, 255, 256, 269, 270]) | st.booleans()
                | st.floats(allow_nan=True) | st.none() | st.text(max_size=2), max_size=8)


@pytest.mark.parametrize("fmt", list(LOADERS))
@FUZZ
@given(ids=_ids)
def test_decode_of_arbitrary_ids(loaded, fmt, ids):
    tok = loaded[fmt]
    try:
        text = tok.decode(ids)
    except PlaitError:
        return
    assert isinstance(text, str)
    assert all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < tok.vocab_size for i in ids)


@pytest.mark.parametrize("fmt", ["bpe", "char"])
@FUZZ
@given(text=st.text(st.characters(codec=None, exclude_categories=()), max_size=30))
def test_encode_of_arbitrary_text(loaded, fmt, text):
    tok = loaded[fmt]
    try:
        ids = tok.encode(text)
    except PlaitError:
        return
    if fmt == "bpe" and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert tok.decode(ids) == text  # byte-level BPE round-trips any valid text


def test_a_catastrophically_backtracking_custom_regex_raises_instead_of_hanging(monkeypatch):
    from plait.tokenizers import patterns
    from plait.tokenizers.errors import TokenizerError

    monkeypatch.setattr(patterns, "BASE_SECONDS", 0.2)
    tok = ByteLevelBPETokenizer(pattern=r"(?:a|aa)+c")
    assert tok.decode(tok.encode("aac aaa")) == "aac aaa"  # a sane input is fine
    with pytest.raises(TokenizerError, match=r"\(\?:a\|aa\)\+c.*budget.*catastrophic backtracking"):
        tok.encode("a" * 60)
    with pytest.raises(TokenizerError, match="budget"):
        ByteLevelBPETokenizer().train(["a" * 60], 260, pattern=r"(?:a|aa)+c")


# -- special files: refused at once, never a hang or a MemoryError ---------------------------------
FIRST_PARTY_TOKENIZERS = sorted(n for n in registry.tokenizers.names() if registry.tokenizers.origin(n) == "plait-tokenizers")


def _readers() -> dict[str, Any]:
    """Every way a tokenizer file is read: each registered tokenizer's load, load_tokenizer, GPT-2
    files, training corpora."""
    out = {f"{name}.load": registry.tokenizers.get(name).load for name in FIRST_PARTY_TOKENIZERS}
    out["load_tokenizer"] = load_tokenizer
    out["from_gpt2_files(encoder.json)"] = lambda p: ByteLevelBPETokenizer.from_gpt2_files(p, p)
    out["char corpus"] = lambda p: CharTokenizer.from_corpus(p)
    out["bpe corpus"] = lambda p: ByteLevelBPETokenizer().train(p, 260)
    return out


READERS = _readers()


def _special(tmp: Path, kind: str) -> Path | None:
    import os

    path = tmp / "special.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        if not hasattr(os, "mkfifo"):
            return None
        os.mkfifo(path)
    elif kind == "symlink to /dev/zero":
        if not os.path.exists("/dev/zero"):
            return None
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["directory", "FIFO", "symlink to /dev/zero"])
@pytest.mark.parametrize("reader", list(READERS))
def test_special_files_are_refused_without_blocking(tmp_path, within_deadline, reader, kind):
    path = _special(tmp_path, kind)
    if path is None:
        pytest.skip(f"cannot make a {kind} here")
    outcome = within_deadline(READERS[reader], path)
    assert isinstance(outcome, SerializationError), repr(outcome)
    assert str(path) in str(outcome)


def test_gpt2_merges_file_that_is_a_fifo_is_refused(saved, tmp_path, within_deadline):
    import os

    if not hasattr(os, "mkfifo"):
        pytest.skip("needs os.mkfifo")
    enc, bpe = _write_gpt2(tmp_path, saved["gpt2_encoder"], saved["gpt2_merges"])
    bpe.unlink()
    os.mkfifo(bpe)
    outcome = within_deadline(ByteLevelBPETokenizer.from_gpt2_files, enc, bpe)
    assert isinstance(outcome, SerializationError) and "vocab.bpe" in str(outcome) and "FIFO" in str(outcome)


def test_tokenizer_files_are_bounded(saved, tmp_path):
    from plait.tokenizers._json import read_json

    path = tmp_path / "char.json"
    path.write_text(json.dumps(saved["char"]), encoding="utf-8")
    with pytest.raises(SerializationError, match="more than the limit of 10 bytes"):
        read_json(path, max_bytes=10)
