"""Autoregressive generation for language models, with a cache; greedy seq2seq decoding.

The model protocol (``gpt`` and ``rnn_lm`` follow it)::

    cache = model.new_cache(batch)             # per-layer KV caches / recurrent state
    logits = model(ids_chunk, cache=cache)     # (B, t, V) for the t new positions; cache grows

Without a cache (``use_cache=False``, or a model without ``new_cache``) every step
re-runs the whole sequence, which gives the same logits, only slower. A model with a
``context_length`` attribute sees at most that many tokens: the prompt and the window are
cropped from the left, and a full cache is rebuilt from the last tokens.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from plait.core import ConfigError, Module, check_int_array, no_grad, to_device, to_numpy

from .sampling import sample_next

__all__ = ["generate", "greedy_decode"]


@contextmanager
def _inference(model: Module) -> Any:
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            yield
    finally:
        model.train(was_training)


def _device_of(model: Module) -> str:
    for p in model.parameters():
        return "cpu" if isinstance(p.data, np.ndarray) else "cuda"
    return "cpu"


def _last_logits(logits: Any) -> np.ndarray:
    return to_numpy(logits[:, -1, :]).astype(np.float64)


def generate(
    model: Module,
    ids: Any,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | np.random.Generator | None = None,
    eos_id: int | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Continue ``ids`` ((T,) or (B, T) ints) by up to ``max_new_tokens``; returns prompt + new ids.

    ``temperature=0`` is greedy. Rows that produced ``eos_id`` are padded with it; generation
    stops early once every row has. Runs in ``no_grad`` and eval mode (restored afterwards).

    Args:
        model: a language model: ``model(ids (B, t)) -> logits (B, t, V)``, optionally with
            ``new_cache(batch)`` and a ``cache=`` keyword, and a ``context_length``.
        ids: the prompt, int ids ``(T,)`` or ``(B, T)`` with ``T >= 1`` (NumPy or CuPy).
        max_new_tokens: how many tokens to add (>= 0).
        temperature: default 1.0; logits are divided by it; 0 picks the argmax (greedy).
        top_k: default None (no limit); sample among the ``k`` most likely tokens (>= 1).
        top_p: default None (no limit); nucleus sampling: the smallest set of most likely
            tokens whose probability reaches ``top_p``, in (0, 1].
        seed: default None (fresh entropy, not Plait's global generator); an int seed or a
            NumPy ``Generator`` for the sampling.
        eos_id: default None; a token id that ends a row.
        use_cache: default True; False re-runs the whole window every step (same result,
            slower).

    Returns:
        int64 ids ``(T + n,)`` or ``(B, T + n)`` on the host (NumPy), ``n <= max_new_tokens``.

    Raises:
        DTypeError: ``ids`` is not an integer array.
        ShapeError: ``ids`` is not 1-D or 2-D.
        ConfigError: an empty prompt, ``max_new_tokens < 0``, ``temperature < 0``,
            ``top_k < 1`` or ``top_p`` outside (0, 1].
    """
    ids = check_int_array(to_numpy(ids), "generate", what="prompt ids", ndim=(1, 2))
    single = ids.ndim == 1
    seq = ids[None, :] if single else ids
    if seq.shape[1] < 1:
        raise ConfigError("generate: the prompt needs at least one token")
    if int(max_new_tokens) < 0:
        raise ConfigError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    context = getattr(model, "context_length", None)
    cached = use_cache and callable(getattr(model, "new_cache", None))
    device = _device_of(model)
    seq = seq.astype(np.int64)
    finished = np.zeros(seq.shape[0], dtype=bool)
    cache = None
    with _inference(model):
        for _ in range(int(max_new_tokens)):
            window = seq if context is None else seq[:, -int(context):]
            if not cached:
                logits = model(to_device(window, device))
            elif cache is None or (context is not None and _cache_len(cache) >= int(context)):
                cache = model.new_cache(seq.shape[0])
                logits = model(to_device(window, device), cache=cache)
            else:
                logits = model(to_device(seq[:, -1:], device), cache=cache)
            nxt = sample_next(_last_logits(logits), rng, temperature, top_k, top_p)
            if eos_id is not None:
                nxt = np.where(finished, eos_id, nxt)
                finished |= nxt == eos_id
            seq = np.concatenate([seq, nxt[:, None]], axis=1)
            if eos_id is not None and finished.all():
                break
    return seq[0] if single else seq


def _cache_len(cache: Any) -> int:
    length = getattr(cache, "length", None)
    if length is None and isinstance(cache, (list, tuple)) and cache:
        length = getattr(cache[0], "length", 0)
    return int(length or 0)


def greedy_decode(model: Module, src: Any, max_len: int, bos_id: int, eos_id: int | None = None,
                  use_cache: bool = True) -> np.ndarray:
    """Encoder-decoder greedy decoding: src (B, S) ids -> (B, <= max_len + 1) ids starting with ``bos_id``.

    The source is encoded once (``model.encode``); each step runs the decoder
    (``model.decode(tgt, memory, src_mask, cache=...)``) on the newest token with the
    decoder's KV caches, or on the whole target so far without them, and appends the argmax.

    Args:
        model: an encoder-decoder with ``encode(src) -> (memory, src_mask)`` and
            ``decode(tgt, memory, src_mask[, cache=]) -> logits (B, t, V)`` (the zoo's
            ``transformer``), optionally ``new_cache(batch)``.
        src: source ids, an integer array ``(B, S)``.
        max_len: the most tokens to generate after ``bos_id``.
        bos_id: the start token every output row begins with.
        eos_id: default None; a token id that ends a row (finished rows are padded with it;
            decoding stops once every row has).
        use_cache: default True; False re-runs the decoder on the whole target each step.

    Returns:
        int64 ids ``(B, 1 + n)`` on the host, ``n <= max_len``, starting with ``bos_id``.

    Raises:
        DTypeError: ``src`` is not an integer array.
        ShapeError: ``src`` is not 2-D.
    """
    src = check_int_array(to_numpy(src), "greedy_decode", what="source ids", ndim=2)
    device = _device_of(model)
    batch = src.shape[0]
    out = np.full((batch, 1), int(bos_id), dtype=np.int64)
    finished = np.zeros(batch, dtype=bool)
    cached = use_cache and callable(getattr(model, "new_cache", None))
    with _inference(model):
        memory, src_mask = model.encode(to_device(src.astype(np.int64), device))
        cache = model.new_cache(batch) if cached else None
        for _ in range(int(max_len)):
            if cached:
                logits = model.decode(to_device(out[:, -1:], device), memory, src_mask, cache=cache)
            else:
                logits = model.decode(to_device(out, device), memory, src_mask)
            nxt = np.argmax(_last_logits(logits), axis=-1).astype(np.int64)
            if eos_id is not None:
                nxt = np.where(finished, eos_id, nxt)
                finished |= nxt == eos_id
            out = np.concatenate([out, nxt[:, None]], axis=1)
            if eos_id is not None and finished.all():
                break
    return out
