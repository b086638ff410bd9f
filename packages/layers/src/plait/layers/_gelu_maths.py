"""Exact GELU, y = x Phi(x), and its slope dy/dx = Phi(x) + x phi(x), in one sweep over x.

Phi is the standard normal CDF and phi its density. Both come from h = Phi(-|x|) (the
lower tail, which keeps its relative precision far out) and e = exp(-x^2 / 2)::

    Phi(x) = [x >= 0] - sign(x) h,      phi(x) = e / sqrt(2 pi)

float64 takes h from Cephes' erfc (relative error ~1e-14, :mod:`._special`). float32/16
take it from one mask-free formula,

    h = t P(t) e,   t = 1 / (1 + k |x|),  k = 0.34,  P of degree 8,

fitted (Lawson-weighted least squares in the relative error, against scipy's ``log_ndtr``
in float64) over |x| <= 14, where Phi(-|x|) is still a float32 number. Its relative error
is 3e-8 before rounding; evaluated in float32 the error of Phi stays within a few float32
ulps times 1 + x^2 / 2, the condition number of Phi at x (tests check it on a dense grid
against ``math.erfc``). The exp that h needs is the one phi needs, so the slope costs two
more passes: the forward pass keeps it as the ctx and the backward pass is one product.
Large NumPy arrays run block by block (:func:`._special.blockwise`), the temporaries staying
in cache.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plait.core import get_array_module
from plait.core.parallel import get_num_threads, run_blocks

from ._special import BLOCK, erfc

__all__ = ["gelu_exact"]

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_K = 1.0 / 0.34
# P(t), highest power first; P(1) = 1/2 = Phi(0).
_P = (-0.026120638496744893, 0.1395002819467855, -0.2731343536106312, 0.2021844709897244,
      -0.044719653348598454, 0.11535965258583188, 0.11519754017542373, 0.13611221224800812,
      0.1356205026144305)


def _gelu_into(x: Any, y: Any, slope: Any, t: Any, h: Any) -> None:
    """y = x Phi(x) and slope = Phi(x) + x phi(x) written into ``y``/``slope``; ``t``, ``h``:
    scratch; all five flat and of one length and dtype."""
    xp = get_array_module(x)
    e = slope
    xp.multiply(x, -0.5, out=e)
    e *= x
    xp.exp(e, out=e)  # exp(-x^2/2)
    if x.dtype == np.float64:
        xp.abs(x, out=h)
        h *= _INV_SQRT_2
        h[...] = erfc(h)
        h *= 0.5
    else:
        xp.abs(x, out=t)
        t += _INV_K
        xp.divide(_INV_K, t, out=t)  # t = 1 / (1 + k |x|)
        xp.multiply(t, _P[0], out=h)
        for c in _P[1:-1]:
            h += c
            h *= t
        h += _P[-1]
        h *= t
        h *= e  # h = Phi(-|x|)
    cdf = t
    xp.copysign(0.5, x, out=cdf)
    cdf += 0.5  # [x >= 0]; -0.0 counts as negative, where h = 1/2 gives Phi = 1/2 either way
    xp.copysign(h, x, out=h)
    cdf -= h  # Phi(x): 1 - h for x >= 0, exactly h for x < 0
    xp.multiply(x, cdf, out=y)
    e *= x
    e *= _INV_SQRT_2PI  # x phi(x)
    e += cdf


def gelu_exact(x: Any) -> tuple[Any, Any]:
    """(y, slope) for x of any shape: y = x Phi(x) and dy/dx = Phi(x) + x phi(x), each shaped like x.

    Large NumPy arrays go block by block, the blocks shared out over
    :func:`plait.core.parallel.run_blocks`' threads.
    """
    xp = get_array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    y, slope = xp.empty_like(flat), xp.empty_like(flat)
    size = flat.size
    count = 1 if xp is not np or size <= 2 * BLOCK else -(-size // BLOCK)
    if count > 1:  # equal shares: a multiple of the thread count, blocks of at most BLOCK
        threads = get_num_threads()
        count = -(-count // threads) * threads
    block = -(-size // count) if size else 0

    def work(blocks: range) -> None:
        t, h = xp.empty(block, dtype=x.dtype), xp.empty(block, dtype=x.dtype)
        for i in blocks:
            start, stop = min(i * block, size), min(i * block + block, size)
            n = stop - start
            _gelu_into(flat[start:stop], y[start:stop], slope[start:stop], t[:n], h[:n])

    run_blocks(work, count if size else 0)
    return y.reshape(x.shape), slope.reshape(x.shape)
