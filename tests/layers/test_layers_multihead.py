"""torch's MultiheadAttention: strict state-dict load from torch, outputs, returned weights and every
gradient (query, key, value, each parameter) against torch, float64 and float32; finite differences;
config round trip; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, DTypeError, Module, PlaitError, ShapeError, registry
from plait.core.testing import gradcheck
from plait.layers import MultiheadAttention

E, H = 8, 2


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-9) if dtype == "float64" else dict(rtol=1e-4, atol=2e-5)


def _close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.dtype == np.dtype(dtype), what
    np.testing.assert_allclose(ours, theirs, **_tol(dtype), err_msg=what)


def _twin(ref: torch.nn.Module, ours):
    """Perturb torch's parameters (non-zero biases) and load them into ours with strict=True."""
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.2 * torch.randn_like(p))
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return ours


def _mask(kind, shape, tdtype):
    if kind is None:
        return None
    g = torch.Generator().manual_seed(3)
    if kind == "bool":
        m = torch.rand(shape, generator=g) < 0.3
        m[..., 0] = False  # every query keeps a key (torch gives nan otherwise)
        return m
    return torch.randn(shape, generator=g, dtype=tdtype)


# (batch_first, L, S, kdim/vdim, bias, key_padding_mask kind, attn_mask kind, average weights, is_causal, self)
CASES = {
    "self_default": (False, 5, 5, None, True, None, None, True, False, True),
    "self_batch_first_padding": (True, 5, 5, None, True, "bool", None, True, False, True),
    "self_causal_hint": (False, 4, 4, None, True, None, "causal", False, True, True),
    "cross_bool_masks": (False, 5, 3, None, True, "bool", "bool", True, False, False),
    "cross_float_masks_per_head": (True, 4, 6, None, False, "float", "float3d", False, False, False),
    "cross_kdim_vdim": (True, 3, 4, (6, 5), True, "float", "float", True, False, False),
    "cross_kdim_vdim_no_bias": (False, 3, 4, (6, 5), False, None, "bool", False, False, False),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_torch(case, dtype):
    batch_first, L, S, kv, bias, kpm_kind, am_kind, average, is_causal, self_attn = CASES[case]
    N = 3
    kdim, vdim = kv or (E, E)
    torch.manual_seed(0)
    tdtype = getattr(torch, dtype)
    ref = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first).to(tdtype)
    ours = _twin(ref, MultiheadAttention(E, H, bias=bias, kdim=kv and kdim, vdim=kv and vdim,
                                         batch_first=batch_first, dtype=dtype))
    assert set(ours.state_dict()) == set(ref.state_dict())

    def shaped(n, f):
        return torch.randn((N, n, f) if batch_first else (n, N, f), dtype=tdtype, requires_grad=True)

    q = shaped(L, E)
    k, v = (q, q) if self_attn else (shaped(S, kdim), shaped(S, vdim))
    kpm = _mask(kpm_kind, (N, S), tdtype)
    am = (torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=tdtype) if am_kind == "causal"
          else _mask("float" if am_kind == "float3d" else am_kind, (N * H, L, S) if am_kind == "float3d" else (L, S),
                     tdtype))
    y, w = ref(q, k, v, key_padding_mask=kpm, attn_mask=am, average_attn_weights=average, is_causal=is_causal)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()

    def np_(t):
        return None if t is None else t.detach().numpy()

    out, weights = ours(np_(q), np_(k), np_(v), key_padding_mask=np_(kpm), attn_mask=np_(am),
                        average_attn_weights=average, is_causal=is_causal)
    _close(out, y, dtype, "attn_output")
    _close(weights, w, dtype, "attn_weights")
    dq, dk, dv = ours.backward(dy.numpy())
    if self_attn:  # the same array three times: the three gradients add up
        _close(dq + dk + dv, q.grad, dtype, "dx")
    else:
        for got, t, what in ((dq, q, "dquery"), (dk, k, "dkey"), (dv, v, "dvalue")):
            _close(got, t.grad, dtype, what)
    theirs = dict(ref.named_parameters())
    assert {n for n, _ in ours.named_parameters()} == set(theirs)
    for name, p in ours.named_parameters():
        _close(p.grad, theirs[name].grad, dtype, name)


def test_torch_defaults_and_keys():
    ref, ours = torch.nn.MultiheadAttention(E, H), MultiheadAttention(E, H)
    assert ours.batch_first is False and ours.dropout == 0.0
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert not ours.in_proj_bias.data.any() and not ours.out_proj.bias.data.any()  # torch's init
    bound = np.sqrt(6.0 / (E + 3 * E))  # Xavier over the packed (3E, E) matrix
    assert np.abs(ours.in_proj_weight.data).max() <= bound
    separate = MultiheadAttention(E, H, kdim=6, vdim=5)
    assert set(separate.state_dict()) == set(torch.nn.MultiheadAttention(E, H, kdim=6, vdim=5).state_dict())


def test_need_weights_false_and_unbatched_inputs():
    torch.manual_seed(1)
    ref = torch.nn.MultiheadAttention(E, H, dtype=torch.float64)
    ours = _twin(ref, MultiheadAttention(E, H, dtype="float64"))
    x = torch.randn(5, E, dtype=torch.float64, requires_grad=True)  # unbatched (L, E)
    kpm = torch.tensor([False, False, True, False, False])
    y, w = ref(x, x, x, key_padding_mask=kpm)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    out, weights = ours(x.detach().numpy(), x.detach().numpy(), x.detach().numpy(), key_padding_mask=kpm.numpy())
    _close(out, y, "float64", "unbatched output")
    _close(weights, w, "float64", "unbatched weights")
    _close(sum(ours.backward(dy.numpy())), x.grad, "float64", "unbatched dx")
    assert ours(x.detach().numpy(), x.detach().numpy(), x.detach().numpy(), need_weights=False)[1] is None


class _OutputOnly(Module):
    """attn_output alone (the weights get no gradient), for gradcheck."""

    def __init__(self, inner: MultiheadAttention) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)[0]

    def backward(self, dy):
        return self.inner.backward(dy)


def test_gradcheck_float64():
    m = _OutputOnly(MultiheadAttention(E, H, kdim=6, vdim=5, batch_first=True, dtype="float64"))
    rng = np.random.default_rng(0)
    kpm = np.zeros((2, 4), bool)
    kpm[1, 0] = True
    gradcheck(m, rng.standard_normal((2, 3, E)), rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 4, 5)),
              max_checks=6, forward_kwargs={"key_padding_mask": kpm, "need_weights": False})


def test_dropout_acts_on_the_returned_weights_in_training_only():
    m = MultiheadAttention(E, H, dropout=0.5, batch_first=True)
    x = np.random.default_rng(2).standard_normal((2, 4, E)).astype(np.float32)
    _, w_train = m(x, x, x, average_attn_weights=False)
    m.backward(np.zeros((2, 4, E), np.float32))
    assert (w_train == 0).any()
    m.eval()
    _, w_eval = m(x, x, x)
    np.testing.assert_allclose(w_eval.sum(-1), 1.0, rtol=1e-5)


def test_config_round_trip():
    m = MultiheadAttention(E, H, dropout=0.1, bias=False, kdim=6, vdim=5, batch_first=True)
    cfg = m.config()
    assert cfg["type"] == "multihead_attention"
    rebuilt = registry.build(cfg)
    assert rebuilt.config() == cfg
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}


@pytest.mark.parametrize("kwargs, words", [
    ({"add_bias_kv": True}, "add_bias_kv"),
    ({"add_zero_attn": True}, "add_zero_attn"),
    ({"num_heads": 3}, "divisible"),
    ({"dropout": 1.5}, "dropout"),
])
def test_bad_constructor_arguments(kwargs, words):
    with pytest.raises(ConfigError, match=f"MultiheadAttention.*{words}"):
        MultiheadAttention(**{"embed_dim": E, "num_heads": H, **kwargs})


@pytest.mark.parametrize("call, error, words", [
    (lambda m, x: m(x[..., :6], x, x), ShapeError, "query.*last dimension 8"),
    (lambda m, x: m(x, x[:, :2], x), ShapeError, "key"),
    (lambda m, x: m(x, x, x[:2]), ShapeError, "value"),
    (lambda m, x: m(x, x[:0], x[:0]), ShapeError, "empty key sequence"),
    (lambda m, x: m(x.astype(np.int64), x, x), DTypeError, "int64"),
    (lambda m, x: m(x, x, x, key_padding_mask=np.zeros((5, 3), bool)), ShapeError, "key_padding_mask"),
    (lambda m, x: m(x, x, x, attn_mask=np.zeros((4, 3), bool)), ShapeError, "attn_mask"),
    (lambda m, x: m(x, x, x, attn_mask=np.zeros((4, 4), np.int32)), DTypeError, "attn_mask"),
    (lambda m, x: m.backward(x), PlaitError, "backward"),
    (lambda m, x: (m(x, x, x), m.backward(x[:3])), ShapeError, r"backward.*\(4, 3, 8\)"),
])
def test_bad_calls(call, error, words):
    m = MultiheadAttention(E, H)
    x = np.zeros((4, 3, E), np.float32)  # (L, N, E): seq first, torch's default
    with pytest.raises(error, match=f"MultiheadAttention.*{words}"):
        call(m, x)
