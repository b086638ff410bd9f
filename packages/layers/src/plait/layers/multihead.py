"""``MultiheadAttention``: ``torch.nn.MultiheadAttention``'s arguments, call, return value and keys.

    mha = MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True, kdim=None, vdim=None,
                             batch_first=False)
    out, weights = mha(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                       average_attn_weights=True, is_causal=False)
    dquery, dkey, dvalue = mha.backward(dout)

Shapes (``batch_first=False``, torch's default): query (L, N, E), key (S, N, kdim), value
(S, N, vdim) -> out (L, N, E); ``batch_first=True`` puts N first; unbatched (L, E) inputs
work too. ``weights``: (N, L, S) averaged over heads, (N, num_heads, L, S) with
``average_attn_weights=False``, None with ``need_weights=False``; they are after dropout,
as torch returns them, and receive no gradient (backward takes the gradient of ``out``).

Masks as torch: ``key_padding_mask`` (N, S), ``attn_mask`` (L, S) or (N*num_heads, L, S);
bool with True = not allowed, or float and added to the scores. ``is_causal`` is torch's
hint that ``attn_mask`` is the causal mask: the mask given is used as it is; without a mask
the causal mask is built here (torch raises instead). A query that may see no key at all
gets a zero output and zero weights (torch gives nan).

Self-attention (the same array passed as query, key and value): the input gradient is the
sum of the three, ``dx = sum(mha.backward(dout))`` (what autograd adds up for torch).

State-dict keys as torch: ``in_proj_weight`` (3E, E) / ``in_proj_bias`` (3E,) when
kdim == vdim == E, else ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim),
``v_proj_weight`` (E, vdim) and ``in_proj_bias``; then ``out_proj.weight`` / ``out_proj.bias``.
Plait's own attention (GQA, RoPE, KV cache, ``forward(x, context)``) is
:class:`~plait.layers.attention.GroupedQueryAttention`, a different design.
"""

from __future__ import annotations

import math
from typing import Any

from plait.core import (
    ConfigError,
    DTypeError,
    Module,
    Param,
    ShapeError,
    check_array,
    check_size,
    get_array_module,
    get_rng,
)
from plait.core.checks import check_output_grad
from plait.core.initializers import XavierUniform, Zeros

from ._attn_core import attention_backward, attention_forward
from ._dropout_maths import dropout_mask
from ._linear_maths import linear_backward, linear_forward
from .linear import Linear

__all__ = ["MultiheadAttention"]

_WHERE = "MultiheadAttention"


def checked_mask(mask: Any, what: str, shapes: list[tuple[int, ...]], where: str) -> Any:
    """A bool or float mask of one of ``shapes`` as an array (None passes through)."""
    if mask is None:
        return None
    xp = get_array_module(mask)
    mask = xp.asarray(mask)
    if mask.dtype != bool and mask.dtype.kind != "f":
        raise DTypeError(f"{where}: expected {what} as a bool or float array, got dtype {mask.dtype}")
    if tuple(mask.shape) not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ShapeError(f"{where}: expected {what} of shape {want}, got shape {tuple(mask.shape)}")
    return mask


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention; see the module docstring for shapes, masks and keys.

    Initialised as torch: the in-projection Xavier-uniform (over the packed (3E, E) matrix when
    kdim == vdim == E), every bias zero.

    Args:
        embed_dim: E, the query and output feature size, an int >= 1 divisible by ``num_heads``.
        num_heads: H, the number of heads (head size E / H), an int >= 1.
        dropout: dropout probability on the attention weights in training, in [0, 1); default 0.0
            (torch also accepts 1).
        bias: learn ``in_proj_bias`` (3E,) and ``out_proj.bias`` (E,); default True.
        add_bias_kv: must be False (the default); True is not supported.
        add_zero_attn: must be False (the default); True is not supported.
        kdim: the key feature size, an int >= 1; default None means E.
        vdim: the value feature size, an int >= 1; default None means E.
        batch_first: inputs and output are (N, L, E) instead of torch's default (L, N, E); default False.
        dtype: dtype of every parameter (inputs are cast to it), default ``"float32"``.

    Shapes:
        ``forward(query, key, value, ...)``: query (L, N, E), key (S, N, kdim), value (S, N, vdim)
        (N first with ``batch_first``; or unbatched (L, E), (S, kdim), (S, vdim)) -> ``(out,
        weights)`` with out of query's shape. ``backward(dout)`` -> ``(dquery, dkey, dvalue)``.

    Raises:
        ConfigError: ``embed_dim``/``num_heads``/``kdim``/``vdim`` not an integer >= 1, E not
            divisible by H, ``add_bias_kv`` or ``add_zero_attn`` set, or ``dropout`` not a number in [0, 1).
        ShapeError: see ``forward`` and ``backward``.
        DTypeError: non-floating inputs or gradient, or a mask neither bool nor float.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype: str = "float32") -> None:
        super().__init__()
        E = self.embed_dim = check_size(embed_dim, _WHERE, "embed_dim")
        self.num_heads = check_size(num_heads, _WHERE, "num_heads")
        if E % self.num_heads:
            raise ConfigError(f"{_WHERE}: embed_dim={E} must be divisible by num_heads={self.num_heads}")
        if add_bias_kv or add_zero_attn:
            raise ConfigError(f"{_WHERE}: add_bias_kv and add_zero_attn are not supported (expected False, got "
                              f"add_bias_kv={add_bias_kv!r}, add_zero_attn={add_zero_attn!r})")
        if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0.0 <= dropout < 1.0):
            raise ConfigError(f"{_WHERE}: expected dropout in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.kdim = E if kdim is None else check_size(kdim, _WHERE, "kdim")
        self.vdim = E if vdim is None else check_size(vdim, _WHERE, "vdim")
        self.batch_first = bool(batch_first)
        self.head_dim = E // self.num_heads
        self._qkv_same_embed_dim = self.kdim == E and self.vdim == E
        rng = get_rng()
        if self._qkv_same_embed_dim:  # torch: Xavier over the packed (3E, E) matrix
            self.in_proj_weight = Param(XavierUniform()((3 * E, E), E, 3 * E, rng, dtype))
        else:
            for n, d in (("q", E), ("k", self.kdim), ("v", self.vdim)):
                setattr(self, f"{n}_proj_weight", Param(XavierUniform()((E, d), d, E, rng, dtype)))
        self.in_proj_bias = Param(Zeros()((3 * E,), E, 3 * E, rng, dtype)) if bias else None
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype)
        if bias:
            self.out_proj.bias.data[...] = 0

    # -- the three projections' weights and biases (views of the packed Params) ---------------------------
    def _proj_weights(self) -> list[Any]:
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight.data
            return [w[:E], w[E:2 * E], w[2 * E:]]
        return [self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data]

    def _proj_biases(self) -> list[Any]:
        if self.in_proj_bias is None:
            return [None, None, None]
        b, E = self.in_proj_bias.data, self.embed_dim
        return [b[:E], b[E:2 * E], b[2 * E:]]

    def _heads(self, y: Any) -> Any:
        """(N, L, E) -> (N, H, L, D), contiguous."""
        xp = get_array_module(y)
        N, L, _ = y.shape
        return xp.ascontiguousarray(y.reshape(N, L, self.num_heads, self.head_dim).transpose(0, 2, 1, 3))

    def _inputs(self, query: Any, key: Any, value: Any) -> tuple[Any, Any, Any, bool]:
        """Validate the three inputs; return them as (N, L, feature) arrays and whether they were batched."""
        q = check_array(query, _WHERE, what="query", ndim=(2, 3), last_dim=self.embed_dim)
        batched = q.ndim == 3
        seq_axis, batch_axis = (1, 0) if self.batch_first else (0, 1)
        dims = {batch_axis: q.shape[batch_axis]} if batched else {}
        for what, a in (("key", key), ("value", value)):
            if getattr(a, "ndim", q.ndim) != q.ndim:
                raise ShapeError(f"{_WHERE}: query has shape {tuple(q.shape)}, so {what} must be {q.ndim}-D too, got "
                                 f"shape {tuple(a.shape)}")
        k = check_array(key, _WHERE, what="key", ndim=q.ndim, last_dim=self.kdim, dims=dims)
        v = check_array(value, _WHERE, what="value", ndim=q.ndim, last_dim=self.vdim,
                        dims={**dims, seq_axis if batched else 0: k.shape[seq_axis if batched else 0]})
        dtype = self.out_proj.weight.data.dtype
        q, k, v = (a if a.dtype == dtype else a.astype(dtype) for a in (q, k, v))
        if not batched:
            return q[None], k[None], v[None], False
        if not self.batch_first:
            q, k, v = (a.transpose(1, 0, 2) for a in (q, k, v))
        return q, k, v, True

    def _layout(self, y: Any, batched: bool) -> Any:
        """(N, L, F) batch-first -> the caller's layout."""
        if not batched:
            return y[0]
        return y if self.batch_first else y.transpose(1, 0, 2)

    # -- forward / backward --------------------------------------------------------------------------------
    def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None, need_weights: bool = True,
                attn_mask: Any = None, average_attn_weights: bool = True, is_causal: bool = False) -> tuple[Any, Any]:
        """Returns (attn_output, attn_weights or None); shapes in the module docstring.

        Args:
            query: (L, N, E), (N, L, E) with ``batch_first``, or unbatched (L, E); float.
            key: (S, N, kdim) / (N, S, kdim) / (S, kdim), the same rank and batch size as query.
            value: (S, N, vdim) / (N, S, vdim) / (S, vdim), with key's S.
            key_padding_mask: (N, S) ((S,) unbatched), bool (True = hidden) or float (added to the
                scores); default None.
            need_weights: also return the attention weights; default True (as torch).
            attn_mask: (L, S) or ``(N*num_heads, L, S)``, bool (True = hidden) or float (added); default None.
            average_attn_weights: average the returned weights over heads; default True (as torch).
            is_causal: with ``attn_mask`` None, build and apply the causal mask here (torch raises);
                with a mask given, the mask is used as it is. Default False.

        Returns:
            ``(out, weights)``: out of query's shape; weights (N, L, S) ((N, H, L, S) without averaging;
            no N unbatched), after dropout as torch returns them and without gradient, or None when
            ``need_weights`` is False. A query that may see no key gets zero output and weights.

        Raises:
            ShapeError: a rank other than 2/3, inputs of different ranks, feature sizes other than
                E/kdim/vdim, batch or key lengths that disagree, an empty key sequence, or a mask of
                the wrong shape.
            DTypeError: a non-floating input, or a mask neither bool nor float.
        """
        q_in, k_in, v_in, batched = self._inputs(query, key, value)
        xp = get_array_module(q_in)
        N, L, _ = q_in.shape
        S = k_in.shape[1]
        H = self.num_heads
        if S == 0:
            raise ShapeError(f"{_WHERE}: got an empty key sequence (key shape {tuple(k_in.shape)}); attention needs "
                             "at least one key")
        kpm = checked_mask(key_padding_mask, "key_padding_mask", [(N, S)] if batched else [(S,)], _WHERE)
        am = checked_mask(attn_mask, "attn_mask", [(L, S), (N * H, L, S)], _WHERE)
        if am is None and is_causal:
            am = xp.triu(xp.ones((L, S), dtype=bool), k=1)
        wq, wk, wv = self._proj_weights()
        bq, bk, bv = self._proj_biases()
        qp, ctx_q = linear_forward(q_in, wq, bq)
        kp, ctx_k = linear_forward(k_in, wk, bk)
        vp, ctx_v = linear_forward(v_in, wv, bv)
        scale = 1.0 / math.sqrt(self.head_dim)
        q, k, v = self._heads(qp) * scale, self._heads(kp), self._heads(vp)
        additive, blocked = None, None
        for mask in (None if kpm is None else kpm.reshape(N, 1, 1, 1, S),
                     None if am is None else (am if am.ndim == 2 else am.reshape(N, H, 1, L, S))):
            if mask is None:
                continue
            if mask.dtype == bool:
                blocked = mask if blocked is None else (blocked | mask)
            else:
                mask = mask.astype(q.dtype, copy=False)
                additive = mask if additive is None else additive + mask
        drop = None
        if self.training and self.dropout > 0:
            drop = dropout_mask((N, H, L, S), self.dropout, q.dtype, xp)
        o, p = attention_forward(q, k, v, 1, additive, blocked, drop)
        merged = o.transpose(0, 2, 1, 3).reshape(N, L, self.embed_dim)
        out = self.out_proj(merged)
        self.save_for_backward((q, k, v, o, p, drop, ctx_q, ctx_k, ctx_v, batched, out.shape))
        weights = None
        if need_weights:
            weights = p if drop is None else p * drop
            if average_attn_weights:
                weights = weights.mean(axis=1)
            if not batched:
                weights = weights[0]
        return self._layout(out, batched), weights

    def backward(self, dy: Any) -> tuple[Any, Any, Any]:
        """dy: the gradient of attn_output; returns (dquery, dkey, dvalue) in the inputs' layouts.

        Args:
            dy: gradient of ``out``, out's shape.

        Returns:
            ``(dquery, dkey, dvalue)`` of the inputs' shapes (for self-attention add the three); adds
            the projection weight and bias gradients.

        Raises:
            ShapeError: dy of another shape than out.
            DTypeError: a non-floating dy.
            PlaitError: no matching forward.
        """
        q, k, v, o, p, drop, ctx_q, ctx_k, ctx_v, batched, shape = self.saved()
        want = shape if not batched else (shape if self.batch_first else (shape[1], shape[0], shape[2]))
        dy = check_output_grad(dy, want[1:] if not batched else want, q.dtype, _WHERE)
        dy = dy[None] if not batched else (dy if self.batch_first else dy.transpose(1, 0, 2))
        N, H, L, D = q.shape
        do = self._heads(self.out_proj.backward(dy))
        dq, dk, dv = attention_backward(do, q, k, v, o, p, drop)
        dq *= 1.0 / math.sqrt(D)
        grads = []
        for d, ctx, w, b in zip((dq, dk, dv), (ctx_q, ctx_k, ctx_v), self._proj_weights(), self._proj_biases()):
            grads.append(linear_backward(d.transpose(0, 2, 1, 3).reshape(N, d.shape[2], self.embed_dim), ctx, w, b))
        xp = get_array_module(dq)
        if self._qkv_same_embed_dim:
            self.in_proj_weight.accumulate(xp.concatenate([g[1] for g in grads]))
        else:
            for n, g in zip("qkv", grads):
                getattr(self, f"{n}_proj_weight").accumulate(g[1])
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate(xp.concatenate([g[2] for g in grads]))
        return tuple(self._layout(g[0], batched) for g in grads)  # type: ignore[return-value]

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if not self._qkv_same_embed_dim:
            s += f", kdim={self.kdim}, vdim={self.vdim}"
        return s + (f", dropout={self.dropout}" if self.dropout else "") + f", batch_first={self.batch_first}"


LAYERS: dict[str, type] = {"multihead_attention": MultiheadAttention}
