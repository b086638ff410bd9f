"""Maths of one recurrent layer in one direction: a pure pair per cell (RNN, LSTM, GRU).

    (hs, finals), ctx = _lstm_loop(x, w_ih, w_hh, b_ih, b_hh, state=(h0, c0), reverse=False)
    (dx, dstate0), dw_ih, dw_hh, db_ih, db_hh = _lstm_loop_backward((dhs, dfinals), ctx, w_ih, w_hh, b_ih, b_hh)

Everything is time-major: x (T, B, F), hs (T, B, H), states (B, H). T steps, B batch, H
hidden units, G gates (RNN 1, LSTM 4, GRU 3). The input projection of every step is ONE
matmul before the time loop, ``xproj = x W_ih^T + b`` of shape (T, B, G*H), and the
pre-activation gradients the reverse loop returns become the weight gradients with ONE
matmul each afterwards:

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

__all__ = ["gru_backward", "gru_forward", "lstm_backward", "lstm_forward", "rnn_backward", "rnn_forward"]


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


def transposed_recurrence(batch: int, gates: int) -> bool:
    """Whether the LSTM loop computes its recurrent GEMM h W_hh^T as (W_hh h^T)^T.

    Same numbers, another BLAS call: with a small batch as the GEMM's short axis, OpenBLAS
    (SkylakeX, 1 thread) ran the forward loop 14% faster at B 32, H 256 and 20% at H 512 (the
    transposed add included), but 3-14% slower from B 64 or at H 128.
    """
    return batch <= 32 and gates >= 1024


# -- LSTM --------------------------------------------------------------------------------------
def _lstm_loop(xproj: Any, w_hh: Any, w_hr: Any | None, h0: Any, c0: Any,
               reverse: bool) -> tuple[Any, Any, Any, Any, Any]:
    """Returns (hs, cs, tanh_cs, gates, ms): states (T, B, P) and (T, B, H), activated gates
    (T, B, 4H), and ms = o tanh(c) (T, B, H) before the projection h = m W_hr^T (None without one:
    then h = m and P = H).

    ``xproj`` (holding both biases) is overwritten by the activated gates i, f, g, o.
    """
    xp = get_array_module(xproj)
    T, B, G = xproj.shape
    transposed = transposed_recurrence(B, G)
    w_rec = xp.ascontiguousarray(w_hh if transposed else w_hh.T)  # (G*H, P) or (P, G*H)
    w_hr_t = None if w_hr is None else xp.ascontiguousarray(w_hr.T)  # (H, P)
    H = G // 4
    gates = xproj
    cs = xp.empty((T, B, H), dtype=xproj.dtype)
    tcs = xp.empty_like(cs)
    ms = xp.empty_like(cs) if w_hr is not None else None
    hs = xp.empty((T, B, H if w_hr is None else w_hr.shape[0]), dtype=xproj.dtype)
    rec = xp.empty((G, B) if transposed else (B, G), dtype=xproj.dtype)
    h, c = h0, c0
    for t in _steps(T, reverse):
        gt = gates[t]
        if transposed:
            xp.matmul(w_rec, h.T, out=rec)
            gt += rec.T
        else:
            xp.matmul(h, w_rec, out=rec)
            gt += rec
        _sigmoid_(gt[:, : 2 * H], xp)
        xp.tanh(gt[:, 2 * H : 3 * H], out=gt[:, 2 * H : 3 * H])
        _sigmoid_(gt[:, 3 * H :], xp)
        i, f, g, o = gt[:, :H], gt[:, H : 2 * H], gt[:, 2 * H : 3 * H], gt[:, 3 * H :]
        xp.multiply(f, c, out=cs[t])
        cs[t] += i * g
        xp.tanh(cs[t], out=tcs[t])
        if w_hr_t is None:
            xp.multiply(o, tcs[t], out=hs[t])
        else:
            xp.multiply(o, tcs[t], out=ms[t])
            xp.matmul(ms[t], w_hr_t, out=hs[t])
        h, c = hs[t], cs[t]
    return hs, cs, tcs, gates, ms


def _lstm_loop_backward(dhs: Any, dh_n: Any, dc_n: Any, cprev: Any, tcs: Any, gates: Any, w_hh: Any,
                        w_hr: Any | None, reverse: bool) -> tuple[Any, Any, Any, Any]:
    """Returns (dgi = dgh (T, B, 4H), dh0 (B, P), dc0 (B, H), dhs_total (T, B, P) or None);
    ``cprev`` from previous_states. With a projection, dm_t = dh_t W_hr replaces dh_t in the
    gate gradients, and the total dh_t of every step is kept for dW_hr."""
    xp = get_array_module(gates)
    T, _, G = gates.shape
    H = G // 4
    dgates = xp.empty_like(gates)
    dh_total = None if w_hr is None else xp.empty_like(dhs)
    dh, dc = dh_n, dc_n
    for t in _steps(T, not reverse):
        i, f, g, o = (gates[t][:, k * H : (k + 1) * H] for k in range(4))
        dh_t = dhs[t] + dh
        if w_hr is not None:
            dh_total[t] = dh_t
            dh_t = dh_t @ w_hr  # dm_t (B, H)
        dc = dc + dh_t * o * (1.0 - tcs[t] * tcs[t])
        dgt = dgates[t]
        xp.multiply(dc * g, i * (1.0 - i), out=dgt[:, :H])
        xp.multiply(dc * cprev[t], f * (1.0 - f), out=dgt[:, H : 2 * H])
        xp.multiply(dc * i, 1.0 - g * g, out=dgt[:, 2 * H : 3 * H])
        xp.multiply(dh_t * tcs[t], o * (1.0 - o), out=dgt[:, 3 * H :])
        dc = dc * f
        dh = dgt @ w_hh
    return dgates, dh, dc, dh_total


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


def _weight_grads(dgi: Any, dgh: Any, x: Any, hprev: Any, w_ih: Any, b_ih: Any | None, b_hh: Any | None,
                  need_dx: bool) -> tuple[Any, Any, Any, Any, Any]:
    """(dx, dW_ih, dW_hh, db_ih, db_hh) from the pre-activation gradients, one matmul each; when
    ``dgh is dgi`` (RNN, LSTM) dW_ih and dW_hh come from ONE matmul over [x | h_prev] side by side
    (8-10% faster than two at the rnn_lm sizes)."""
    T, B, F = x.shape
    dgi2 = dgi.reshape(T * B, -1)
    dgh2 = dgi2 if dgh is dgi else dgh.reshape(T * B, -1)
    if dgh is dgi:
        xp = get_array_module(x)
        dw = dgi2.T @ xp.concatenate([x, hprev], axis=2).reshape(T * B, -1)  # (G*H, F + P)
        dw_ih, dw_hh = dw[:, :F], dw[:, F:]
    else:
        dw_ih = dgi2.T @ x.reshape(T * B, -1)
        dw_hh = dgh2.T @ hprev.reshape(T * B, -1)
    db_ih = None if b_ih is None else dgi2.sum(axis=0)
    db_hh = None if b_hh is None else (db_ih if dgh is dgi else dgh2.sum(axis=0))
    dx = (dgi2 @ w_ih).reshape(T, B, -1) if need_dx else None
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
    dx, *grads = _weight_grads(da, da, x, previous_states(hs, h0, reverse), w_ih, b_ih, b_hh, need_dx)
    return ((dx, (dh0,)), *grads)


def lstm_forward(x: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None, w_hr: Any | None = None, *,
                 state: tuple[Any, Any], reverse: bool = False) -> tuple[Any, Any]:
    """Gates (i, f, g, o) = (s, s, tanh, s)(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh);
    c_t = f c_{t-1} + i g; h_t = o tanh(c_t), projected to h_t = (o tanh(c_t)) W_hr^T when
    ``w_hr`` (P, H) is given (torch's ``proj_size``; W_hh is then (4H, P)).
    Returns ((hs (T, B, P), (h_n, c_n)), ctx)."""
    h0, c0 = state
    hs, cs, tcs, gates, ms = _lstm_loop(_project(x, w_ih, b_ih, b_hh), w_hh, w_hr, h0, c0, reverse)
    last = _last(len(hs), reverse)
    return (hs, (hs[last], cs[last])), (x, h0, c0, hs, cs, tcs, gates, ms, reverse)


def lstm_backward(dy: Any, ctx: Any, w_ih: Any, w_hh: Any, b_ih: Any | None, b_hh: Any | None,
                  w_hr: Any | None = None, need_dx: bool = True) -> tuple[Any, ...]:
    """((dx, (dh0, dc0)), dW_ih, dW_hh, db_ih, db_hh, dW_hr) from dy = (dhs, (dh_n, dc_n)).

    Back through time, with dh_t the total gradient of h_t and dm_t = dh_t W_hr (or dh_t):
    dc_t += dm_t o (1 - tanh^2 c_t); di = dc g i(1-i); df = dc c_{t-1} f(1-f);
    dg = dc i (1-g^2); do = dm_t tanh(c_t) o(1-o); dc_{t-1} = dc f; dh_{t-1} = dgates W_hh;
    dW_hr = sum_t dh_t^T m_t (None without a projection).
    """
    dhs, (dh_n, dc_n) = dy
    x, h0, c0, hs, cs, tcs, gates, ms, reverse = ctx
    dg, dh0, dc0, dh_total = _lstm_loop_backward(dhs, dh_n, dc_n, previous_states(cs, c0, reverse), tcs, gates,
                                                 w_hh, w_hr, reverse)
    dx, *grads = _weight_grads(dg, dg, x, previous_states(hs, h0, reverse), w_ih, b_ih, b_hh, need_dx)
    dw_hr = None
    if w_hr is not None:
        T, B = x.shape[:2]
        dw_hr = dh_total.reshape(T * B, -1).T @ ms.reshape(T * B, -1)
    return ((dx, (dh0, dc0)), *grads, dw_hr)


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
    dx, *grads = _weight_grads(dgi, dgh, x, hprev, w_ih, b_ih, b_hh, need_dx)
    return ((dx, (dh0,)), *grads)
