"""Maths of one recurrent layer in one direction: a pure pair per cell (RNN, GRU; the LSTM's is
in :mod:`._lstm_maths`), and the bookkeeping the three share.

    (hs, (h_n,)), ctx = gru_forward(x, w_ih, w_hh, b_ih, b_hh, state=(h0,), reverse=False)
    (dx, (dh0,)), dw_ih, dw_hh, db_ih, db_hh = gru_backward((dhs, (dh_n,)), ctx, w_ih, w_hh, b_ih, b_hh)

Everything is time-major: x (T, B, F), hs (T, B, H), states (B, H). T steps, B batch, H
hidden units, G gates (RNN 1, LSTM 4, GRU 3). The input projection of every step is ONE
matmul before the time loop, ``xproj = x W_ih^T + b`` of shape (T, B, G*H), and the
pre-activation gradients the reverse loop returns become the weight gradients with ONE
matmul each afterwards (:func:`_weight_grads`):

    dW_ih = dgi x          dW_hh = dgh h_prev          dx = dgi^T W_ih

``dgi`` is d loss / d (input projection) and ``dgh`` is d loss / d (h_prev W_hh^T + b_hh),
both (G*H, T*B) there; they are the same array except for the GRU, whose candidate gate
multiplies the recurrent term by the reset gate. Gate orders follow PyTorch:
LSTM (i, f, g, o), GRU (r, z, n). ``reverse`` runs the loop from the last step to the
first (the backward direction of a bidirectional layer); outputs stay at their own step.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module

__all__ = ["gru_backward", "gru_forward", "rnn_backward", "rnn_forward"]


def _steps(n: int, reverse: bool) -> range:
    return range(n - 1, -1, -1) if reverse else range(n)


def _sigmoid_(a: Any, xp: Any) -> Any:
    """In-place logistic function, overflow-free: sigma(a) = (1 + tanh(a / 2)) / 2."""
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1.0
    a *= 0.5
    return a


def previous_states(hs: Any, h0: Any, reverse: bool, out: Any | None = None) -> Any:
    """The state each step started from, (T, B, H) with T >= 1: h0 then hs shifted by one step,
    written into ``out`` (any (T, B, H) view, e.g. the right columns of a wider buffer) if given."""
    if out is None:
        out = get_array_module(hs).empty(hs.shape, dtype=hs.dtype)
    first, rest, before = (-1, slice(0, -1), slice(1, None)) if reverse else (0, slice(1, None), slice(0, -1))
    out[first] = h0
    out[rest] = hs[before]
    return out


# -- Elman RNN: h_t = act(xproj_t + h_{t-1} W_hh^T) ----------------------------------------
def _rnn_loop(xproj: Any, w_hh: Any, h0: Any, reverse: bool, relu: bool) -> Any:
    """Returns hs (T, B, H). ``xproj`` already holds both biases."""
    xp = get_array_module(xproj)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # (H, G*H): the fast layout for the per-step GEMM
    hs = xp.empty_like(xproj)
    h = h0
    for t in _steps(xproj.shape[0], reverse):
        xp.matmul(h, w_hh_t, out=hs[t])
        hs[t] += xproj[t]
        if relu:
            xp.maximum(hs[t], 0, out=hs[t])
        else:
            xp.tanh(hs[t], out=hs[t])
        h = hs[t]
    return hs


def _rnn_loop_backward(dhs: Any, dh_n: Any, hs: Any, w_hh: Any, reverse: bool, relu: bool) -> tuple[Any, Any]:
    """Returns (dgi = dgh (T, B, H), dh0 (B, H))."""
    xp = get_array_module(hs)
    da = xp.empty_like(hs)
    dh = dh_n
    for t in _steps(hs.shape[0], not reverse):
        g = dhs[t] + dh
        if relu:
            xp.multiply(g, hs[t] > 0, out=da[t])
        else:
            xp.multiply(g, 1.0 - hs[t] * hs[t], out=da[t])
        dh = da[t] @ w_hh
    return da, dh


# -- GRU ---------------------------------------------------------------------------------------
def _gru_loop(xproj: Any, w_hh: Any, b_hh: Any | None, h0: Any, reverse: bool) -> tuple[Any, Any, Any]:
    """Returns (hs (T, B, H), gates (T, B, 3H) = activated r, z, n, hn (T, B, H) = h W_hn^T + b_hn).

    ``xproj`` holds b_ih only (b_hn sits inside the reset gate's product) and is
    overwritten by the activated gates.
    """
    xp = get_array_module(xproj)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # (H, G*H): the fast layout for the per-step GEMM
    T, B, G = xproj.shape
    H = G // 3
    gates = xproj
    hs = xp.empty((T, B, H), dtype=xproj.dtype)
    hn = xp.empty_like(hs)
    rec = xp.empty((B, G), dtype=xproj.dtype)
    h = h0
    for t in _steps(T, reverse):
        gt = gates[t]
        xp.matmul(h, w_hh_t, out=rec)
        if b_hh is not None:
            rec += b_hh
        gt[:, : 2 * H] += rec[:, : 2 * H]
        _sigmoid_(gt[:, : 2 * H], xp)
        r, z, n = gt[:, :H], gt[:, H : 2 * H], gt[:, 2 * H :]
        hn[t] = rec[:, 2 * H :]
        n += r * hn[t]
        xp.tanh(n, out=n)
        xp.subtract(h, n, out=hs[t])
        hs[t] *= z
        hs[t] += n
        h = hs[t]
    return hs, gates, hn


def _gru_loop_backward(dhs: Any, dh_n: Any, hprev: Any, gates: Any, hn: Any, w_hh: Any,
                 reverse: bool) -> tuple[Any, Any, Any]:
    """Returns (dgi (T, B, 3H), dgh (T, B, 3H), dh0 (B, H)); ``hprev`` from previous_states.

    With a = h W_hh^T + b_hh split as (a_r, a_z, a_n):
    n = tanh(x_n + r * a_n), h' = (1 - z) n + z h, so d a_n = d n_pre * r while d x_n = d n_pre.
    """
    xp = get_array_module(gates)
    T, _, G = gates.shape
    H = G // 3
    dgi = xp.empty_like(gates)
    dgh = xp.empty_like(gates)
    dh = dh_n
    for t in _steps(T, not reverse):
        r, z, n = gates[t][:, :H], gates[t][:, H : 2 * H], gates[t][:, 2 * H :]
        dh_t = dhs[t] + dh
        dn_pre = dh_t * (1.0 - z) * (1.0 - n * n)
        dgi[t][:, 2 * H :] = dn_pre
        xp.multiply(dn_pre, r, out=dgh[t][:, 2 * H :])
        xp.multiply(dn_pre * hn[t], r * (1.0 - r), out=dgi[t][:, :H])
        xp.multiply(dh_t * (hprev[t] - n), z * (1.0 - z), out=dgi[t][:, H : 2 * H])
        dgh[t][:, : 2 * H] = dgi[t][:, : 2 * H]
        dh = dh_t * z + dgh[t] @ w_hh
    return dgi, dgh, dh


# -- the cells' pairs ---------------------------------------------------------------------------
def _project(x: Any, w_ih: Any, b_ih: Any | None, b_hh: Any | None = None) -> Any:
    """xproj (T, B, G*H) = x W_ih^T + b_ih (+ b_hh), one matmul for every step."""
    T, B = x.shape[:2]
    xproj = (x.reshape(T * B, -1) @ w_ih.T).reshape(T, B, -1)
    if b_ih is not None:
        xproj += b_ih if b_hh is None else b_ih + b_hh
    return xproj


def _weight_grads(dgi: Any, dgh: Any, x: Any, hs: Any, h0: Any, reverse: bool, w_ih: Any, b_ih: Any | None,
                  b_hh: Any | None, need_dx: bool, hprev: Any | None = None) -> tuple[Any, Any, Any, Any, Any]:
    """(dx, dW_ih, dW_hh, db_ih, db_hh) from the pre-activation gradients dgi, dgh (G*H, T*B)
    (columns in x's (t, b) order; a transposed view is fine), one matmul each.

    When ``dgh is dgi`` (RNN, LSTM), dW_ih and dW_hh come from ONE matmul over [x | h_prev]
    side by side (8-10% faster than two at the rnn_lm sizes), written into one buffer;
    otherwise h_prev is ``hprev`` (the GRU's, which its loop already needed) or built from
    (hs, h0, reverse).
    """
    xp = get_array_module(x)
    T, B, F = x.shape
    if dgh is dgi:
        xh = xp.empty((T, B, F + hs.shape[2]), dtype=x.dtype)
        xh[..., :F] = x
        previous_states(hs, h0, reverse, out=xh[..., F:])
        dw = dgi @ xh.reshape(T * B, -1)  # (G*H, F + P)
        dw_ih, dw_hh = dw[:, :F], dw[:, F:]
    else:
        hprev = previous_states(hs, h0, reverse) if hprev is None else hprev
        dw_ih = dgi @ x.reshape(T * B, -1)
        dw_hh = dgh @ hprev.reshape(T * B, -1)
    db_ih = None if b_ih is None else dgi.sum(axis=1)
    db_hh = None if b_hh is None else (db_ih if dgh is dgi else dgh.sum(axis=1))
    dx = (dgi.T @ w_ih).reshape(T, B, -1) if need_dx else None
    return dx, dw_ih, dw_hh, db_ih, db_hh


def _last(T: int, reverse: bool) -> int:
    """The step a direction ends on (its final state)."""
    return 0 if reverse else T - 1


def rnn_forward(x: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None, *, state: tuple[Any],
                reverse: bool = False, nonlinearity: str = "tanh") -> tuple[Any, Any]:
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.

    Returns ((hs (T, B, H), (h_n,)), ctx).
    """
    (h0,) = state
    hs = _rnn_loop(_project(x, w_ih, b_ih, b_hh), w_hh, h0, reverse, nonlinearity == "relu")
    return (hs, (hs[_last(len(hs), reverse)],)), (x, h0, hs, reverse, nonlinearity)


def rnn_backward(dy: Any, ctx: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None,
                 need_dx: bool = True) -> tuple[Any, ...]:
    """((dx, (dh0,)), dW_ih, dW_hh, db_ih, db_hh) from dy = (dhs (T, B, H), (dh_n,)).

    Back through time: da_t = (dh_t + da_{t+1} W_hh) act'(a_t), with act' = 1 - h^2 (tanh)
    or [h > 0] (relu); db_ih = db_hh = sum(da).
    """
    dhs, (dh_n,) = dy
    x, h0, hs, reverse, nonlinearity = ctx
    da, dh0 = _rnn_loop_backward(dhs, dh_n, hs, w_hh, reverse, nonlinearity == "relu")
    da = da.reshape(len(x) * x.shape[1], -1).T
    dx, *grads = _weight_grads(da, da, x, hs, h0, reverse, w_ih, b_ih, b_hh, need_dx)
    return ((dx, (dh0,)), *grads)


def gru_forward(x: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None, *, state: tuple[Any],
                reverse: bool = False) -> tuple[Any, Any]:
    """r, z = s(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z}); n = tanh(W_in x + b_in + r (W_hn h + b_hn));
    h' = (1 - z) n + z h (torch's equations). Returns ((hs, (h_n,)), ctx)."""
    (h0,) = state
    hs, gates, hn = _gru_loop(_project(x, w_ih, b_ih), w_hh, b_hh, h0, reverse)
    return (hs, (hs[_last(len(hs), reverse)],)), (x, h0, hs, gates, hn, reverse)


def gru_backward(dy: Any, ctx: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None,
                 need_dx: bool = True) -> tuple[Any, ...]:
    """((dx, (dh0,)), dW_ih, dW_hh, db_ih, db_hh) from dy = (dhs, (dh_n,)); see :func:`_gru_loop_backward`.

    The recurrent pre-activation gradient differs from the input one in the candidate gate
    (d a_n = d n_pre * r), so dW_hh and db_hh use their own.
    """
    dhs, (dh_n,) = dy
    x, h0, hs, gates, hn, reverse = ctx
    hprev = previous_states(hs, h0, reverse)
    dgi, dgh, dh0 = _gru_loop_backward(dhs, dh_n, hprev, gates, hn, w_hh, reverse)
    TB = len(x) * x.shape[1]
    dx, *grads = _weight_grads(dgi.reshape(TB, -1).T, dgh.reshape(TB, -1).T, x, hs, h0, reverse, w_ih, b_ih, b_hh,
                               need_dx, hprev)
    return ((dx, (dh0,)), *grads)
