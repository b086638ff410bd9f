"""Maths of one LSTM layer in one direction: the pure pair ``lstm_forward`` / ``lstm_backward``.

    (hs, (h_n, c_n)), ctx = lstm_forward(x, w_ih, w_hh, b_ih, b_hh, w_hr=None, state=(h0, c0), reverse=False)
    (dx, (dh0, dc0)), dw_ih, dw_hh, db_ih, db_hh, dw_hr = lstm_backward((dhs, (dh_n, dc_n)), ctx, w_ih, ...)

x (T, B, F) and hs (T, B, P) are time-major as everywhere in :mod:`._recurrent_maths`; inside,
the time loops keep every step's arrays feature-major, (features, B), so that each gate
is one contiguous block of rows: per step one GEMM gives the (4H, B) pre-activations (over
[x_t; 1; h_prev], or W_hh h^T added to an input projection made beforehand, see
:func:`_step_inputs`), and the element-wise work is a few whole-block passes. Per-step arrays are (T, 4H, B) for the gates
and (T, H, B) for the cell, and the outputs are turned time-major once at the end.

Two rewrites keep the loops short (the first gives the textbook order's numbers exactly, the
second only regroups products):

- the loop's gate order is (i, f, o, g), the three sigmoid gates' rows of W_ih, W_hh and the
  bias halved once (:func:`_loop_order`): ONE tanh pass activates all four gates, and
  sigma(a) = (1 + tanh(a / 2)) / 2 needs two more passes over the sigmoid block; halving a
  weight halves its products and sums exactly (a power of two);
- back through time, the factors of the gate gradients that do not depend on the recurrence
  (g i(1-i), c_{t-1} f(1-f), i(1-g^2), tanh(c) o(1-o), o(1-tanh^2 c)) are computed for all
  steps at once (over tanh c, and the gradients then go into the gates' memory: the ctx is
  consumed), so a step is two adds, four products and the GEMM dh_{t-1} = W_hh^T dgates.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

from ._recurrent_maths import _last, _steps, _weight_grads

__all__ = ["lstm_backward", "lstm_forward"]


def _loop_order(w: Any) -> Any:
    """A fresh copy of ``w`` (4H, ...) with its gate rows (i, f, g, o) in the loop's order
    (i, f, o, g), the sigmoid gates' rows halved."""
    xp = get_array_module(w)
    H = w.shape[0] // 4
    out = xp.empty_like(w)
    xp.multiply(w[: 2 * H], 0.5, out=out[: 2 * H])
    xp.multiply(w[3 * H :], 0.5, out=out[2 * H : 3 * H])
    out[3 * H :] = w[2 * H : 3 * H]
    return out


def _step_inputs(x: Any, w_ih: Any, w_hh: Any, b: Any | None, h0: Any, reverse: bool) -> tuple[Any, Any, Any]:
    """(gates (T, G, B), xs, w): what the loop multiplies per step, from x (T, B, F), w_ih (G, F),
    w_hh (G, P), b (G,) or None (all in the loop's order) and h0 (B, P).

    When B is a multiple of 16, ONE GEMM per step gives the pre-activations: w = [W_ih | b | W_hh]
    (G, F+1+P) times xs[t] = [x_t^T; 1; h_prev^T] (T, F+1+P, B), whose h rows the loop fills; gates
    is then empty. Otherwise gates = x W_ih^T + b from one flat GEMM (copied into the steps'
    layout), xs is None and w = W_hh. OpenBLAS (Zen 4, 1 thread, T 64, H 256, B 32): the step
    GEMMs over [x; 1; h] took 25.1 ms (F 256) and 15.1 ms (F 64) against 27.5 and 16.7 ms for
    the T batched input GEMMs, the bias pass and the step GEMMs with their adds; at B 8, H 512
    the T input GEMMs took 23.4 ms against 11.8 ms for the flat one with its copy.
    """
    xp = get_array_module(x)
    T, B, F = x.shape
    G, P = w_hh.shape
    if B % 16:
        gates = xp.ascontiguousarray((w_ih @ x.reshape(T * B, F).T).reshape(G, T, B).transpose(1, 0, 2))
        if b is not None:
            gates += b[:, None]
        return gates, None, w_hh
    K = F + (b is not None)
    w = xp.empty((G, K + P), dtype=w_hh.dtype)
    xs = xp.empty((T, K + P, B), dtype=w_hh.dtype)
    w[:, :F], w[:, K:] = w_ih, w_hh
    xs[:, :F] = x.transpose(0, 2, 1)
    if b is not None:
        w[:, F] = b
        xs[:, F] = 1.0
    xs[T - 1 if reverse else 0, K:] = h0.T
    return xp.empty((T, G, B), dtype=w_hh.dtype), xs, w


def _lstm_loop(gates: Any, xs: Any | None, w: Any, w_hr: Any | None, h0: Any, c0: Any,
               reverse: bool, batch_major: bool = False) -> tuple[Any, Any, Any, Any]:
    """Runs the recurrence over feature-major steps; returns (hs (T, B, P) time-major, cs and
    tanh_cs (T, H, B), ms = o tanh(c) (T, H, B) before the projection h = W_hr m, or None).
    ``hs`` is contiguous, or with ``batch_major`` a (T, B, P) view of a contiguous (B, T, P).

    ``gates``, ``xs`` and ``w`` come from :func:`_step_inputs` (the loop's gate order, sigmoid
    rows halved, see :func:`_loop_order`); ``gates`` ends up holding the activated gates
    (i, f, o, g). h0 (B, P), c0 (B, H).
    """
    xp = get_array_module(gates)
    T, G, B = gates.shape
    H = G // 4
    P = H if w_hr is None else w_hr.shape[0]
    dtype = gates.dtype
    cs = xp.empty((T, H, B), dtype=dtype)
    tcs = xp.empty_like(cs)
    ms = None if w_hr is None else xp.empty_like(cs)
    hs = xp.empty((T, P, B), dtype=dtype)
    rec = xp.empty((G, B), dtype=dtype) if xs is None else None
    ig = xp.empty((H, B), dtype=dtype)
    h, c = h0.T, c0.T
    last, step = (0, -1) if reverse else (T - 1, 1)
    for t in _steps(T, reverse):
        gt = gates[t]
        if xs is None:
            xp.matmul(w, h, out=rec)
            gt += rec
        else:
            xp.matmul(w, xs[t], out=gt)
        xp.tanh(gt, out=gt)
        sig = gt[: 3 * H]
        sig += 1.0
        sig *= 0.5
        i, f, o, g = gt[:H], gt[H : 2 * H], gt[2 * H : 3 * H], gt[3 * H :]
        ct = cs[t]
        xp.multiply(f, c, out=ct)
        xp.multiply(i, g, out=ig)
        ct += ig
        xp.tanh(ct, out=tcs[t])
        if w_hr is None:
            xp.multiply(o, tcs[t], out=hs[t])
        else:
            xp.multiply(o, tcs[t], out=ms[t])
            xp.matmul(w_hr, ms[t], out=hs[t])
        h, c = hs[t], ct
        if xs is not None and t != last:
            xs[t + step, -P:] = h
    if batch_major:
        return xp.ascontiguousarray(hs.transpose(2, 0, 1)).transpose(1, 0, 2), cs, tcs, ms
    return xp.ascontiguousarray(hs.transpose(0, 2, 1)), cs, tcs, ms


def _gate_factors(gates: Any, cs: Any, tcs: Any, c0: Any, reverse: bool) -> tuple[Any, Any]:
    """The step-independent factors of the gate gradients, for every step at once.

    Returns (k (T, 4H, B) in torch's gate order, kc = ``tcs`` overwritten):
    k = (g i(1-i), c_{t-1} f(1-f), i(1-g^2), tanh(c) o(1-o)) and kc = o (1 - tanh^2 c), so that
    (di, df, dg) = dc k[:3H], do = dm k[3H:] and dc_t = dc_{t+1} f_{t+1} + dm kc.
    ``gates`` (i, f, o, g) in the loop's order; cs, tcs (T, H, B); c0 (B, H).
    """
    xp = get_array_module(gates)
    T, G, _ = gates.shape
    H = G // 4
    i, f, o, g = (gates[:, n * H : (n + 1) * H] for n in range(4))
    k = xp.empty_like(gates)
    ki, kf, kg, ko = (k[:, n * H : (n + 1) * H] for n in range(4))
    xp.subtract(1.0, i, out=ki)
    ki *= i
    ki *= g
    xp.subtract(1.0, f, out=kf)
    kf *= f
    first, rest, before = (T - 1, slice(0, T - 1), slice(1, T)) if reverse else (0, slice(1, T), slice(0, T - 1))
    kf[first] *= c0.T
    kf[rest] *= cs[before]
    xp.multiply(g, g, out=kg)
    xp.subtract(1.0, kg, out=kg)
    kg *= i
    xp.subtract(1.0, o, out=ko)
    ko *= o
    ko *= tcs
    xp.multiply(tcs, tcs, out=tcs)
    xp.subtract(1.0, tcs, out=tcs)
    tcs *= o
    return k, tcs


def _lstm_loop_backward(dhs: Any, dh_n: Any, dc_n: Any, c0: Any, cs: Any, tcs: Any, gates: Any, w_hh: Any,
                        w_hr: Any | None, reverse: bool) -> tuple[Any, Any, Any, Any]:
    """Returns (dgates (T, 4H, B) in torch's gate order, dh0 (B, P), dc0 (B, H), dhs_total
    (T, P, B) or None). With a projection, dm_t = W_hr^T dh_t replaces dh_t in the gate
    gradients, and the total dh_t of every step is kept for dW_hr. Overwrites ``tcs``.
    """
    xp = get_array_module(gates)
    T, G, B = gates.shape
    H = G // 4
    dgates, kc = _gate_factors(gates, cs, tcs, c0, reverse)
    f = gates[:, H : 2 * H]
    k4 = dgates.reshape(T, 4, H, B)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # (P, 4H)
    w_hr_t = None if w_hr is None else xp.ascontiguousarray(w_hr.T)  # (H, P)
    P = w_hh.shape[1]
    dh_total = None if w_hr is None else xp.empty((T, P, B), dtype=gates.dtype)
    dh_t = xp.empty((P, B), dtype=gates.dtype)
    dh = xp.empty_like(dh_t)
    dm = dh_t if w_hr is None else xp.empty((H, B), dtype=gates.dtype)
    dc = xp.empty((H, B), dtype=gates.dtype)
    dc[...] = dc_n.T
    tmp = xp.empty_like(dc)
    prev = dh_n.T
    for t in _steps(T, not reverse):
        xp.add(dhs[t].T, prev, out=dh_t)
        if w_hr is not None:
            dh_total[t] = dh_t
            xp.matmul(w_hr_t, dh_t, out=dm)
        xp.multiply(dm, kc[t], out=tmp)
        dc += tmp
        kt = k4[t]
        xp.multiply(kt[:3], dc, out=kt[:3])
        xp.multiply(kt[3], dm, out=kt[3])
        dc *= f[t]
        xp.matmul(w_hh_t, dgates[t], out=dh)
        prev = dh
    return dgates, prev.T, dc.T, dh_total


def lstm_forward(x: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None, w_hr: Any | None = None, *,
                 state: tuple[Any, Any], reverse: bool = False, batch_major: bool = False) -> tuple[Any, Any]:
    """Gates (i, f, g, o) = (s, s, tanh, s)(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh);
    c_t = f c_{t-1} + i g; h_t = o tanh(c_t), projected to h_t = (o tanh(c_t)) W_hr^T when
    ``w_hr`` (P, H) is given (torch's ``proj_size``; W_hh is then (4H, P)).

    Args: x (T, B, F); w_ih (4H, F); w_hh (4H, P); b_ih, b_hh (4H,) or both None; w_hr (P, H) or
    None (P = H); state (h0 (B, P), c0 (B, H)); reverse: run from the last step to the first;
    batch_major: hs is a time-major view of a contiguous (B, T, P) array (for batch-first callers).
    Returns ((hs (T, B, P), (h_n, c_n)), ctx); ``lstm_backward`` consumes ctx."""
    h0, c0 = state
    bias = None if b_ih is None else _loop_order(b_ih + b_hh)
    gates, xs, w = _step_inputs(x, _loop_order(w_ih), _loop_order(w_hh), bias, h0, reverse)
    hs, cs, tcs, ms = _lstm_loop(gates, xs, w, w_hr, h0, c0, reverse, batch_major)
    last = _last(len(hs), reverse)
    return (hs, (hs[last], cs[last].T)), (x, h0, c0, hs, cs, tcs, gates, ms, reverse)


def lstm_backward(dy: Any, ctx: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None,
                  w_hr: Any | None = None, need_dx: bool = True) -> tuple[Any, ...]:
    """((dx, (dh0, dc0)), dW_ih, dW_hh, db_ih, db_hh, dW_hr) from dy = (dhs, (dh_n, dc_n)).

    Back through time, with dh_t the total gradient of h_t and dm_t = dh_t W_hr (or dh_t):
    dc_t += dm_t o (1 - tanh^2 c_t); di = dc g i(1-i); df = dc c_{t-1} f(1-f);
    dg = dc i (1-g^2); do = dm_t tanh(c_t) o(1-o); dc_{t-1} = dc f; dh_{t-1} = dgates W_hh;
    dW_hr = sum_t dh_t^T m_t (None without a projection). The arrays of ``ctx`` are reused.
    """
    dhs, (dh_n, dc_n) = dy
    x, h0, c0, hs, cs, tcs, gates, ms, reverse = ctx
    xp = get_array_module(gates)
    dg, dh0, dc0, dh_total = _lstm_loop_backward(dhs, dh_n, dc_n, c0, cs, tcs, gates, w_hh, w_hr, reverse)
    T, G, B = dg.shape
    dg_cols = gates.reshape(G, T, B)  # the gates are spent: their memory takes dg with columns in x's (t, b) order
    dg_cols[...] = dg.transpose(1, 0, 2)
    dg = dg_cols.reshape(G, T * B)
    dx, *grads = _weight_grads(dg, dg, x, hs, h0, reverse, w_ih, b_ih, b_hh, need_dx)
    dw_hr = None if w_hr is None else xp.tensordot(dh_total, ms, axes=([0, 2], [0, 2]))  # (P, H)
    return ((dx, (dh0, dc0)), *grads, dw_hr)
