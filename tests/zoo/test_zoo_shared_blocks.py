"""The zoo's pre-norm blocks are plait.layers' building blocks: the same FeedForward, the same
maths as torch's TransformerEncoderLayer(norm_first=True), and folders saved with the zoo's
former feed-forward keys (``ffn.fc1``/``ffn.fc2``) still load."""

from __future__ import annotations

import json

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import ConfigError, manual_seed, no_grad
from plait.core.model_folder import file_record
from plait.layers import FeedForward
from plait.zoo.models.blocks import SelfBlock, upgrade_state_dict

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

_MODELS = {
    "gpt": {"vocab_size": 23, "context_length": 12, "d_model": 16, "num_layers": 2, "num_heads": 4},
    "transformer": {"src_vocab_size": 19, "d_model": 16, "num_heads": 4, "positional": "sinusoidal"},
}


def _inputs(name, rng):
    if name == "gpt":
        return (rng.integers(0, 23, (2, 7)),)
    return rng.integers(1, 19, (2, 6)), rng.integers(0, 19, (2, 5))


def _old_name(key):
    return key.replace("ffn.linear1.", "ffn.fc1.").replace("ffn.linear2.", "ffn.fc2.")


def _rewrite_in_the_former_layout(folder):
    """Rename the weights to the former keys and record the new file's hash, as an older save did."""
    weights = folder / "model.safetensors"
    tensors = safetensors_numpy.load_file(weights)
    old = {_old_name(k): v for k, v in tensors.items()}
    assert any(".ffn.fc1." in k for k in old) and not any(".ffn.linear1." in k for k in old)
    safetensors_numpy.save_file(old, weights)
    config = json.loads((folder / "config.json").read_text())
    config["files"]["model.safetensors"] = file_record(weights.read_bytes())
    (folder / "config.json").write_text(json.dumps(config))
    return old


@pytest.mark.parametrize("name", sorted(_MODELS))
def test_a_folder_saved_with_the_former_feed_forward_keys_loads(tmp_path, name):
    args = _MODELS[name]
    manual_seed(0)
    model = zoo.create(name, **args).eval()
    folder = zoo.save(model, tmp_path / name)
    old = _rewrite_in_the_former_layout(folder)
    again = zoo.load(folder)
    xs = _inputs(name, np.random.default_rng(1))
    with no_grad():
        np.testing.assert_array_equal(again(*xs), model(*xs))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)
    fresh = zoo.create(name, **args)  # load_weights, load_state_dict and load_torch_state_dict take them too
    zoo.load_weights(fresh, folder)
    np.testing.assert_array_equal(fresh.state_dict()["blocks.0.ffn.linear2.weight" if name == "gpt" else
                                                      "decoder.0.ffn.linear2.weight"],
                                  old["blocks.0.ffn.fc2.weight" if name == "gpt" else "decoder.0.ffn.fc2.weight"])
    zoo.load_torch_state_dict(zoo.create(name, **args), old)


def test_upgrade_renames_only_the_former_feed_forward_keys():
    state = {"blocks.0.ffn.fc1.weight": 1, "ffn.fc2.bias": 2, "blocks.0.attn.fc1.weight": 3, "fc1.weight": 4,
             "blocks.0.ffn.fc1.extra": 5}
    assert upgrade_state_dict(state) == {"blocks.0.ffn.linear1.weight": 1, "ffn.linear2.bias": 2,
                                         "blocks.0.attn.fc1.weight": 3, "fc1.weight": 4, "blocks.0.ffn.fc1.extra": 5}
    assert "blocks.0.ffn.fc1.weight" in state  # the caller's dict is left alone


def test_both_names_at_once_are_refused():
    model = zoo.create("gpt", **_MODELS["gpt"])
    state = dict(model.state_dict())
    state["blocks.0.ffn.fc1.weight"] = state["blocks.0.ffn.linear1.weight"]
    with pytest.raises(ConfigError, match=r"unexpected keys: blocks\.0\.ffn\.fc1\.weight"):
        model.load_state_dict(state)


def test_zoo_blocks_are_built_from_the_layers_feed_forward():
    gpt = zoo.create("gpt", **_MODELS["gpt"])
    seq2seq = zoo.create("transformer", **_MODELS["transformer"])
    blocks = [*gpt.blocks, *seq2seq.encoder, *seq2seq.decoder]
    assert all(type(b.ffn) is FeedForward for b in blocks)
    assert all(b.ffn.linear1.weight.shape == (64, 16) for b in blocks)


def test_self_block_equals_torch_pre_norm_encoder_layer():
    """Without RoPE and causality a zoo block is torch's TransformerEncoderLayer(norm_first=True)."""
    E, H, FF = 16, 4, 24
    torch.manual_seed(0)
    ref = torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, activation="relu", norm_first=True,
                                           batch_first=True, dtype=torch.float64)
    ours = SelfBlock(E, H, FF, activation="relu", causal=False, rope=False).astype(np.float64)
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    q, k, v = np.split(sd["self_attn.in_proj_weight"], 3)
    qb, kb, vb = np.split(sd["self_attn.in_proj_bias"], 3)
    ours.load_state_dict({
        "attn.q_proj.weight": q, "attn.k_proj.weight": k, "attn.v_proj.weight": v,
        "attn.q_proj.bias": qb, "attn.k_proj.bias": kb, "attn.v_proj.bias": vb,
        "attn.out_proj.weight": sd["self_attn.out_proj.weight"], "attn.out_proj.bias": sd["self_attn.out_proj.bias"],
        **{f"ffn.{n}": sd[n] for n in ("linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias")},
        **{n: sd[n] for n in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")},
    })
    x = torch.randn(2, 5, E, dtype=torch.float64, requires_grad=True)
    y = ref(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    got = ours(x.detach().numpy())
    np.testing.assert_allclose(got, y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dy.numpy()), x.grad.numpy(), rtol=1e-10, atol=1e-12)
    grads = {n: p.grad for n, p in ours.named_parameters()}
    np.testing.assert_allclose(grads["ffn.linear1.weight"], ref.linear1.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["norm1.weight"], ref.norm1.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["attn.q_proj.weight"], np.split(ref.self_attn.in_proj_weight.grad.numpy(), 3)[0],
                               rtol=1e-10, atol=1e-12)
