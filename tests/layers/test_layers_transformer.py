"""FeedForward and torch's Transformer encoder/decoder layers: strict state-dict load from torch and
parity of outputs and every gradient (float64, float32, masks), torch's defaults, finite differences,
config round trip, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, DTypeError, PlaitError, ShapeError, no_grad, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers.transformer import FeedForward, TransformerDecoderLayer, TransformerEncoderLayer

E, NHEAD, FF, B, T, S = 8, 2, 16, 2, 5, 4


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-9) if dtype == "float64" else dict(rtol=1e-4, atol=2e-5)


def _close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.dtype == np.dtype(dtype), what
    np.testing.assert_allclose(ours, theirs, **_tol(dtype), err_msg=what)


def _perturbed(ref, dtype):
    ref = ref.to(getattr(torch, dtype))
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.2 * torch.randn_like(p))  # non-trivial biases and norm affines
    return ref


def _load_strict(ours, ref):
    """torch's state dict loads with strict=True: the same keys and shapes, nothing missing or left."""
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return on_test_device(ours)


def _compare_param_grads(ours, ref, dtype):
    """``ours`` is on the test device: its gradients are compared as NumPy (``OnDevice.grads()``)."""
    grads = ours.grads()
    theirs = dict(ref.named_parameters())
    assert set(grads) == set(theirs)
    for name, p in theirs.items():
        _close(grads[name], p.grad, dtype, name)


def _torch_mask(kind, L, S, tdtype):
    if kind == "causal":
        return torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=tdtype)
    if kind == "bool":
        m = torch.rand(L, S, generator=torch.Generator().manual_seed(5)) < 0.3
        m[:, 0] = False
        return m
    if kind == "float":
        return torch.randn(L, S, generator=torch.Generator().manual_seed(6), dtype=tdtype)
    return None


def _np(t):
    return None if t is None else t.detach().numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation, masks, batch_first, is_causal", [
    ("relu", None, False, False),
    ("gelu", "padding", True, False),
    ("relu", "causal", False, True),
    ("relu", "bool", True, False),
    ("gelu", "float", False, False),
])
def test_encoder_layer_parity_with_torch(dtype, norm_first, activation, masks, batch_first, is_causal):
    torch.manual_seed(0)
    ref = _perturbed(torch.nn.TransformerEncoderLayer(E, NHEAD, FF, dropout=0.0, activation=activation,
                                                      batch_first=batch_first, norm_first=norm_first), dtype)
    ours = _load_strict(TransformerEncoderLayer(E, NHEAD, FF, dropout=0.0, activation=activation,
                                                batch_first=batch_first, norm_first=norm_first, dtype=dtype), ref)
    tdtype = getattr(torch, dtype)
    x = torch.randn((B, T, E) if batch_first else (T, B, E), dtype=tdtype, requires_grad=True)
    kpm = None
    if masks == "padding":
        kpm = torch.zeros(B, T, dtype=torch.bool)
        kpm[1, -2:] = True
    src_mask = _torch_mask(masks, T, T, tdtype)
    y = ref(x, src_mask=src_mask, src_key_padding_mask=kpm, is_causal=is_causal)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    out = ours(_np(x), src_mask=_np(src_mask), src_key_padding_mask=_np(kpm), is_causal=is_causal)
    _close(out, y, dtype, "output")
    _close(ours.backward(dy.numpy()), x.grad, dtype, "dsrc")
    _compare_param_grads(ours, ref, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first, tgt_mask, memory_padding, memory_mask", [
    (False, None, False, None),
    (True, "causal", False, None),
    (True, "causal", True, "bool"),
    (False, "bool", False, "float"),
])
def test_decoder_layer_parity_with_torch(dtype, norm_first, batch_first, tgt_mask, memory_padding, memory_mask):
    torch.manual_seed(1)
    ref = _perturbed(torch.nn.TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, activation="gelu",
                                                      batch_first=batch_first, norm_first=norm_first), dtype)
    ours = _load_strict(TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, activation="gelu", batch_first=batch_first,
                                                norm_first=norm_first, dtype=dtype), ref)
    tdtype = getattr(torch, dtype)
    x = torch.randn((B, T, E) if batch_first else (T, B, E), dtype=tdtype, requires_grad=True)
    mem = torch.randn((B, S, E) if batch_first else (S, B, E), dtype=tdtype, requires_grad=True)
    mkpm = None
    if memory_padding:
        mkpm = torch.zeros(B, S, dtype=torch.bool)
        mkpm[0, -1] = True
    masks = dict(tgt_mask=_torch_mask(tgt_mask, T, T, tdtype), memory_mask=_torch_mask(memory_mask, T, S, tdtype),
                 memory_key_padding_mask=mkpm, tgt_is_causal=tgt_mask == "causal")
    y = ref(x, mem, **masks)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    out = ours(_np(x), _np(mem), **{k: v if isinstance(v, bool) else _np(v) for k, v in masks.items()})
    _close(out, y, dtype, "output")
    dx, dmem = ours.backward(dy.numpy())
    _close(dx, x.grad, dtype, "dtgt")
    _close(dmem, mem.grad, dtype, "dmemory")
    _compare_param_grads(ours, ref, dtype)


def test_torch_defaults():
    """The constructor defaults are torch's: sequence first, post-norm, relu, dropout 0.1, no causal mask."""
    for ours, ref in ((TransformerEncoderLayer(E, NHEAD), torch.nn.TransformerEncoderLayer(E, NHEAD)),
                      (TransformerDecoderLayer(E, NHEAD), torch.nn.TransformerDecoderLayer(E, NHEAD))):
        assert ours.batch_first is False and ours.norm_first is False
        assert type(ours.activation).__name__ == "ReLU" and ours.dropout.p == 0.1
        assert ours.norm1.eps == 1e-5 == ref.norm1.eps
        assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
            k: tuple(v.shape) for k, v in ref.state_dict().items()}


def test_decoder_self_attention_is_not_causal_unless_asked():
    torch.manual_seed(4)
    ref = _perturbed(torch.nn.TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0), "float64")
    ours = _load_strict(TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, dtype="float64"), ref)
    x, mem = torch.randn(T, B, E, dtype=torch.float64), torch.randn(S, B, E, dtype=torch.float64)
    plain = ours(x.numpy(), mem.numpy())
    _close(plain, ref(x, mem), "float64", "no mask")
    causal = ours(x.numpy(), mem.numpy(), tgt_is_causal=True)  # no tgt_mask: the causal mask is built
    _close(causal, ref(x, mem, tgt_mask=_torch_mask("causal", T, T, torch.float64), tgt_is_causal=True), "float64",
           "causal")
    assert not np.allclose(plain, causal)


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


# -- finite differences ---------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_encoder_layer_masks(norm_first):
    m = TransformerEncoderLayer(E, NHEAD, FF, dropout=0.0, activation="gelu", norm_first=norm_first,
                                batch_first=True, dtype="float64")
    rng = np.random.default_rng(0)
    kpm = np.zeros((2, 4), bool)
    kpm[1, 0] = True
    gradcheck(m, rng.standard_normal((2, 4, E)), max_checks=6,
              forward_kwargs={"src_key_padding_mask": kpm, "is_causal": True})


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_decoder_layer_memory_and_masks(norm_first):
    m = TransformerDecoderLayer(E, NHEAD, FF, dropout=0.0, norm_first=norm_first, batch_first=True, dtype="float64")
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


# -- config and errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [
    FeedForward(E, FF, activation="relu", dropout=0.1),
    TransformerEncoderLayer(E, 4, FF, activation="gelu", norm_first=True, batch_first=True, bias=False),
    TransformerDecoderLayer(E, NHEAD, FF, batch_first=False, layer_norm_eps=1e-6),
])
def test_config_round_trip(layer):
    cfg = layer.config()
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(layer) and rebuilt.config() == cfg
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in layer.state_dict().items()}


def test_torch_state_dict_keys():
    for bias in (True, False):
        ours = {k: v.shape for k, v in TransformerDecoderLayer(E, NHEAD, FF, bias=bias).state_dict().items()}
        ref = {k: tuple(v.shape) for k, v in torch.nn.TransformerDecoderLayer(E, NHEAD, FF, bias=bias).state_dict().items()}
        assert ours == ref


def test_unknown_activation():
    with pytest.raises(ConfigError, match="TransformerEncoderLayer.*'swishy'"):
        TransformerEncoderLayer(E, NHEAD, activation="swishy")


@pytest.mark.parametrize("call, error, words", [
    (lambda m: m(np.zeros((B, T, E, 1), np.float32)), ShapeError, "TransformerEncoderLayer.*src"),
    (lambda m: m(np.zeros((B, T, E + 1), np.float32)), ShapeError, "TransformerEncoderLayer.*last dimension 8"),
    (lambda m: m(np.zeros((B, T, E), np.int32)), DTypeError, "TransformerEncoderLayer.*int32"),
    (lambda m: m(np.zeros((B, T, E), np.float32), src_key_padding_mask=np.zeros((B, T + 1), bool)), ShapeError,
     "TransformerEncoderLayer.*key_padding_mask"),
    (lambda m: m(np.zeros((B, T, E), np.float32), src_mask=np.zeros((T, 2), bool)), ShapeError,
     "TransformerEncoderLayer.*src_mask"),
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
    x = np.zeros((T, B, E), np.float32)  # sequence first, torch's default
    with pytest.raises(ShapeError, match="TransformerDecoderLayer.*batch size"):
        m(x, np.zeros((S, B + 1, E), np.float32))
    with pytest.raises(PlaitError, match="TransformerDecoderLayer.*memory"):
        m(x, None)
    with pytest.raises(ShapeError, match="TransformerDecoderLayer.*key_padding_mask"):
        m(x, np.zeros((S, B, E), np.float32), memory_key_padding_mask=np.zeros((B, T), bool))
    with pytest.raises(ShapeError, match="TransformerDecoderLayer.*memory_mask"):
        m(x, np.zeros((S, B, E), np.float32), memory_mask=np.zeros((T, T), bool))
    assert not any(sub._saved_stack for sub in m.modules())
    with pytest.raises(PlaitError, match="TransformerDecoderLayer.backward"):
        m.backward(x)
