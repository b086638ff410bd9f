"""GroupedQueryAttention (Plait's own attention, formerly MultiHeadAttention): parity with torch.nn.MultiheadAttention and an SDPA reference (GQA, RoPE),
finite differences, KV-cached decoding, config round trip, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plait.core import ConfigError, DTypeError, PlaitError, ShapeError, no_grad, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers.attention import GroupedQueryAttention, KVCache

B, T, S, E = 2, 5, 4, 8


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-9) if dtype == "float64" else dict(rtol=1e-4, atol=2e-5)


def _close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.dtype == np.dtype(dtype), what
    np.testing.assert_allclose(ours, theirs, **_tol(dtype), err_msg=what)


def _from_torch_mha(ref: torch.nn.MultiheadAttention, dtype: str, **kw) -> GroupedQueryAttention:
    m = GroupedQueryAttention(ref.embed_dim, ref.num_heads, bias=ref.in_proj_bias is not None, dtype=dtype, **kw)
    if ref._qkv_same_embed_dim:
        weights = ref.in_proj_weight.detach().numpy().reshape(3, E, -1)
    else:
        weights = [w.detach().numpy() for w in (ref.q_proj_weight, ref.k_proj_weight, ref.v_proj_weight)]
    for proj, w in zip((m.q_proj, m.k_proj, m.v_proj), weights):
        proj.weight.data[...] = w
    m.out_proj.weight.data[...] = ref.out_proj.weight.detach().numpy()
    if ref.in_proj_bias is not None:
        for proj, b in zip((m.q_proj, m.k_proj, m.v_proj), ref.in_proj_bias.detach().numpy().reshape(3, E)):
            proj.bias.data[...] = b
        m.out_proj.bias.data[...] = ref.out_proj.bias.detach().numpy()
    return m


def _in_proj_grads(g: dict[str, np.ndarray], ref: torch.nn.MultiheadAttention) -> list[tuple[str, np.ndarray, torch.Tensor]]:
    """(name, our gradient, torch's) pairs; ``g`` is our gradients by parameter name (``OnDevice.grads()``)."""
    pairs = [("out_proj.weight", g["out_proj.weight"], ref.out_proj.weight.grad)]
    if ref._qkv_same_embed_dim:
        ours = np.concatenate([g[f"{n}_proj.weight"] for n in "qkv"])
        pairs.append(("in_proj_weight", ours, ref.in_proj_weight.grad))
    else:
        for n in "qkv":
            pairs.append((f"{n}_proj_weight", g[f"{n}_proj.weight"], getattr(ref, f"{n}_proj_weight").grad))
    if ref.in_proj_bias is not None:
        ours = np.concatenate([g[f"{n}_proj.bias"] for n in "qkv"])
        pairs += [("in_proj_bias", ours, ref.in_proj_bias.grad), ("out_proj.bias", g["out_proj.bias"],
                                                                   ref.out_proj.bias.grad)]
    return pairs


CASES = {  # name: (cross, causal, key padding mask, attn_mask kind, bias, kdim)
    "self": (False, False, None, None, True, None),
    "self_causal": (False, True, None, None, True, None),
    "self_causal_padding": (False, True, "bool", None, True, None),
    "self_float_padding_no_bias": (False, False, "float", None, False, None),
    "self_bool_attn_mask": (False, False, None, "bool2d", True, None),
    "self_float_attn_mask_per_head": (False, False, "float", "float3d", True, None),
    "self_float_causal_minus_inf": (False, False, None, "float_causal", True, None),
    "cross": (True, False, None, None, True, None),
    "cross_padding_attn_mask": (True, False, "bool", "bool2d", True, None),
    "cross_kdim": (True, False, "bool", None, True, 6),
}


def _masks(kind_kpm, kind_am, S_, rng):
    kpm = am = None
    if kind_kpm == "bool":
        kpm = np.zeros((B, S_), bool)
        kpm[0, -1] = kpm[1, 0] = True
    elif kind_kpm == "float":
        kpm = rng.standard_normal((B, S_))
    if kind_am == "bool2d":
        am = rng.random((T, S_)) < 0.3
        am[:, 1] = False  # every query keeps a key
    elif kind_am == "float3d":
        am = rng.standard_normal((B * 2, T, S_))
    elif kind_am == "float_causal":
        am = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64).numpy()  # 0 / -inf
    return kpm, am


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_torch_multihead_attention(case, dtype):
    cross, causal, kind_kpm, kind_am, bias, kdim = CASES[case]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tdtype = getattr(torch, dtype)
    ref = torch.nn.MultiheadAttention(E, 2, bias=bias, batch_first=True, kdim=kdim, vdim=kdim).to(tdtype)
    if bias:
        with torch.no_grad():
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
    m = on_test_device(_from_torch_mha(ref, dtype, causal=causal, kdim=kdim))
    S_ = S if cross else T
    x = torch.randn(B, T, E, dtype=tdtype, requires_grad=True)
    c = torch.randn(B, S, kdim or E, dtype=tdtype, requires_grad=True) if cross else None
    kpm, am = _masks(kind_kpm, kind_am, S_, rng)
    t_am = None if am is None else torch.from_numpy(am).to(tdtype if am.dtype != bool else torch.bool)
    if causal:
        t_am = torch.triu(torch.ones(T, S_, dtype=torch.bool), 1)
    t_kpm = None if kpm is None else torch.from_numpy(kpm).to(tdtype if kpm.dtype != bool else torch.bool)
    src = c if cross else x
    y, _ = ref(x, src, src, key_padding_mask=t_kpm, attn_mask=t_am, need_weights=False)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()

    out = m(x.detach().numpy(), None if c is None else c.detach().numpy(), key_padding_mask=kpm, attn_mask=am)
    _close(out, y, dtype, "output")
    grads = m.backward(dy.numpy())
    if cross:
        _close(grads[0], x.grad, dtype, "dx")
        _close(grads[1], c.grad, dtype, "dcontext")
    else:
        _close(grads, x.grad, dtype, "dx")
    for name, ours, theirs in _in_proj_grads(m.grads(), ref):
        _close(ours, theirs, dtype, name)


# -- GQA / RoPE against a reference built from torch ops and autograd ----------------------------
def torch_rope(x, offset=0, base=10000.0):
    dim, n = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    emb = torch.outer(torch.arange(offset, offset + n, dtype=torch.float64), inv_freq).repeat(1, 2)
    rotated = torch.cat([-x[..., dim // 2 :], x[..., : dim // 2]], dim=-1)
    return x * emb.cos().to(x.dtype) + rotated * emb.sin().to(x.dtype)


def reference_attention(m, x, context, kpm, causal, rope, head_mask=None):
    """Plait's weights, torch's maths: projections, RoPE, repeated kv heads, SDPA."""
    w = {n: torch.tensor(p.data, requires_grad=True) for n, p in m.named_parameters()}
    H, Hkv, D = m.num_heads, m.num_kv_heads, m.head_dim
    src = x if context is None else context

    def heads(y, n):
        return y.view(y.shape[0], y.shape[1], n, D).transpose(1, 2)

    q = heads(F.linear(x, w["q_proj.weight"], w.get("q_proj.bias")), H)
    k = heads(F.linear(src, w["k_proj.weight"], w.get("k_proj.bias")), Hkv)
    v = heads(F.linear(src, w["v_proj.weight"], w.get("v_proj.bias")), Hkv)
    if rope:
        q, k = torch_rope(q), torch_rope(k)
    k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
    allowed = torch.ones(x.shape[0], 1, x.shape[1], src.shape[1], dtype=torch.bool)
    if causal:
        allowed = allowed & torch.ones(x.shape[1], src.shape[1], dtype=torch.bool).tril()
    if kpm is not None:
        allowed = allowed & ~torch.from_numpy(kpm)[:, None, None, :]
    mask = allowed
    if head_mask is not None:  # (B*H, T, S) additive, one per query head
        mask = torch.from_numpy(head_mask).to(x.dtype).view(x.shape[0], H, x.shape[1], -1)
        mask = mask.masked_fill(~allowed, float("-inf"))
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    y = F.linear(o.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1), w["out_proj.weight"], w.get("out_proj.bias"))
    return y, w


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("heads, kv_heads, causal, rope, padding, cross", [
    (4, 2, False, False, False, False),
    (4, 2, True, False, True, "head_mask"),  # per-head float mask: checks the query-head grouping
    (4, 1, True, False, True, False),      # MQA
    (4, 4, True, True, False, False),      # RoPE, MHA
    (4, 2, True, True, True, False),       # GQA + RoPE + causal + padding
    (4, 2, False, False, True, True),      # GQA cross-attention
])
def test_parity_gqa_rope_with_sdpa_reference(dtype, heads, kv_heads, causal, rope, padding, cross):
    torch.manual_seed(1)
    m = GroupedQueryAttention(16, heads, num_kv_heads=kv_heads, causal=causal, rope=rope, dtype=dtype)
    for p in m.parameters():
        p.data[...] = np.random.default_rng(p.size).standard_normal(p.shape) * 0.3
    tdtype = getattr(torch, dtype)
    x = torch.randn(B, T, 16, dtype=tdtype, requires_grad=True)
    head_mask = None
    if cross == "head_mask":
        cross, head_mask = False, np.random.default_rng(2).standard_normal((B * heads, T, T))
    c = torch.randn(B, S, 16, dtype=tdtype, requires_grad=True) if cross else None
    kpm = None
    if padding:
        kpm = np.zeros((B, S if cross else T), bool)
        kpm[0, -2:] = True
    y, w = reference_attention(m, x, c, kpm, causal, rope, head_mask)  # reads the weights on the CPU
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    m = on_test_device(m)
    out = m(x.detach().numpy(), None if c is None else c.detach().numpy(), key_padding_mask=kpm, attn_mask=head_mask)
    _close(out, y, dtype, "output")
    grads = m.backward(dy.numpy())
    _close(grads[0] if cross else grads, x.grad, dtype, "dx")
    if cross:
        _close(grads[1], c.grad, dtype, "dcontext")
    param_grads = m.grads()
    assert sorted(param_grads) == sorted(w)
    for name, g in param_grads.items():
        _close(g, w[name].grad, dtype, name)


# -- finite differences ------------------------------------------------------------------------------
def test_gradcheck_self_attention_gqa_rope_causal_masks():
    m = GroupedQueryAttention(8, 4, num_kv_heads=2, causal=True, rope=True, dtype="float64")
    rng = np.random.default_rng(0)
    kpm = np.zeros((2, 4), bool)
    kpm[1, 0] = True
    gradcheck(m, rng.standard_normal((2, 4, 8)), max_checks=12,
              forward_kwargs={"key_padding_mask": kpm, "attn_mask": rng.standard_normal((4, 4))})


def test_gradcheck_cross_attention_context():
    m = GroupedQueryAttention(8, 2, num_kv_heads=1, kdim=6, dtype="float64")
    rng = np.random.default_rng(1)
    gradcheck(m, rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 5, 6)), max_checks=12,
              forward_kwargs={"key_padding_mask": rng.random((2, 5)) < 0.3})


def test_dropout_on_attention_weights():
    """Dropout mask injected: gradcheck in training mode, mask really applied, eval mode unaffected."""
    m = GroupedQueryAttention(8, 2, dropout=0.5, dtype="float64")
    rng = np.random.default_rng(2)
    mask = (rng.random((2, 2, 3, 3)) < 0.5) / 0.5
    m._dropout_mask = lambda shape, xp, dtype: xp.asarray(mask)
    x = rng.standard_normal((2, 3, 8))
    gradcheck(m, x, max_checks=12)  # on PLAIT_DEVICE, where the module now lives
    layer = on_test_device(m)
    with no_grad():
        train_out = layer(x)
        layer.eval()
        eval_out = layer(x)
        m._dropout_mask = lambda shape, xp, dtype: xp.ones(shape)
        layer.train()
        ones_out = layer(x)
    assert not np.allclose(train_out, eval_out)
    np.testing.assert_allclose(ones_out, eval_out)


def test_fully_masked_query_gives_zeros_not_nan():
    m = GroupedQueryAttention(8, 2, bias=False, dtype="float64")
    x = np.random.default_rng(3).standard_normal((1, 3, 8))
    am = np.zeros((3, 3), bool)
    am[1] = True  # query 1 may see nothing
    y = m(x, attn_mask=am)
    assert np.all(np.isfinite(y)) and np.allclose(y[0, 1], 0)
    assert np.all(np.isfinite(m.backward(np.ones_like(y))))


# -- KV cache -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunks", [[1] * 7, [3, 1, 3]])
@pytest.mark.parametrize("rope", [False, True])
def test_kv_cached_decoding_equals_full_pass(chunks, rope):
    m = GroupedQueryAttention(8, 4, num_kv_heads=2, causal=True, rope=rope, dtype="float64")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 8))
    kpm = np.zeros((2, 7), bool)
    kpm[1, :2] = True  # left padding on the second sequence
    with no_grad():
        full = m(x, key_padding_mask=kpm)
        cache, outs, start = KVCache(), [], 0
        for n in chunks:
            outs.append(m(x[:, start : start + n], key_padding_mask=kpm[:, : start + n], kv_cache=cache))
            start += n
    assert cache.length == 7 and cache.k.shape == (2, 2, 7, 2) and cache.v.shape == (2, 2, 7, 2)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), full, rtol=1e-12, atol=1e-12)
    # without the cache the later steps would differ: the cache really carries the context
    with no_grad():
        assert not np.allclose(m(x[:, -1:]), full[:, -1:])


def test_cross_attention_cache_is_filled_once_and_reused():
    m = GroupedQueryAttention(8, 2, dtype="float64")
    rng = np.random.default_rng(5)
    x, memory = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 6, 8))
    with no_grad():
        full = m(x, memory)
        cache = KVCache()
        first = m(x[:, :2], memory, kv_cache=cache)
        rest = m(x[:, 2:], kv_cache=cache)  # the context is no longer needed
    assert cache.cross and cache.length == 6
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), full, rtol=1e-12)


def test_backward_after_cached_forward_is_a_clear_error():
    m = GroupedQueryAttention(8, 2)
    y = m(np.zeros((1, 1, 8), np.float32), kv_cache=KVCache())
    assert all(not sub._saved_stack for sub in (m.q_proj, m.k_proj, m.v_proj, m.out_proj))
    with pytest.raises(PlaitError, match="kv_cache.*inference only"):
        m.backward(y)


# -- config, dtype, errors ---------------------------------------------------------------------------------
def test_config_round_trip_and_layout():
    m = GroupedQueryAttention(16, 4, num_kv_heads=2, dropout=0.1, causal=True, rope=True)
    cfg = m.config()
    assert cfg["type"] == "grouped_query_attention"
    rebuilt = registry.build(cfg)
    old = registry.build({**cfg, "type": "multi_head_attention"})  # the name before the rename still builds
    assert type(old) is GroupedQueryAttention and old.config() == cfg
    assert rebuilt.config() == cfg and rebuilt.groups == 2
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        "q_proj.weight": (16, 16), "q_proj.bias": (16,), "k_proj.weight": (8, 16), "k_proj.bias": (8,),
        "v_proj.weight": (8, 16), "v_proj.bias": (8,), "out_proj.weight": (16, 16), "out_proj.bias": (16,)}
    assert not np.any(rebuilt.q_proj.bias.data) and not np.any(rebuilt.out_proj.bias.data)  # torch's init


def test_float32_stays_float32():
    m = GroupedQueryAttention(8, 2, rope=True, causal=True)
    y = m(np.ones((2, 3, 8), np.float64))
    assert y.dtype == np.float32 and m.backward(np.ones_like(y)).dtype == np.float32


def test_bad_configs():
    with pytest.raises(ConfigError, match="num_kv_heads"):
        GroupedQueryAttention(8, 4, num_kv_heads=3)
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        GroupedQueryAttention(10, 4)


@pytest.mark.parametrize("call, error, words", [
    (lambda m: m(np.zeros((3, 8), np.float32)), ShapeError, "GroupedQueryAttention.*3-D"),
    (lambda m: m(np.zeros((2, 3, 6), np.float32)), ShapeError, "GroupedQueryAttention.*last dimension 8"),
    (lambda m: m(np.zeros((2, 3, 8), np.int64)), DTypeError, "GroupedQueryAttention.*int64"),
    (lambda m: m(np.zeros((2, 3, 8), np.float32), np.zeros((3, 4, 8), np.float32)), ShapeError, "context"),
    (lambda m: m(np.zeros((2, 3, 8), np.float32), key_padding_mask=np.zeros((2, 4), bool)), ShapeError,
     r"key_padding_mask of shape \(2, 3\)"),
    (lambda m: m(np.zeros((2, 3, 8), np.float32), attn_mask=np.zeros((3, 2), bool)), ShapeError,
     r"attn_mask of shape \(3, 3\) or \(4, 3, 3\)"),
    (lambda m: m(np.zeros((2, 3, 8), np.float32), key_padding_mask=np.zeros((2, 3), np.int64)), DTypeError,
     "key_padding_mask as a bool or float"),
    (lambda m: m.backward(np.zeros((2, 3, 8), np.float32)), PlaitError, "GroupedQueryAttention.backward"),
])
def test_bad_inputs_raise_naming_the_layer(call, error, words):
    m = GroupedQueryAttention(8, 2)
    with pytest.raises(error, match=words):
        call(m)
    assert not any(sub._saved_stack for sub in m.modules())  # checked before any sub-layer ran


def test_wrong_output_gradient_shape():
    m = GroupedQueryAttention(8, 2)
    m(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ShapeError, match=r"GroupedQueryAttention.backward.*\(2, 3, 8\)"):
        m.backward(np.zeros((2, 4, 8), np.float32))


@pytest.mark.gpu
def test_device_path_matches_cpu():
    """Device-path test: on a machine with CuPy and a GPU it compares the GPU with NumPy (numeric
    parity); everywhere else it runs on the strict CuPy stand-in of tests/_device, whose maths is
    NumPy's on both sides, so it proves the device code path (no host arrays, no implicit host
    syncs), not the numbers. Named ``test_device_path_*`` to be counted apart from the numeric
    parity tests.
    """
    from plait.core.backend import cupy_available, to_numpy

    if not cupy_available():
        pytest.skip("needs CuPy (a GPU, or the stand-in conftest installs)")
    m = GroupedQueryAttention(8, 4, num_kv_heads=2, causal=True, rope=True, dtype="float64")
    x = np.random.default_rng(6).standard_normal((2, 5, 8))
    kpm = np.zeros((2, 5), bool)
    kpm[0, -1] = True
    y_cpu, dx_cpu = m(x, key_padding_mask=kpm), m.backward(np.ones((2, 5, 8)))
    m.to("cuda")
    import cupy

    y = m(cupy.asarray(x), key_padding_mask=kpm)
    dx = m.backward(cupy.ones((2, 5, 8)))
    np.testing.assert_allclose(to_numpy(y), y_cpu, rtol=1e-10)
    np.testing.assert_allclose(to_numpy(dx), dx_cpu, rtol=1e-10)


def test_rope_positions_beyond_the_table():
    m = GroupedQueryAttention(8, 2, rope=True, max_position=4)
    with pytest.raises(ShapeError, match="max_position=4"):
        m(np.zeros((1, 5, 8), np.float32))


def test_scale_is_one_over_sqrt_head_dim():
    m = GroupedQueryAttention(4, 1, bias=False, dtype="float64")
    for p in (m.q_proj, m.k_proj, m.v_proj, m.out_proj):
        p.weight.data[...] = np.eye(4)
    x = np.array([[[1.0, 0, 0, 0], [0, 2.0, 0, 0]]])
    with no_grad():
        y = m(x)
    s = x[0] @ x[0].T / math.sqrt(4)
    p = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    np.testing.assert_allclose(y[0], p @ x[0])
