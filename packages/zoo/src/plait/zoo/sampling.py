"""Turning next-token logits into tokens: temperature, top-k, top-p (nucleus), greedy.

Everything is batched over rows; no Python loop over the batch or the vocabulary.
"""

from __future__ import annotations

import numpy as np

from plait.core import ConfigError

__all__ = ["filter_logits", "sample_next"]


def _check(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature < 0:
        raise ConfigError(f"generate: temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and int(top_k) < 1:
        raise ConfigError(f"generate: top_k must be >= 1 or None, got {top_k}")
    if top_p is not None and not 0.0 < float(top_p) <= 1.0:
        raise ConfigError(f"generate: top_p must lie in (0, 1] or be None, got {top_p}")


def filter_logits(logits: np.ndarray, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """logits (B, V) float64 -> a copy with the excluded tokens at -inf.

    top-k keeps the k largest per row; top-p keeps the smallest set of most likely tokens
    whose probability reaches ``top_p`` (always at least the top token).
    """
    out = np.array(logits, dtype=np.float64, copy=True)
    vocab = out.shape[-1]
    if top_k is not None and top_k < vocab:
        kth = np.partition(out, vocab - top_k, axis=-1)[:, vocab - top_k : vocab - top_k + 1]
        out[out < kth] = -np.inf
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-out, axis=-1, kind="stable")
        sorted_logits = np.take_along_axis(out, order, axis=-1)
        probs = np.exp(sorted_logits - sorted_logits[:, :1])
        probs /= probs.sum(axis=-1, keepdims=True)
        before = np.cumsum(probs, axis=-1) - probs  # mass of strictly more likely tokens
        drop_sorted = before >= top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        out[drop] = -np.inf
    return out


def sample_next(
    logits: np.ndarray,
    rng: np.random.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:
    """logits (B, V) -> token ids (B,) int64; ``temperature == 0`` picks the argmax."""
    _check(temperature, top_k, top_p)
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return np.argmax(logits, axis=-1).astype(np.int64)
    scaled = filter_logits(logits / temperature, top_k, top_p)
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((logits.shape[0], 1)) * cdf[:, -1:]
    picks = (cdf <= u).sum(axis=-1)
    return np.minimum(picks, logits.shape[-1] - 1).astype(np.int64)
