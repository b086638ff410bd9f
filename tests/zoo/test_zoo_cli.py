"""The zoo's subcommands: plait models / generate (plait train: tests/train/test_train_cli.py)."""

from __future__ import annotations

import pytest

import plait.zoo as zoo
from plait.core import manual_seed
from plait.core.cli import main

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 20


def test_models_lists_presets_and_architectures(capsys):
    assert main(["models", "gpt*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["gpt", "gpt-mini", "gpt-nano", "gpt2", "gpt2-large", "gpt2-medium",
                                                  "gpt2-xl"]
    assert "preset of gpt" in lines[1] and "plait-zoo" in lines[1]
    assert main(["models", "lenet5", "--params"]) == 0
    assert "61,706" in capsys.readouterr().out
    assert main(["models", "nothing-like-this*"]) == 1


CHARS = "".join(sorted(set(TEXT)))


def _tiny_char_model(tmp_path, chars=CHARS, vocab_size=None):
    manual_seed(0)
    model = zoo.create("gpt", vocab_size=vocab_size or len(chars), context_length=32, d_model=16, num_layers=1, num_heads=2)
    return zoo.save(model, tmp_path / "char", metadata={"chars": chars}), chars


def test_generate_from_a_prompt_with_the_saved_alphabet(tmp_path, capsys):
    folder, _ = _tiny_char_model(tmp_path)
    assert main(["generate", str(folder), "--prompt", "To be", "--max-new-tokens", "12", "--seed", "1"]) == 0
    out = capsys.readouterr().out.rstrip("\n")
    assert out.startswith("To be") and len(out) == 5 + 12
    assert main(["generate", str(folder), "--prompt", "To be", "--max-new-tokens", "12", "--seed", "1",
                 "--no-cache"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == out


def test_generate_from_ids_and_clear_errors(tmp_path, capsys):
    manual_seed(0)
    folder = zoo.save(zoo.create("rnn_lm", vocab_size=9, embed_dim=4, hidden_size=6), tmp_path / "ids")
    assert main(["generate", str(folder), "--ids", "1,2,3", "--max-new-tokens", "4", "--temperature", "0"]) == 0
    ids = [int(t) for t in capsys.readouterr().out.strip().split(" ")]  # ids are written space-separated
    assert ids[:3] == [1, 2, 3] and len(ids) == 7 and max(ids) < 9
    assert main(["generate", str(folder), "--ids", "1 2 3", "--max-new-tokens", "4", "--temperature", "0"]) == 0
    assert [int(t) for t in capsys.readouterr().out.split()] == ids  # read back in either format
    assert main(["generate", str(folder), "--ids", "1,x"]) == 1
    assert "'x' is not an integer token id" in capsys.readouterr().err
    assert main(["generate", str(folder), "--prompt", "hello"]) == 1
    assert "no tokenizer.json and no character vocabulary" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "missing"), "--ids", "1"]) == 1
    assert "not a saved model folder" in capsys.readouterr().err


def test_generate_uses_a_tokenizer_file_in_the_folder(tmp_path, capsys):
    tokenizers = pytest.importorskip("plait.tokenizers")
    tok = tokenizers.ByteLevelBPETokenizer().train(TEXT, 270)
    manual_seed(0)
    model = zoo.create("gpt", vocab_size=tok.vocab_size, context_length=64, d_model=16, num_layers=1, num_heads=2)
    folder = zoo.save(model, tmp_path / "bpe", tokenizer=tok)
    assert (folder / "tokenizer.json").is_file()
    assert main(["generate", str(folder), "--prompt", "To be", "--max-new-tokens", "5", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("To be")


def test_a_vocabulary_shorter_than_the_model_is_a_clear_error(tmp_path, capsys):
    folder, _ = _tiny_char_model(tmp_path, chars="abc", vocab_size=40)
    assert main(["generate", str(folder), "--prompt", "ab", "--max-new-tokens", "50"]) == 1
    err = capsys.readouterr().err
    assert "saved vocabulary has 3 entries but the model's vocab_size is 40" in err
    assert "IndexError" not in err and err.count("error:") == 1


def test_unsorted_or_duplicate_saved_characters_are_refused(tmp_path, capsys):
    folder, _ = _tiny_char_model(tmp_path, chars="ba", vocab_size=2)
    assert main(["generate", str(folder), "--prompt", "ab", "--max-new-tokens", "1"]) == 1
    assert "metadata.chars must be a string of distinct, sorted characters" in capsys.readouterr().err


def test_models_without_a_match_is_an_error(capsys):
    assert main(["models", "nothing-like-this*"]) == 1
    assert capsys.readouterr().err.strip() == "plait models: error: no model matches 'nothing-like-this*'; see 'plait models'"
