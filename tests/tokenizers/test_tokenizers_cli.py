"""``plait tokenizer train|encode|decode`` through plait.core.cli.main, and the registry entries."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from plait.core import registry
from plait.core.cli import main
from plait.tokenizers import ByteLevelBPETokenizer, CharTokenizer, WordVectorizer, load_tokenizer

TEXT = "the quick brown fox jumps over the lazy dog. " * 30


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_train_encode_decode(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tok.json"
    args = ["tokenizer", "train", str(corpus), "-o", str(out), "--vocab-size", "270", "--special", "<|eot|>"]
    assert main([*args, "--no-progress"]) == 0
    assert "vocab_size=270" in capsys.readouterr().out
    tok = ByteLevelBPETokenizer.load(out)
    assert tok.special_tokens == {"<|eot|>": 269}

    text = "the lazy fox<|eot|>"
    assert main(["tokenizer", "encode", str(out), "--text", text, "--allowed-special", "all"]) == 0
    ids = [int(i) for i in capsys.readouterr().out.split()]
    assert ids == tok.encode(text, allowed_special="all") and ids[-1] == 269
    assert main(["tokenizer", "decode", str(out), *map(str, ids)]) == 0
    assert capsys.readouterr().out == text + "\n"  # a trailing newline, as print gives
    assert main(["tokenizer", "decode", "-n", str(out), ",".join(map(str, ids))]) == 0
    assert capsys.readouterr().out == text  # exact bytes with -n

    assert main(["tokenizer", "encode", str(out), "--input", str(corpus), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == tok.encode(TEXT)


def test_stdin_and_json_ids(corpus: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "tok.json"
    ByteLevelBPETokenizer().train([corpus], 270).save(out)
    monkeypatch.setattr(sys, "stdin", io.StringIO("over the dog"))
    assert main(["tokenizer", "encode", str(out), "--json"]) == 0
    ids = capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO(ids))
    assert main(["tokenizer", "decode", str(out)]) == 0
    assert capsys.readouterr().out == "over the dog\n"


@pytest.mark.parametrize(("kind", "cls"), [("char", CharTokenizer), ("word_vectorizer", WordVectorizer)])
def test_train_other_kinds(corpus: Path, tmp_path: Path, kind: str, cls: type, capsys) -> None:  # noqa: ANN001
    out = tmp_path / f"{kind}.json"
    assert main(["tokenizer", "train", str(corpus), "-o", str(out), "--type", kind]) == 0
    tok = load_tokenizer(out)
    assert isinstance(tok, cls)
    capsys.readouterr()
    assert main(["tokenizer", "encode", str(out), "--text", "the dog"]) == 0
    ids = capsys.readouterr().out.split()
    assert main(["tokenizer", "decode", str(out), *ids]) == 0
    assert capsys.readouterr().out == "the dog\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["encode", "{tok}", "--text", "a<|eot|>"], "special token '<|eot|>'"),
        (["encode", "{tok}", "--text", "a", "--allowed-special", "<|nope|>"], "unknown special token"),
        (["decode", "{tok}", "1", "99999"], "token id 99999"),
        (["decode", "{tok}", "1", "x"], "'x' is not an integer"),
        (["encode", "{missing}", "--text", "a"], "cannot read the file"),
        (["train", "{corpus}", "-o", "{tok}"], "--vocab-size is required"),
        (["train", "{missing}", "-o", "{tok}", "--vocab-size", "300"], "cannot read the file"),
    ],
)
def test_errors_exit_1_with_a_message(corpus: Path, tmp_path: Path, capsys, argv: list[str], message: str) -> None:  # noqa: ANN001
    tok = tmp_path / "tok.json"
    ByteLevelBPETokenizer(special_tokens=["<|eot|>"]).save(tok)
    names = {"tok": str(tok), "missing": str(tmp_path / "missing.json"), "corpus": str(corpus)}
    assert main(["tokenizer", *[a.format(**names) for a in argv]]) == 1
    assert message in capsys.readouterr().err


def test_registered_in_registry() -> None:
    assert {"byte_level_bpe", "char", "word_vectorizer"} <= set(registry.tokenizers.names())
    assert registry.tokenizers.get("byte_level_bpe") is ByteLevelBPETokenizer
    built = registry.build({"type": "char", "unknown": "skip"}, kind="tokenizers")
    assert isinstance(built, CharTokenizer) and built.unknown == "skip"
    vec = registry.build({"type": "word_vectorizer", "max_tokens": 10}, kind="tokenizers")
    assert isinstance(vec, WordVectorizer) and vec.max_tokens == 10


class _BinaryStdin:
    """Standard input as a pipe gives it: bytes under ``.buffer``."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_standard_input_is_bounded_and_strict_utf8(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from plait.tokenizers import cli

    out = tmp_path / "tok.json"
    ByteLevelBPETokenizer().train(TEXT, 270).save(out)
    monkeypatch.setattr(sys, "stdin", _BinaryStdin(b"the dog"))
    assert main(["tokenizer", "encode", str(out)]) == 0
    assert capsys.readouterr().out.split()
    monkeypatch.setattr(cli, "STDIN_MAX_BYTES", 10)
    monkeypatch.setattr(sys, "stdin", _BinaryStdin(b"x" * 11))
    assert main(["tokenizer", "encode", str(out)]) == 1
    assert "standard input has more than the limit of 10 bytes" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", _BinaryStdin(b"caf\xe9"))
    assert main(["tokenizer", "encode", str(out)]) == 1
    assert "standard input is not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("[1, 2", "the IDS arguments is not valid JSON"),
        ("[1, NaN]", "field [1]: NaN"),
        ("[1, " + "9" * 5000 + "]", "an integer of 5000 digits"),
        ('[1, "2"]', "field [1] must be an integer"),
        ("[1, true]", "field [1] must be an integer"),
        ("[" * 100000, "the IDS arguments"),
    ],
)
def test_json_ids_are_parsed_strictly(tmp_path: Path, capsys, ids: str, message: str) -> None:  # noqa: ANN001
    tok = tmp_path / "tok.json"
    ByteLevelBPETokenizer().save(tok)
    assert main(["tokenizer", "decode", str(tok), ids]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
