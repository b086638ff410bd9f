"""The zoo's subcommands: plait models / generate / train."""

from __future__ import annotations

import json
import sys

import numpy as np
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


def _tiny_char_model(tmp_path):
    from plait.zoo.text import CharCodec

    codec = CharCodec.from_text(TEXT)
    manual_seed(0)
    model = zoo.create("gpt", vocab_size=codec.vocab_size, context_length=32, d_model=16, num_layers=1, num_heads=2)
    return zoo.save(model, tmp_path / "char", metadata={"chars": codec.chars}), codec


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
    ids = [int(t) for t in capsys.readouterr().out.strip().split(",")]
    assert ids[:3] == [1, 2, 3] and len(ids) == 7 and max(ids) < 9
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


def test_train_without_plait_train_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "plait.train", None)
    data = tmp_path / "t.txt"
    data.write_text(TEXT)
    assert main(["train", "char-lstm", "--data", str(data)]) == 2
    assert "needs the plait-train distribution" in capsys.readouterr().err


def test_train_a_text_model_then_generate(tmp_path, capsys):
    pytest.importorskip("plait.train")
    data = tmp_path / "t.txt"
    data.write_text(TEXT)
    out = tmp_path / "run"
    assert main(["train", "gpt-nano", "--data", str(data), "--epochs", "1", "--seq-len", "16", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_args"]["vocab_size"] == len(set(TEXT))
    assert cfg["metadata"]["chars"] == "".join(sorted(set(TEXT)))
    assert np.isfinite(cfg["metadata"]["final"]["val_loss"])
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "To", "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.startswith("To")


def test_train_a_classifier_on_arrays(tmp_path):
    pytest.importorskip("plait.train")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 784)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
    out = tmp_path / "mlp"
    assert main(["train", "mlp-mnist", "--data", str(tmp_path / "d.npz"), "--out", str(out), "--epochs", "2"]) == 0
    final = json.loads((out / "config.json").read_text())["metadata"]["final"]
    assert {"loss", "val_loss", "val_accuracy"} <= set(final)
    assert isinstance(zoo.load(out), type(zoo.create("mlp-mnist")))
    np.savez(tmp_path / "bad.npz", images=x)
    assert main(["train", "mlp-mnist", "--data", str(tmp_path / "bad.npz")]) == 1
