"""FeedForward and Transformer encoder/decoder layers: torch parity, finite differences, KV cache,
config round trip, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, DTypeError, PlaitError, ShapeError, no_grad, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers.attention import KVCache
from plait.layers.transformer import FeedForward, TransformerDecoderLayer, TransformerEncoderLayer

E, NHEAD, FF, B, T, S = 8, 2, 16, 2, 5, 4


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-9) if dtype == "float64" else dict(rtol=1e-4, atol=2e-5)


def _close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.dtype == np.dtype(dtype), what
    np.testing.assert_allclose(ours, theirs, **_tol(dtype), err_msg=what)


def _copy_attention(ours, ref):
    w, b = ref.in_proj_weight.detach().numpy(), ref.in_proj_bias.detach().numpy()
    for k, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        proj.weight.data[...] = w[k * E : (k + 1) * E]
        proj.bias.data[...] = b[k * E : (k + 1) * E]
    ours.out_proj.load_state_dict({k: v.detach().numpy() for k, v in ref.out_proj.state_dict().items()})


def _copy_layer(ours, ref):
    """torch state dict -> ours: identical names except the stacked attention in-projections."""
    rest = {k: v.detach().numpy() for k, v in ref.state_dict().items() if "attn" not in k}
    result = ours.load_state_dict(rest, strict=False)
    assert not result.unexpected_keys
    assert all("attn" in k for k in result.missing_keys)
    for name in ("self_attn", "multihead_attn"):
        if hasattr(ref, name):
            _copy_attention(getattr(ours, name), getattr(ref, name))


def _perturbed(ref, dtype):
    ref = ref.to(getattr(torch, dtype))
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.2 * torch.randn_like(p))  # non-trivial biases and norm affines
    return ref


def _compare_param_grads(ours, ref, dtype):
    """``ours`` is on the test device: its gradients are compared as NumPy (``OnDevice.grads()``)."""
    grads = ours.grads()
    for name, p in ref.named_parameters():
        if "in_proj" in name:
            attn, kind = name.split(".")[0], "weight" if name.endswith("weight") else "bias"
            got = np.concatenate([grads[f"{attn}.{q}_proj.{kind}"] for q in "qkv"])
        else:
            got = grads[name]
        _close(got, p.grad, dtype, name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation, masks, batch_first", [
    ("relu", None, True),
    ("gelu", "padding", True),
    ("relu", "causal", False),
])
def test_encoder_layer_parity_with_torch(dtype, norm_first, activation, masks, batch_first):
    torch.manual_seed(0)
    ref = _perturbed(torch.nn.TransformerEncoderLayer(E, NHEAD, FF, dropout=0.0, activation=activation,
                                                      batch_first=batch_first, norm_first=norm_first), dtype)
    ours = TransformerEncoderLayer(E, NHEAD, FF, dropout=0.0, activation=activation, batch_first=batch_first,
                                   norm_first=norm_first, dtype=dtype)
    _copy_layer(ours, ref)
    ours = on_test_device(ours)
    x = torch.randn((B, T, E) if batch_first else (T, B, E), dtype=getattr(torch, dtype), requires_grad=True)
    kpm = src_mask = None
    if masks == "padding":
        kpm = torch.zeros(B, T, dtype=torch.bool)
        kpm[1, -2:] = True
    elif masks == "causal":
        src_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    y = ref(x, src_mask=src_mask, src_key_padding_mask=kpm)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    np_mask = None if src_mask is None else src_mask.numpy()
    out = ours(x.detach().numpy(), src_mask=np_mask, src_key_padding_mask=None if kpm is None else kpm.numpy())
    _close(out, y, dtype, "output")
    _close(ours.backward(dy.numpy()), x.grad, dtype, "dsrc")
    _compare_param_grads(ours, ref, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first, memory_padding", [(True, False), (True, True), (False, True)])
def test_decoder_layer_parity_with_torch(dtype, norm_first, batch_first, memory_padding):
    torch.manual_seed(1)
    ref = _perturbed(torch.nn.TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, activation="gelu",
                                                      batch_first=batch_first, norm_first=norm_first), dtype)
    ours = TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, activation="gelu", batch_first=batch_first,
                                   norm_first=norm_first, dtype=dtype)
    _copy_layer(ours, ref)
    ours = on_test_device(ours)
    tdtype = getattr(torch, dtype)
    x = torch.randn((B, T, E) if batch_first else (T, B, E), dtype=tdtype, requires_grad=True)
    mem = torch.randn((B, S, E) if batch_first else (S, B, E), dtype=tdtype, requires_grad=True)
    mkpm = None
    if memory_padding:
        mkpm = torch.zeros(B, S, dtype=torch.bool)
        mkpm[0, -1] = True
    y = ref(x, mem, tgt_mask=torch.triu(torch.ones(T, T, dtype=torch.bool), 1), memory_key_padding_mask=mkpm)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    out = ours(x.detach().numpy(), mem.detach().numpy(),
               memory_key_padding_mask=None if mkpm is None else mkpm.numpy())  # self-attention is causal
    _close(out, y, dtype, "output")
    dx, dmem = ours.backward(dy.numpy())
    _close(dx, x.grad, dtype, "dtgt")
    _close(dmem, mem.grad, dtype, "dmemory")
    _compare_param_grads(ours, ref, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_feed_forward_parity_with_torch(dtype):
    torch.manual_seed(2)
    ref = torch.nn.Sequential(torch.nn.Linear(E, FF), torch.nn.GELU(), torch.nn.Linear(FF, E)).to(getattr(torch, dtype))
    ours = FeedForward(E, FF, dtype=dtype)
    ours.load_state_dict({"linear1.weight": ref[0].weight.detach().numpy(), "linear1.bias": ref[0].bias.detach().numpy(),
                          "linear2.weight": ref[2].weight.detach().numpy(), "linear2.bias": ref[2].bias.detach().numpy()})
    ours = on_test_device(ours)
    x = torch.randn(B, T, E, dtype=getattr(torch, dtype), requires_grad=True)
    y = ref(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    _close(ours(x.detach().numpy()), y, dtype, "output")
    _close(ours.backward(dy.numpy()), x.grad, dtype, "dx")
    grads = ours.grads()
    _close(grads["linear1.weight"], ref[0].weight.grad, dtype, "linear1.weight")
    _close(grads["linear2.bias"], ref[2].bias.grad, dtype, "linear2.bias")


# -- finite differences (GQA, RoPE, masks: no torch counterpart) ---------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_encoder_layer_gqa_rope(norm_first):
    m = TransformerEncoderLayer(E, 4, FF, dropout=0.0, activation="gelu", norm_first=norm_first, num_kv_heads=2,
                                rope=True, causal=True, dtype="float64")
    rng = np.random.default_rng(0)
    kpm = np.zeros((2, 4), bool)
    kpm[1, 0] = True
    gradcheck(m, rng.standard_normal((2, 4, E)), max_checks=6, forward_kwargs={"src_key_padding_mask": kpm})


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_decoder_layer_memory_and_masks(norm_first):
    m = TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, norm_first=norm_first, dtype="float64")
    rng = np.random.default_rng(1)
    gradcheck(m, rng.standard_normal((2, 3, E)), rng.standard_normal((2, 4, E)), max_checks=6,
              forward_kwargs={"memory_key_padding_mask": np.array([[False] * 4, [False, False, False, True]])})


def test_gradcheck_feed_forward():
    gradcheck(FeedForward(E, FF, activation="silu", dtype="float64"), np.random.default_rng(2).standard_normal((3, E)))


def test_dropout_only_in_training():
    m = TransformerEncoderLayer(E, NHEAD, FF, dropout=0.5)
    x = np.random.default_rng(3).standard_normal((B, T, E)).astype(np.float32)
    with no_grad():
        train = m(x)
        m.eval()
        first, second = m(x), m(x)
    assert not np.allclose(train, first)
    np.testing.assert_array_equal(first, second)


# -- KV-cached decoding ------------------------------------------------------------------------------------
def test_encoder_layer_kv_cache_equals_full_causal_pass():
    m = TransformerEncoderLayer(E, 4, FF, dropout=0.0, norm_first=True, num_kv_heads=2, rope=True, causal=True,
                                dtype="float64")
    x = np.random.default_rng(4).standard_normal((B, 6, E))
    with no_grad():
        full = m(x)
        cache = KVCache()
        steps = [m(x[:, t : t + 1], kv_cache=cache) for t in range(6)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-12, atol=1e-12)


def test_decoder_layer_kv_caches_equal_full_pass():
    m = TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, dtype="float64")
    rng = np.random.default_rng(5)
    x, memory = rng.standard_normal((B, 5, E)), rng.standard_normal((B, S, E))
    with no_grad():
        full = m(x, memory)
        self_cache, memory_cache = KVCache(), KVCache()
        steps = [m(x[:, :2], memory, kv_cache=self_cache, memory_kv_cache=memory_cache)]
        steps += [m(x[:, t : t + 1], None, kv_cache=self_cache, memory_kv_cache=memory_cache) for t in range(2, 5)]
    assert self_cache.length == 5 and memory_cache.length == S
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-12, atol=1e-12)


def test_backward_after_cached_forward_is_a_clear_error():
    m = TransformerEncoderLayer(E, NHEAD, FF, causal=True)
    y = m(np.zeros((1, 1, E), np.float32), kv_cache=KVCache())
    with pytest.raises(PlaitError, match="TransformerEncoderLayer.backward.*inference only"):
        m.backward(y)


# -- config and errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [
    FeedForward(E, FF, activation="relu", dropout=0.1),
    TransformerEncoderLayer(E, 4, FF, activation="gelu", norm_first=True, num_kv_heads=2, rope=True, causal=True),
    TransformerDecoderLayer(E, NHEAD, FF, batch_first=False, layer_norm_eps=1e-6),
])
def test_config_round_trip(layer):
    cfg = layer.config()
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(layer) and rebuilt.config() == cfg
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in layer.state_dict().items()}


def test_torch_submodule_names():
    ours = {k for k in TransformerDecoderLayer(E, NHEAD, FF).state_dict() if "attn" not in k}
    ref = {k for k in torch.nn.TransformerDecoderLayer(E, NHEAD, FF).state_dict() if "attn" not in k}
    assert ours == ref


def test_unknown_activation():
    with pytest.raises(ConfigError, match="TransformerEncoderLayer.*'swishy'"):
        TransformerEncoderLayer(E, NHEAD, activation="swishy")


@pytest.mark.parametrize("call, error, words", [
    (lambda m: m(np.zeros((T, E), np.float32)), ShapeError, "TransformerEncoderLayer.*3-D"),
    (lambda m: m(np.zeros((B, T, E + 1), np.float32)), ShapeError, "TransformerEncoderLayer.*last dimension 8"),
    (lambda m: m(np.zeros((B, T, E), np.int32)), DTypeError, "TransformerEncoderLayer.*int32"),
    (lambda m: m(np.zeros((B, T, E), np.float32), src_key_padding_mask=np.zeros((B, T + 1), bool)), ShapeError,
     "TransformerEncoderLayer.*key_padding_mask"),
    (lambda m: m(np.zeros((B, T, E), np.float32), src_mask=np.zeros((T, 2), bool)), ShapeError,
     "TransformerEncoderLayer.*attn_mask"),
    (lambda m: m.backward(np.zeros((B, T, E), np.float32)), PlaitError, "TransformerEncoderLayer.backward"),
    (lambda m: (m(np.zeros((B, T, E), np.float32)), m.backward(np.zeros((B, T + 1, E), np.float32))), ShapeError,
     r"TransformerEncoderLayer.backward.*\(2, 5, 8\)"),
])
def test_encoder_bad_inputs(call, error, words):
    m = TransformerEncoderLayer(E, NHEAD, FF)
    with pytest.raises(error, match=words):
        call(m)
    if "backward" not in words:
        assert not any(sub._saved_stack for sub in m.modules())


def test_decoder_bad_inputs():
    m = TransformerDecoderLayer(E, NHEAD, FF)
    x = np.zeros((B, T, E), np.float32)
    with pytest.raises(ShapeError, match="TransformerDecoderLayer.*batch size"):
        m(x, np.zeros((B + 1, S, E), np.float32))
    with pytest.raises(ShapeError, match="TransformerDecoderLayer.*memory is required"):
        m(x)
    with pytest.raises(ShapeError, match="TransformerDecoderLayer.*key_padding_mask"):
        m(x, np.zeros((B, S, E), np.float32), memory_key_padding_mask=np.zeros((B, T), bool))
    with pytest.raises(PlaitError, match="TransformerDecoderLayer.backward"):
        m.backward(x)
