"""Plait's own attention, ``GroupedQueryAttention`` (self and cross, GQA/MQA, causal, RoPE), and its KV cache.

Not torch's: it takes ``forward(x, context)`` batch first and returns only the output. For
``torch.nn.MultiheadAttention``'s call, layout and state-dict keys use
:class:`~plait.layers.multihead.MultiheadAttention`. (This class was called
``MultiHeadAttention`` before; its registered name ``"multi_head_attention"`` still builds it.)

    mha = GroupedQueryAttention(256, 8, num_kv_heads=2, causal=True, rope=True)
    y = mha(x)                                   # x: (B, T, E) -> (B, T, E), batch first
    y = mha(x, context)                          # cross-attention over context (B, S, kdim)
    dx = mha.backward(dy)                        # or (dx, dcontext) for cross-attention

    cache = KVCache()                            # step-by-step decoding (inference only)
    with no_grad():
        for x_t in steps: y_t = mha(x_t, kv_cache=cache)

Sub-layers ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` are :class:`Linear`; ``k_proj`` and
``v_proj`` have ``num_kv_heads * head_dim`` outputs; query head h reads key/value head
``h // (num_heads // num_kv_heads)`` (the ``repeat_interleave`` convention of LLaMA and
``scaled_dot_product_attention(enable_gqa=True)``). Masks follow ``torch.nn.MultiheadAttention``:
``key_padding_mask`` (B, S) and ``attn_mask`` (T, S) or (B*num_heads, T, S), boolean with
True = not allowed, or float and added to the scores. A query that may see no key at all
gets a zero output (torch gives nan). RoPE rotates queries and keys of self-attention only.
The maths is in :mod:`._attn_core`.
"""

from __future__ import annotations

import math
from typing import Any

from plait.core import (
    ConfigError,
    DTypeError,
    Module,
    PlaitError,
    ShapeError,
    check_array,
    check_size,
    get_array_module,
    get_rng,
    no_grad,
)
from plait.core.initializers import XavierUniform, Zeros

from ._attn_core import attention_backward, attention_forward
from ._dropout_maths import dropout_mask
from .linear import Linear
from .rotary import RotaryEmbedding, rope_backward, rope_forward

__all__ = ["KVCache", "GroupedQueryAttention"]

_CACHED_CALL = "kv-cached forward"  # pushed instead of a cache when forward used a KVCache


class KVCache:
    """Keys and values of the steps seen so far, for one attention layer.

    ``k``, ``v``: (B, Hkv, S, D) views of the cached entries (None while empty); ``length`` = S.
    Self-attention appends each call's keys/values; a cross-attention cache is filled from the
    context on its first call and reused as is afterwards (``cross`` is then True).
    Storage grows by doubling, so appending one step costs no re-allocation most of the time.
    """

    def __init__(self) -> None:
        self._k: Any = None
        self._v: Any = None
        self._length = 0
        self.cross = False

    @property
    def length(self) -> int:
        return self._length

    @property
    def k(self) -> Any:
        return None if self._k is None else self._k[:, :, : self._length]

    @property
    def v(self) -> Any:
        return None if self._v is None else self._v[:, :, : self._length]

    def append(self, k: Any, v: Any) -> None:
        """Add keys/values (B, Hkv, S_new, D) after the cached ones.

        Args:
            k: new keys (B, Hkv, S_new, D).
            v: new values, k's shape.

        Raises:
            ShapeError: B, Hkv or D differ from the cached entries'.
        """
        new = k.shape[2]
        if self._k is not None and (k.shape[:2] != self._k.shape[:2] or k.shape[3] != self._k.shape[3]):
            raise ShapeError(f"KVCache: cached keys have shape {tuple(self.k.shape)}, cannot append {tuple(k.shape)}")
        if self._k is None or self._length + new > self._k.shape[2]:
            xp = get_array_module(k)
            capacity = max(2 * (self._length + new), 16)
            grown_k = xp.empty(k.shape[:2] + (capacity,) + k.shape[3:], dtype=k.dtype)
            grown_v = xp.empty(v.shape[:2] + (capacity,) + v.shape[3:], dtype=v.dtype)
            if self._length:
                grown_k[:, :, : self._length] = self.k
                grown_v[:, :, : self._length] = self.v
            self._k, self._v = grown_k, grown_v
        self._k[:, :, self._length : self._length + new] = k
        self._v[:, :, self._length : self._length + new] = v
        self._length += new

    def reset(self) -> None:
        self.__init__()

    def __repr__(self) -> str:
        shape = None if self._k is None else tuple(self.k.shape)
        return f"KVCache(length={self._length}, k={shape}, cross={self.cross})"


class GroupedQueryAttention(Module):
    """softmax(q k^T / sqrt(D) + masks) v over ``num_heads`` heads of size D = embed_dim / num_heads.

    Initialised like ``torch.nn.MultiheadAttention``: q/k/v weights Xavier-uniform over the
    stacked (E + 2 Hkv D, E) in-projection, zero in-projection and output biases.

    Args:
        embed_dim: E, the feature size of x and of the output, a positive multiple of ``num_heads``.
        num_heads: H, the number of query heads (head size D = E / H), an int >= 1.
        num_kv_heads: Hkv, the number of key/value heads, dividing H (1: multi-query attention);
            default None means H (plain multi-head attention).
        bias: learn biases in the four projections; default True.
        dropout: dropout probability on the attention weights in training (not with a ``kv_cache``),
            in [0, 1); default 0.0.
        causal: mask every key after its query (offset by the cache length when decoding); default
            False. ``forward(..., is_causal=)`` overrides it per call.
        rope: rotate queries and keys of self-attention with a ``RotaryEmbedding`` of size D
            (sub-layer ``rotary``); default False.
        kdim: feature size of the cross-attention ``context``; default None means E (then a context
            is optional; otherwise required).
        rope_base: the RoPE frequency base, default 10000.0 (used only with ``rope``).
        max_position: rows of the RoPE tables, the longest position (cache included), default 4096
            (used only with ``rope``).
        dtype: dtype of every parameter, default ``"float32"``.

    Shapes:
        ``forward(x, context=None, ...)``: x (B, T, E), context (B, S, kdim) -> y (B, T, E).
        ``backward(dy)``: dy (B, T, E) -> dx (B, T, E) for self-attention, ``(dx, dcontext)`` for
        cross-attention.

    Raises:
        ConfigError: a size that is not an integer >= 1, E not a multiple of H, Hkv not dividing H,
            ``dropout`` outside [0, 1), or a RoPE head size / ``max_position`` / ``rope_base`` that
            ``RotaryEmbedding`` refuses.
        ShapeError: see ``forward`` and ``backward``.
        DTypeError: a non-floating input or gradient, or a mask that is neither bool nor float.
    """

    def __init__(self, embed_dim: int, num_heads: int, num_kv_heads: int | None = None, bias: bool = True,
                 dropout: float = 0.0, causal: bool = False, rope: bool = False, kdim: int | None = None,
                 rope_base: float = 10000.0, max_position: int = 4096, dtype: str = "float32") -> None:
        super().__init__()
        E, H = check_size(embed_dim, "GroupedQueryAttention", "embed_dim"), check_size(num_heads, "GroupedQueryAttention", "num_heads")
        Hkv = H if num_kv_heads is None else check_size(num_kv_heads, "GroupedQueryAttention", "num_kv_heads")
        if kdim is not None:
            check_size(kdim, "GroupedQueryAttention", "kdim")
        if E <= 0 or H <= 0 or E % H:
            raise ConfigError(f"GroupedQueryAttention: embed_dim ({embed_dim}) must be a positive multiple of "
                              f"num_heads ({num_heads})")
        if Hkv <= 0 or H % Hkv:
            raise ConfigError(f"GroupedQueryAttention: num_kv_heads ({num_kv_heads}) must divide num_heads ({H})")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"GroupedQueryAttention: dropout must lie in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.num_kv_heads = E, H, Hkv
        self.head_dim, self.groups = E // H, H // Hkv
        self.kdim = E if kdim is None else int(kdim)
        self.dropout, self.causal, self.use_rope = float(dropout), bool(causal), bool(rope)
        kv_out = Hkv * self.head_dim
        self.q_proj = Linear(E, E, bias=bias, dtype=dtype)
        self.k_proj = Linear(self.kdim, kv_out, bias=bias, dtype=dtype)
        self.v_proj = Linear(self.kdim, kv_out, bias=bias, dtype=dtype)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype)
        rng = get_rng()
        stacked_out = E + 2 * kv_out
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            # torch: Xavier over the stacked in-projection; separate weights each on their own when kdim != E
            fan_out = stacked_out if self.kdim == E else proj.out_features
            proj.weight.data = XavierUniform()(proj.weight.shape, proj.in_features, fan_out, rng, dtype)
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if proj.bias is not None:
                proj.bias.data = Zeros()(proj.bias.shape, E, E, rng, dtype)
        if self.use_rope:
            self.rotary = RotaryEmbedding(self.head_dim, base=rope_base, max_position=max_position, dtype=dtype)

    # -- masks ---------------------------------------------------------------------------------
    def check_masks(self, B: int, T: int, S: int, key_padding_mask: Any = None, attn_mask: Any = None,
                    where: str = "GroupedQueryAttention") -> tuple[Any, Any]:
        """Validate masks for B sequences of T queries over S keys; returns them as arrays (or None).

        key_padding_mask: (B, S); attn_mask: (T, S) or (B*num_heads, T, S); each bool or float.
        Containing layers call this with their own name before running any sub-layer.

        Args:
            B: the batch size.
            T: the number of queries.
            S: the number of keys (cached ones included).
            key_padding_mask: (B, S) or None (default): True (or -inf) hides a key.
            attn_mask: (T, S) or ``(B*num_heads, T, S)`` or None (default): True hides, a float is added.
            where: the component named in error messages; default ``"GroupedQueryAttention"``.

        Returns:
            ``(key_padding_mask, attn_mask)`` as arrays, each None when not given.

        Raises:
            DTypeError: a mask that is neither bool nor float.
            ShapeError: a mask of another shape.
        """
        checked = []
        for mask, what, shapes in ((key_padding_mask, "key_padding_mask", [(B, S)]),
                                   (attn_mask, "attn_mask", [(T, S), (B * self.num_heads, T, S)])):
            if mask is not None:
                xp = get_array_module(mask)
                mask = xp.asarray(mask)
                if mask.dtype != bool and mask.dtype.kind != "f":
                    raise DTypeError(f"{where}: expected {what} as a bool or float array, got dtype {mask.dtype}")
                if tuple(mask.shape) not in shapes:
                    want = " or ".join(str(s) for s in shapes)
                    raise ShapeError(f"{where}: expected {what} of shape {want}, got shape {tuple(mask.shape)}")
            checked.append(mask)
        return checked[0], checked[1]

    def _masks(self, B: int, T: int, S: int, offset: int, causal: bool, kpm: Any, am: Any, dtype: Any,
               xp: Any) -> tuple[Any, Any]:
        """(additive, blocked) arrays broadcastable to (B, Hkv, G, T, S), or None; masks already checked."""
        additive, blocked = None, None

        def add(mask: Any) -> None:
            nonlocal additive, blocked
            mask = xp.asarray(mask)
            if mask.dtype == bool:
                blocked = mask if blocked is None else (blocked | mask)
            else:
                mask = mask.astype(dtype, copy=False)
                additive = mask if additive is None else additive + mask

        if kpm is not None:
            add(kpm.reshape(B, 1, 1, 1, S))
        if am is not None:
            add(am if am.ndim == 2 else am.reshape(B, self.num_kv_heads, self.groups, T, S))
        if causal:
            add(xp.triu(xp.ones((T, S), dtype=bool), k=1 + offset))
        return additive, blocked

    def _dropout_mask(self, shape: tuple[int, ...], xp: Any, dtype: Any) -> Any:
        return dropout_mask(shape, self.dropout, dtype, xp)

    # -- forward / backward ----------------------------------------------------------------------
    def _heads(self, y: Any, B: int, L: int, heads: int) -> Any:
        """(B, L, heads*D) -> (B, heads, L, D), contiguous."""
        xp = get_array_module(y)
        return xp.ascontiguousarray(y.reshape(B, L, heads, self.head_dim).transpose(0, 2, 1, 3))

    def forward(self, x: Any, context: Any = None, key_padding_mask: Any = None, attn_mask: Any = None,
                kv_cache: KVCache | None = None, is_causal: bool | None = None) -> Any:
        """x: (B, T, E); context: (B, S, kdim) or None; returns (B, T, E).

        ``is_causal`` overrides the constructor's ``causal`` for this call.

        Args:
            x: the queries (and, without ``context``, the keys/values), (B, T, E), float.
            context: keys/values for cross-attention, (B, S, kdim); default None (self-attention).
                Required when ``kdim`` differs from E (unless a filled cross-attention cache is given).
            key_padding_mask: (B, S), bool (True = padding, hidden) or float (added to the scores);
                default None. S counts the cached keys too.
            attn_mask: (T, S) or ``(B*num_heads, T, S)``, bool (True = hidden) or float (added); default None.
            kv_cache: a ``KVCache`` for step-by-step decoding; the call then keeps no cache for
                backward (inference only). Default None.
            is_causal: True/False overrides the constructor's ``causal`` for this call; default None
                keeps it.

        Returns:
            y (B, T, E). A query that may see no key gets a zero output (torch gives nan).

        Raises:
            ShapeError: x not (B, T, E); a context not (B, S, kdim); no context when one is required;
                an empty key sequence; a batch size other than the cache's; a mask of the wrong shape;
                positions beyond the RoPE tables.
            DTypeError: a non-floating x or context, or a mask neither bool nor float.
        """
        if kv_cache is None:
            return self._forward(x, context, key_padding_mask, attn_mask, None, is_causal)
        with no_grad():
            y = self._forward(x, context, key_padding_mask, attn_mask, kv_cache, is_causal)
        self.save_for_backward(_CACHED_CALL)
        return y

    def _forward(self, x: Any, context: Any, key_padding_mask: Any, attn_mask: Any, kv_cache: KVCache | None,
                 is_causal: bool | None) -> Any:
        where = "GroupedQueryAttention"
        x = check_array(x, where, ndim=3, last_dim=self.embed_dim)
        xp = get_array_module(x)
        B, T, _ = x.shape
        H, Hkv, D, G = self.num_heads, self.num_kv_heads, self.head_dim, self.groups
        cross = context is not None or (kv_cache is not None and kv_cache.cross)
        if context is not None:
            context = check_array(context, where, what="context", ndim=3, last_dim=self.kdim, dims={0: B})
        elif cross and kv_cache.length == 0:
            raise ShapeError(f"{where}: an empty cross-attention KVCache needs the context")
        elif self.kdim != self.embed_dim and not cross:
            raise ShapeError(f"{where}: kdim={self.kdim} differs from embed_dim, so a context is required")
        offset = kv_cache.length if (kv_cache is not None and not cross) else 0
        causal = self.causal if is_causal is None else bool(is_causal)
        reuse = cross and kv_cache is not None and kv_cache.length > 0
        src = context if cross else x
        S_new = 0 if reuse else src.shape[1]
        S = kv_cache.length + S_new if kv_cache is not None else S_new
        # every check before any sub-layer runs, so a bad call leaves no stale forward cache behind
        if S == 0:  # softmax over no keys is undefined (torch gives nan)
            raise ShapeError(f"{where}: got an empty key sequence ({'context' if cross else 'input'} shape "
                             f"{tuple(src.shape)}); attention needs at least one key")
        if kv_cache is not None and kv_cache.length and kv_cache.k.shape[0] != B:
            raise ShapeError(f"{where}: batch size {B} differs from the KV cache's {kv_cache.k.shape[0]}")
        kpm, am = self.check_masks(B, T, S, key_padding_mask, attn_mask, where)
        if self.use_rope:
            self.rotary.tables(offset, max(T, S_new), where)

        q = self._heads(self.q_proj(x), B, T, H)
        if self.use_rope:
            cos, sin = self.rotary.tables(offset, T, where)
            q = rope_forward(q, cos=cos, sin=sin)[0]
        q *= 1.0 / math.sqrt(D)
        if reuse:
            k, v = kv_cache.k, kv_cache.v
        else:
            k = self._heads(self.k_proj(src), B, S_new, Hkv)
            v = self._heads(self.v_proj(src), B, S_new, Hkv)
            if self.use_rope and not cross:
                cos, sin = self.rotary.tables(offset, S_new, where)
                k = rope_forward(k, cos=cos, sin=sin)[0]
            if kv_cache is not None:
                kv_cache.append(k, v)
                kv_cache.cross = cross
                k, v = kv_cache.k, kv_cache.v
        additive, blocked = self._masks(B, T, S, offset, causal, kpm, am, q.dtype, xp)
        q = q.reshape(B, Hkv, G * T, D)
        drop = None
        if self.training and self.dropout > 0 and kv_cache is None:
            drop = self._dropout_mask((B, Hkv, G * T, S), xp, q.dtype)
        o, p = attention_forward(q, k, v, G, additive, blocked, drop)
        self.save_for_backward((q, k, v, o, p, drop, cross, offset, B, T, S))
        merged = o.reshape(B, H, T, D).transpose(0, 2, 1, 3).reshape(B, T, self.embed_dim)
        return self.out_proj(merged)

    def backward(self, dy: Any) -> Any:
        """Returns dx (self-attention) or (dx, dcontext) (cross-attention).

        Args:
            dy: gradient of y, (B, T, E).

        Returns:
            dx (B, T, E) for self-attention; ``(dx, dcontext)`` with dcontext (B, S, kdim) for cross-attention.

        Raises:
            ShapeError: dy not (B, T, E).
            DTypeError: a non-floating dy.
            PlaitError: no matching forward, or the matching forward used a ``kv_cache``.
        """
        ctx = self.saved()
        if isinstance(ctx, str) and ctx == _CACHED_CALL:
            raise PlaitError("GroupedQueryAttention.backward: the matching forward used a kv_cache; KV-cached "
                             "decoding is inference only (run it inside plait.core.no_grad())")
        q, k, v, o, p, drop, cross, offset, B, T, S = ctx
        H, Hkv, D, G = self.num_heads, self.num_kv_heads, self.head_dim, self.groups
        dy = check_array(dy, "GroupedQueryAttention.backward", what="output gradient", ndim=3)
        if tuple(dy.shape) != (B, T, self.embed_dim):
            raise ShapeError(f"GroupedQueryAttention.backward: expected output gradient of shape "
                             f"{(B, T, self.embed_dim)}, got {tuple(dy.shape)}")
        dmerged = self.out_proj.backward(dy)
        do = self._heads(dmerged, B, T, H).reshape(B, Hkv, G * T, D)
        dq, dk, dv = attention_backward(do, q, k, v, o, p, drop)
        dq = dq.reshape(B, H, T, D)
        dq *= 1.0 / math.sqrt(D)
        if self.use_rope:
            dq = rope_backward(dq, self.rotary.tables(offset, T))[0]
            if not cross:
                dk = rope_backward(dk, self.rotary.tables(offset, S))[0]
        dx = self.q_proj.backward(dq.transpose(0, 2, 1, 3).reshape(B, T, self.embed_dim))
        dsrc = self.k_proj.backward(dk.transpose(0, 2, 1, 3).reshape(B, S, Hkv * D))
        dsrc += self.v_proj.backward(dv.transpose(0, 2, 1, 3).reshape(B, S, Hkv * D))
        if cross:
            return dx, dsrc
        dx += dsrc
        return dx

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.num_kv_heads != self.num_heads:
            s += f", num_kv_heads={self.num_kv_heads}"
        for flag, value in (("causal", self.causal), ("rope", self.use_rope)):
            if value:
                s += f", {flag}=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s


#: "multi_head_attention" is the name this layer had before torch's MultiheadAttention was added;
#: it stays registered so configs that name it still build (config() writes the new name).
LAYERS: dict[str, type] = {"grouped_query_attention": GroupedQueryAttention,
                           "multi_head_attention": GroupedQueryAttention}
