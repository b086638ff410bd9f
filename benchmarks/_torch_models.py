"""The PyTorch counterparts of the benchmarked Plait models, written with ``torch.nn``.

Each one has the same parameters in the same order and shapes as its Plait twin, so
:func:`copy_weights` can copy Plait's initial weights over and the first losses can be
compared (a check that both sides compute the same network). The GPT is written the way
a PyTorch user would (pre-norm blocks, ``F.scaled_dot_product_attention``), with the
zoo ``gpt``'s choices: RoPE ("rotate half") or learned positions, exact GELU, LayerNorm, tied embeddings,
biases everywhere except the head (or none, ``bias=False``), grouped-query attention when ``num_kv_heads`` < heads,
and a preallocated KV cache for generation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TorchGPT", "TorchLSTMLM", "copy_weights", "torch_cnn", "torch_mlp"]


def torch_mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torch_cnn() -> nn.Module:
    """conv(1->32,3x3,p1)-ReLU-maxpool2-conv(32->64,3x3,p1)-ReLU-maxpool2-linear(3136->10)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 10),
    )


class TorchLSTMLM(nn.Module):
    """Embedding -> LSTM (batch first) -> Linear, as the zoo's ``rnn_lm``."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(ids))
        return self.head(out)


# -- GPT --------------------------------------------------------------------------------------
def _rope_tables(dim: int, max_position: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    angles = np.outer(np.arange(max_position, dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return (torch.from_numpy(np.cos(angles).astype(np.float32)),
            torch.from_numpy(np.sin(angles).astype(np.float32)))


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int, kv_heads: int, bias: bool = True) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, d // heads
        kv = kv_heads * self.head_dim
        self.norm1 = nn.LayerNorm(d)
        self.q_proj, self.k_proj = nn.Linear(d, d, bias=bias), nn.Linear(d, kv, bias=bias)
        self.v_proj, self.out_proj = nn.Linear(d, kv, bias=bias), nn.Linear(d, d, bias=bias)
        self.norm2 = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ffn, bias=bias), nn.Linear(ffn, d, bias=bias)

    def _split(self, y: torch.Tensor, heads: int) -> torch.Tensor:
        b, t, _ = y.shape
        return y.view(b, t, heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None,
                cache: list[Any] | None = None) -> torch.Tensor:
        """``cos``/``sin`` None: no RoPE (learned positions are added before the blocks)."""
        b, t, d = x.shape
        h = self.norm1(x)
        q = self._split(self.q_proj(h), self.heads)
        k = self._split(self.k_proj(h), self.kv_heads)
        if cos is not None:
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        v = self._split(self.v_proj(h), self.kv_heads)
        causal = True
        if cache is not None:  # [k_buffer, v_buffer, length], buffers (B, H, max_len, D)
            kb, vb, n = cache
            kb[:, :, n:n + t] = k
            vb[:, :, n:n + t] = v
            cache[2] = n + t
            k, v = kb[:, :, :n + t], vb[:, :, :n + t]
            causal = n == 0  # a prefill is causal; a single new token sees every cached one
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal and t > 1,
                                           enable_gqa=self.kv_heads != self.heads)
        x = x + self.out_proj(o.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TorchGPT(nn.Module):
    """ids (B, T) -> logits (B, T, V); with ``cache`` (from :meth:`new_cache`) T continues it."""

    def __init__(self, vocab_size: int, context_length: int, d_model: int, num_layers: int, num_heads: int,
                 ffn_dim: int | None = None, num_kv_heads: int | None = None, tie_embeddings: bool = True,
                 positional: str = "rope", bias: bool = True) -> None:
        super().__init__()
        self.context_length, self.positional = context_length, positional
        kv_heads = num_kv_heads or num_heads
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(context_length, d_model) if positional == "learned" else None
        self.blocks = nn.ModuleList([_Block(d_model, num_heads, ffn_dim or 4 * d_model, kv_heads, bias)
                                     for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_embeddings:
            self.head.weight = self.tok_emb.weight
        cos, sin = _rope_tables(d_model // num_heads, context_length)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def new_cache(self, batch: int) -> list[list[Any]]:
        blk = self.blocks[0]
        shape = (batch, blk.kv_heads, self.context_length, blk.head_dim)
        return [[torch.empty(shape), torch.empty(shape), 0] for _ in self.blocks]

    def forward(self, ids: torch.Tensor, cache: list[list[Any]] | None = None) -> torch.Tensor:
        offset = cache[0][2] if cache is not None else 0
        t = ids.shape[1]
        x = self.tok_emb(ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(offset, offset + t, device=ids.device))
            cos = sin = None
        else:
            cos, sin = self.cos[offset:offset + t], self.sin[offset:offset + t]
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, None if cache is None else cache[i])
        return self.head(self.norm(x))


@torch.inference_mode()
def torch_generate(model: TorchGPT, prompt: np.ndarray, max_new_tokens: int) -> np.ndarray:
    """Greedy decoding with the KV cache: one prefill call, then one call per new token."""
    model.eval()
    ids = torch.from_numpy(prompt.astype(np.int64))
    cache = model.new_cache(ids.shape[0])
    out = [ids]
    logits = model(ids, cache)
    for _ in range(max_new_tokens):
        nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)
        out.append(nxt)
        if len(out) - 1 == max_new_tokens:
            break
        logits = model(nxt, cache)
    return torch.cat(out, dim=1).numpy()


def copy_weights(plait_model: Any, torch_model: nn.Module) -> None:
    """Copy Plait's parameters into the torch twin, matched by order (shapes must agree)."""
    ours = list(plait_model.named_parameters())
    theirs = list(torch_model.named_parameters())
    if len(ours) != len(theirs):
        raise ValueError(f"parameter counts differ: plait {len(ours)}, torch {len(theirs)}:\n"
                         f"{[n for n, _ in ours]}\n{[n for n, _ in theirs]}")
    with torch.no_grad():
        for (name, p), (tname, t) in zip(ours, theirs):
            data = np.asarray(p.data)
            if tuple(data.shape) != tuple(t.shape):
                raise ValueError(f"shape mismatch: plait {name} {data.shape} vs torch {tname} {tuple(t.shape)}")
            t.copy_(torch.from_numpy(np.ascontiguousarray(data)))
