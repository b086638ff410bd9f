"""gpt against a small PyTorch reference (pre-norm, RoPE, GQA, GELU FFN, tied head): logits and every gradient.

The Plait model runs on ``PLAIT_DEVICE`` (the CPU when unset); the reference on the CPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import manual_seed
from plait.core.testing import on_test_device

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _rope(x, base=10000.0):
    """x: (B, H, T, D), rotate-half convention."""
    T, D = x.shape[-2], x.shape[-1]
    inv = 1.0 / base ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    ang = torch.cat([ang, ang], dim=-1)
    rot = torch.cat([-x[..., D // 2:], x[..., : D // 2]], dim=-1)
    return x * ang.cos() + rot * ang.sin()


def _torch_gpt(w, ids, num_layers, H, Hkv):
    x = w["tok_emb.weight"][ids]
    B, T, E = x.shape
    D = E // H
    for i in range(num_layers):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (E,), w[p + "norm1.weight"], w[p + "norm1.bias"])
        q = F.linear(h, w[p + "attn.q_proj.weight"], w[p + "attn.q_proj.bias"]).view(B, T, H, D).transpose(1, 2)
        k = F.linear(h, w[p + "attn.k_proj.weight"], w[p + "attn.k_proj.bias"]).view(B, T, Hkv, D).transpose(1, 2)
        v = F.linear(h, w[p + "attn.v_proj.weight"], w[p + "attn.v_proj.bias"]).view(B, T, Hkv, D).transpose(1, 2)
        q, k = _rope(q), _rope(k)
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, E)
        x = x + F.linear(o, w[p + "attn.out_proj.weight"], w[p + "attn.out_proj.bias"])
        h = F.layer_norm(x, (E,), w[p + "norm2.weight"], w[p + "norm2.bias"])
        h = F.gelu(F.linear(h, w[p + "ffn.linear1.weight"], w[p + "ffn.linear1.bias"]))
        x = x + F.linear(h, w[p + "ffn.linear2.weight"], w[p + "ffn.linear2.bias"])
    x = F.layer_norm(x, (E,), w["norm.weight"], w["norm.bias"])
    return x @ w["tok_emb.weight"].T


def test_gpt_matches_a_torch_reference_in_float64():
    manual_seed(3)
    L, H, Hkv = 2, 4, 2
    model = zoo.create("gpt", vocab_size=17, context_length=16, d_model=16, num_layers=L, num_heads=H,
                       num_kv_heads=Hkv, ffn_dim=24, tie_embeddings=True).astype(np.float64)
    for module in model.modules():  # rotary tables are built in float32; rebuild them in float64
        if type(module).__name__ == "RotaryEmbedding":
            from plait.layers.rotary import rope_tables

            module.cos, module.sin = rope_tables(module.dim, module.max_position, module.base)
    rng = np.random.default_rng(0)
    for p in model.parameters():  # move away from the init's zeros so every term matters
        p.data += 0.1 * rng.standard_normal(p.shape)
    ids = rng.integers(0, 17, (3, 9))
    dlogits = rng.standard_normal((3, 9, 17))

    weights = {k: torch.tensor(v, requires_grad=True) for k, v in model.state_dict().items()}
    ref = _torch_gpt(weights, torch.tensor(ids), L, H, Hkv)
    (ref * torch.tensor(dlogits)).sum().backward()

    model = on_test_device(model)  # the weights the reference copied, moved to PLAIT_DEVICE
    logits = model(ids)
    np.testing.assert_allclose(logits, ref.detach().numpy(), rtol=1e-6, atol=1e-10)
    model.backward(dlogits)
    named = dict(model.named_parameters())
    assert set(named) == set(weights)  # the tied head is one parameter, saved once
    grads = model.grads()
    assert set(grads) == set(named)  # every parameter got a gradient
    for name in named:
        np.testing.assert_allclose(grads[name], weights[name].grad.numpy(), rtol=1e-6, atol=1e-10, err_msg=name)
