"""Maths of one recurrent layer in one direction: the time loop and its reverse (BPTT).

Everything is time-major. T steps, B batch, H hidden units, G gates (RNN 1, LSTM 4, GRU 3).
The caller computes the input projection of every step in ONE matmul beforehand,
``xproj = x W_ih^T + b`` of shape (T, B, G*H), and turns the returned pre-activation
gradients into weight gradients with ONE matmul each afterwards:

    dW_ih = dgi^T x          dW_hh = dgh^T h_prev          dx = dgi W_ih

``dgi`` is d loss / d (input projection) and ``dgh`` is d loss / d (h_prev W_hh^T + b_hh),
both (T, B, G*H); they are the same array except for the GRU, whose candidate gate
multiplies the recurrent term by the reset gate. Gate orders follow PyTorch:
LSTM (i, f, g, o), GRU (r, z, n). ``reverse`` runs the loop from the last step to the
first (the backward direction of a bidirectional layer); outputs stay at their own step.
"""

from __future__ import annotations

from typing import Any

from plait.core import get_array_module


def _steps(n: int, reverse: bool) -> range:
    return range(n - 1, -1, -1) if reverse else range(n)


def _sigmoid_(a: Any, xp: Any) -> Any:
    """In-place logistic function, overflow-free: sigma(a) = (1 + tanh(a / 2)) / 2."""
    a *= 0.5
    xp.tanh(a, out=a)
    a += 1.0
    a *= 0.5
    return a


def previous_states(hs: Any, h0: Any, reverse: bool) -> Any:
    """The state each step started from, (T, B, H): h0 then hs shifted by one step."""
    xp = get_array_module(hs)
    if reverse:
        return xp.concatenate([hs[1:], h0[None]], axis=0)
    return xp.concatenate([h0[None], hs[:-1]], axis=0)


# -- Elman RNN: h_t = act(xproj_t + h_{t-1} W_hh^T) ----------------------------------------
def rnn_forward(xproj: Any, w_hh: Any, h0: Any, reverse: bool, relu: bool) -> Any:
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


def rnn_backward(dhs: Any, dh_n: Any, hs: Any, w_hh: Any, reverse: bool, relu: bool) -> tuple[Any, Any]:
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


# -- LSTM --------------------------------------------------------------------------------------
def lstm_forward(xproj: Any, w_hh: Any, h0: Any, c0: Any, reverse: bool) -> tuple[Any, Any, Any, Any]:
    """Returns (hs, cs, tanh_cs, gates): states (T, B, H) and activated gates (T, B, 4H).

    ``xproj`` (holding both biases) is overwritten by the activated gates i, f, g, o.
    """
    xp = get_array_module(xproj)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # (H, G*H): the fast layout for the per-step GEMM
    T, B, G = xproj.shape
    H = G // 4
    gates = xproj
    hs = xp.empty((T, B, H), dtype=xproj.dtype)
    cs = xp.empty_like(hs)
    tcs = xp.empty_like(hs)
    rec = xp.empty((B, G), dtype=xproj.dtype)
    h, c = h0, c0
    for t in _steps(T, reverse):
        gt = gates[t]
        xp.matmul(h, w_hh_t, out=rec)
        gt += rec
        _sigmoid_(gt[:, : 2 * H], xp)
        xp.tanh(gt[:, 2 * H : 3 * H], out=gt[:, 2 * H : 3 * H])
        _sigmoid_(gt[:, 3 * H :], xp)
        i, f, g, o = gt[:, :H], gt[:, H : 2 * H], gt[:, 2 * H : 3 * H], gt[:, 3 * H :]
        xp.multiply(f, c, out=cs[t])
        cs[t] += i * g
        xp.tanh(cs[t], out=tcs[t])
        xp.multiply(o, tcs[t], out=hs[t])
        h, c = hs[t], cs[t]
    return hs, cs, tcs, gates


def lstm_backward(dhs: Any, dh_n: Any, dc_n: Any, cprev: Any, tcs: Any, gates: Any, w_hh: Any,
                  reverse: bool) -> tuple[Any, Any, Any]:
    """Returns (dgi = dgh (T, B, 4H), dh0 (B, H), dc0 (B, H)); ``cprev`` from previous_states."""
    xp = get_array_module(gates)
    T, _, G = gates.shape
    H = G // 4
    dgates = xp.empty_like(gates)
    dh, dc = dh_n, dc_n
    for t in _steps(T, not reverse):
        i, f, g, o = (gates[t][:, k * H : (k + 1) * H] for k in range(4))
        dh_t = dhs[t] + dh
        dc = dc + dh_t * o * (1.0 - tcs[t] * tcs[t])
        dgt = dgates[t]
        xp.multiply(dc * g, i * (1.0 - i), out=dgt[:, :H])
        xp.multiply(dc * cprev[t], f * (1.0 - f), out=dgt[:, H : 2 * H])
        xp.multiply(dc * i, 1.0 - g * g, out=dgt[:, 2 * H : 3 * H])
        xp.multiply(dh_t * tcs[t], o * (1.0 - o), out=dgt[:, 3 * H :])
        dc = dc * f
        dh = dgt @ w_hh
    return dgates, dh, dc


# -- GRU ---------------------------------------------------------------------------------------
def gru_forward(xproj: Any, w_hh: Any, b_hh: Any | None, h0: Any, reverse: bool) -> tuple[Any, Any, Any]:
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


def gru_backward(dhs: Any, dh_n: Any, hprev: Any, gates: Any, hn: Any, w_hh: Any,
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
