"""Recurrent layers: ``RNN`` (tanh/relu), ``LSTM`` and ``GRU``, multi-layer and bidirectional.

Names, argument names, parameter names and layouts follow ``torch.nn.RNN/LSTM/GRU``:
``weight_ih_l{k}{_reverse}`` (G*H, in), ``weight_hh_l{k}{_reverse}`` (G*H, H),
``bias_ih_...``/``bias_hh_...`` (G*H,), gate order LSTM (i, f, g, o), GRU (r, z, n).

    out, h_n = rnn(x, h0)              # x: (T, B, F), (B, T, F) with batch_first, or (T, F)
    out, (h_n, c_n) = lstm(x)          # out: (T, B, D*H); h_n, c_n: (L*D, B, H)
    dx = lstm.backward(dout, (dh_n, dc_n))       # final-state gradients optional (None)
    dx, (dh0, dc0) = lstm.backward(dout)         # when an initial state was passed

Per layer and direction each class runs its cell's pure pair (:mod:`._recurrent_maths`, the
LSTM's in :mod:`._lstm_maths`: the input projection of all steps is one matmul, the loop runs
over time only, the weight gradients are one matmul each); the stack over layers and
directions is written once here.
Dropout (inverted) is applied to the outputs of every layer but the last, in training mode.
"""

from __future__ import annotations

import math
from typing import Any

from plait.core import (
    ConfigError,
    Module,
    Param,
    ShapeError,
    check_array,
    check_parameter_count,
    check_size,
    get_array_module,
    get_rng,
)

from ._dropout_maths import dropout_mask
from ._lstm_maths import lstm_backward, lstm_forward
from ._recurrent_maths import gru_backward, gru_forward, rnn_backward, rnn_forward

__all__ = ["GRU", "LSTM", "RNN"]

class _RNNBase(Module):
    """Shared bookkeeping: parameters, input layouts, layer/direction loops, dropout.

    A subclass names its cell's pure pair (``cell``, from :mod:`._recurrent_maths` or
    :mod:`._lstm_maths`) and its number of gates; the stack over layers and directions is
    written once here.
    """

    #: (cell_forward, cell_backward) of one layer in one direction.
    cell: tuple[Any, Any]
    #: gates per hidden unit: RNN 1, LSTM 4, GRU 3.
    gates: int = 1

    def cell_options(self) -> dict[str, Any]:
        """Keyword options of the cell pair (the RNN's nonlinearity)."""
        return {}

    #: size of h (the output per direction): the LSTM's ``proj_size`` when set, else ``hidden_size``.
    proj_size: int = 0

    @property
    def _out_size(self) -> int:
        return self.proj_size or self.hidden_size

    def _state_sizes(self) -> tuple[int, ...]:
        """Last-axis size of each state (h; the LSTM adds c)."""
        return (self._out_size,)

    def _build(self, input_size: int, hidden_size: int, num_layers: int, bias: bool,
               batch_first: bool, dropout: float, bidirectional: bool, dtype: str, proj_size: int = 0) -> None:
        name = type(self).__name__
        input_size, hidden_size = check_size(input_size, name, "input_size"), check_size(hidden_size, name, "hidden_size")
        num_layers = check_size(num_layers, name, "num_layers")
        per_layer = self.gates * hidden_size * (max(input_size, 2 * hidden_size) + hidden_size + 2) + proj_size * hidden_size
        check_parameter_count(num_layers * (2 if bidirectional else 1) * per_layer, name)
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"{name}: dropout must lie in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), bool(bidirectional)
        self.dropout = float(dropout)
        self.num_directions = 2 if bidirectional else 1
        self.proj_size = int(proj_size)
        gh, out = self.gates * self.hidden_size, self._out_size
        bound = 1.0 / math.sqrt(self.hidden_size)
        rng = get_rng()
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else out * self.num_directions
            for direction in range(self.num_directions):
                sfx = self._suffix(layer, direction)
                shapes = [("weight_ih", (gh, layer_in)), ("weight_hh", (gh, out))]
                if self.bias:
                    shapes += [("bias_ih", (gh,)), ("bias_hh", (gh,))]
                if self.proj_size:
                    shapes += [("weight_hr", (self.proj_size, self.hidden_size))]
                for pname, shape in shapes:  # torch's order and U(-1/sqrt(H), 1/sqrt(H))
                    setattr(self, pname + sfx, Param(rng.uniform(-bound, bound, size=shape).astype(dtype)))

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _weights(self, layer: int, direction: int) -> tuple[Param | None, ...]:
        """The cell pair's Params in order: W_ih, W_hh, b_ih, b_hh (the projecting LSTM adds W_hr)."""
        sfx = self._suffix(layer, direction)
        get = self.__dict__["_params"].get
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + (("weight_hr",) if self.proj_size else ())
        return tuple(get(n + sfx) for n in names)

    def _dropout_mask(self, shape: tuple[int, ...], xp: Any, dtype: Any) -> Any:
        return dropout_mask(shape, self.dropout, dtype, xp)

    # -- layouts ---------------------------------------------------------------------------
    def _to_time_major(self, x: Any, dtype: Any, xp: Any, batched: bool, copy: bool = True) -> Any:
        """x as (T, B, ...) of ``dtype``: a contiguous array, or with ``copy=False`` a view where
        the dtype allows (the output gradient, which the cells only read during backward)."""
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        return xp.ascontiguousarray(x, dtype=dtype) if copy else x.astype(dtype, copy=False)

    def _from_time_major(self, y: Any, batched: bool) -> Any:
        if not batched:
            return y[:, 0, :]
        return y.transpose(1, 0, 2) if self.batch_first else y

    def _check_state(self, s: Any, what: str, batch: int, batched: bool, dtype: Any, xp: Any, H: int) -> Any:
        """A (L*D, B, H) state (or (L*D, H) for unbatched input) as a time-major array, or zeros."""
        LD = self.num_layers * self.num_directions
        if s is None:
            return xp.zeros((LD, batch, H), dtype=dtype)
        want = (LD, batch, H) if batched else (LD, H)
        s = check_array(s, type(self).__name__, what=what, ndim=len(want))
        if tuple(s.shape) != want:
            raise ShapeError(f"{type(self).__name__}: expected {what} of shape {want}, got shape {tuple(s.shape)}")
        return xp.ascontiguousarray(s if batched else s[:, None, :], dtype=dtype)

    # -- the stack of layers -----------------------------------------------------------------
    def _run(self, x: Any, states: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...], list[Any]]:
        """Time-major forward through every layer and direction; returns (out, final states, caches).

        Each layer and direction is one call of the cell's pure pair (:attr:`cell`); between
        layers the outputs of both directions are concatenated and, in training, dropped out.
        """
        xp = get_array_module(x)
        D = self.num_directions
        cell_forward, options = self.cell[0], self.cell_options()
        finals = tuple(xp.empty_like(s) for s in states)
        layer_input, caches = x, []
        for layer in range(self.num_layers):
            outs, ctxs = [], []
            for d in range(D):
                k = layer * D + d
                arrays = [None if p is None else p.data for p in self._weights(layer, d)]
                (hs, last), ctx = cell_forward(layer_input, *arrays, state=tuple(s[k] for s in states),
                                               reverse=bool(d), **options)
                for final, value in zip(finals, last):
                    final[k] = value
                outs.append(hs)
                ctxs.append(ctx)
            # a fresh array: the caller may modify the output in place, the cached hs must not change
            out = outs[0].copy(order="K") if D == 1 else xp.concatenate(outs, axis=2)  # K: a batch-major hs stays so
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                mask = self._dropout_mask(out.shape, xp, out.dtype)
                out = out * mask
            caches.append((ctxs, mask))
            layer_input = out
        return layer_input, finals, caches

    def _run_backward(self, dout: Any, dfinals: tuple[Any, ...], caches: list[Any]) -> tuple[Any, tuple[Any, ...]]:
        """Back through the layers (last first): each direction's cell pair, then its parameters' gradients."""
        xp = get_array_module(dout)
        D, H = self.num_directions, self._out_size
        cell_backward = self.cell[1]
        dinits = tuple(xp.empty_like(s) for s in dfinals)
        d_layer_out = dout
        for layer in range(self.num_layers - 1, -1, -1):
            ctxs, mask = caches[layer]
            if mask is not None:
                d_layer_out = d_layer_out * mask  # the same mask as forward
            dinput = None
            for d in range(D):
                k = layer * D + d
                params = self._weights(layer, d)
                dy = (d_layer_out[:, :, d * H : (d + 1) * H], tuple(s[k] for s in dfinals))
                (dx, dstate), *grads = cell_backward(dy, ctxs[d], *[None if p is None else p.data for p in params])
                for p, g in zip(params, grads):
                    if p is not None:
                        p.accumulate(g)  # copied, not owned: RNN and LSTM give both biases one array
                dinput = dx if dinput is None else dinput + dx
                for target, value in zip(dinits, dstate):
                    target[k] = value
            d_layer_out = dinput
        return d_layer_out, dinits

    # -- public API ------------------------------------------------------------------------------
    def _forward(self, x: Any, init: tuple[Any, ...] | None, names: tuple[str, ...]) -> tuple[Any, tuple[Any, ...]]:
        name = type(self).__name__
        x = check_array(x, name, ndim=(2, 3), last_dim=self.input_size)
        if x.shape[0] == 0 or (x.ndim == 3 and x.shape[1] == 0):
            raise ShapeError(f"{name}: expected a non-empty sequence, got shape {tuple(x.shape)}")
        xp = get_array_module(x)
        dtype = self.weight_ih_l0.data.dtype
        batched = x.ndim == 3
        xt = self._to_time_major(x, dtype, xp, batched)
        given = init is not None
        init = init if given else (None,) * len(names)
        states = tuple(self._check_state(s, n, xt.shape[1], batched, dtype, xp, size)
                       for s, n, size in zip(init, names, self._state_sizes()))
        out, finals, caches = self._run(xt, states)
        self.save_for_backward((caches, batched, given, tuple(xt.shape)))
        return self._from_time_major(out, batched), tuple(f if batched else f[:, 0, :] for f in finals)

    def _backward(self, dout: Any, dfinals: tuple[Any, ...] | None, names: tuple[str, ...]) -> tuple[Any, Any]:
        name = f"{type(self).__name__}.backward"
        caches, batched, given, (T, B, _) = self.saved()
        first_input = caches[0][0][0][0]  # layer 0, direction 0: the cell's ctx starts with its input
        xp = get_array_module(first_input)
        dtype = first_input.dtype
        D, H = self.num_directions, self._out_size
        if dout is None:
            dt = xp.zeros((T, B, D * H), dtype=dtype)
        else:
            want = (T, D * H) if not batched else ((B, T, D * H) if self.batch_first else (T, B, D * H))
            dout = check_array(dout, name, what="output gradient", ndim=len(want))
            if tuple(dout.shape) != want:
                raise ShapeError(f"{name}: expected output gradient of shape {want}, got {tuple(dout.shape)}")
            dt = self._to_time_major(dout, dtype, xp, batched, copy=False)
        dfinals = dfinals if dfinals is not None else (None,) * len(names)
        dstates = tuple(self._check_state(g, "gradient of " + n.replace("initial", "final"), B, batched, dtype, xp, size)
                        for g, n, size in zip(dfinals, names, self._state_sizes()))
        dx, dinits = self._run_backward(dt, dstates, caches)
        dx = self._from_time_major(dx, batched)
        if not given:
            return dx, None
        return dx, tuple(g if batched else g[:, 0, :] for g in dinits)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        for flag in ("batch_first", "bidirectional"):
            if getattr(self, flag):
                s += f", {flag}=True"
        if not self.bias:
            s += ", bias=False"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s


class _SingleStateRNN(_RNNBase):
    """RNN and GRU: one state ``h``; ``forward`` returns (out, h_n)."""

    def forward(self, x: Any, hx: Any = None) -> tuple[Any, Any]:
        """x: (T, B, F) [(B, T, F) with batch_first] or (T, F); hx: ``(L*D, B, H)`` or None.

        Args:
            x: the input sequence, (T, B, F), (B, T, F) with ``batch_first``, or unbatched (T, F).
            hx: the initial hidden state h0, ``(L*D, B, H)`` or ``(L*D, H)`` for unbatched x; default None (zeros).

        Returns:
            ``(out, h_n)``: out ``(T, B, D*H)`` [``(B, T, D*H)`` with ``batch_first``; ``(T, D*H)`` unbatched], the last
            layer's hidden state at every step; h_n of hx's shape, every layer's final hidden state.

        Raises:
            ShapeError: x not 2-D/3-D, with a last axis other than ``input_size``, or empty; hx of the wrong shape.
            DTypeError: a non-floating x or hx.
        """
        out, (h_n,) = self._forward(x, None if hx is None else (hx,), ("initial hidden state",))
        return out, h_n

    def backward(self, dout: Any, dh_n: Any = None) -> Any:
        """Returns dx, or (dx, dh0) when an initial state was passed to forward.

        Args:
            dout: gradient of ``out`` (out's shape), or None for zeros (only h_n feeds the loss).
            dh_n: gradient of ``h_n`` (h_n's shape), or None (default) for zeros.

        Returns:
            dx of x's shape; ``(dx, dh0)`` (dh0 of hx's shape) when forward was given ``hx``.

        Raises:
            ShapeError: ``dout`` or ``dh_n`` of the wrong shape.
            DTypeError: a non-floating gradient.
            PlaitError: no matching forward.
        """
        dx, dinit = self._backward(dout, (dh_n,), ("initial hidden state",))
        return dx if dinit is None else (dx, dinit[0])


class RNN(_SingleStateRNN):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu.

    Args:
        input_size: F, the size of the last input axis, an int >= 1 (required).
        hidden_size: H, the hidden state size, an int >= 1 (required).
        num_layers: L, stacked layers, an int >= 1; default 1.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``, as torch.
        bias: learn ``bias_ih_l{k}`` and ``bias_hh_l{k}``; default True.
        batch_first: inputs and outputs are (B, T, ...) instead of (T, B, ...); default False (as
            torch). States (h0, h_n, ...) stay ``(L*D, B, ...)`` either way, as torch.
        dropout: inverted dropout probability on the outputs of every layer but the last, in
            training mode; default 0.0. Must lie in [0, 1) (torch accepts [0, 1]); with one layer
            it has no effect (torch also warns then).
        bidirectional: add a reverse-time direction per layer (D = 2; parameters named
            ``..._reverse``); default False.
        dtype: dtype of every parameter, default ``"float32"`` (inputs are cast to it).

    Every parameter is drawn from U(-1/sqrt(H), 1/sqrt(H)), as torch.

    Shapes:
        ``forward(x, hx=None)`` -> ``(out, h_n)``: x (T, B, F) [(B, T, F) with ``batch_first``] or
        unbatched (T, F); hx, h_n ``(L*D, B, H)`` [``(L*D, H)`` unbatched]; out ``(T, B, D*H)`` [``(B, T, D*H)``].
        ``backward(dout, dh_n=None)``: dx of x's shape, or ``(dx, dh0)`` when ``hx`` was given.

    Raises:
        ConfigError: ``input_size``/``hidden_size``/``num_layers`` not an integer >= 1, ``dropout`` outside
            [0, 1), ``nonlinearity`` not ``"tanh"``/``"relu"``, or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input that is not 2-D or 3-D, with a last axis other than F, or an empty
            sequence or batch; an initial state, ``dout`` or final-state gradient of the wrong shape.
        DTypeError: a non-floating input, state or gradient.
        PlaitError: ``backward`` without a matching ``forward``.
    """

    cell = (rnn_forward, rnn_backward)
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: str = "float32") -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._build(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype)

    def cell_options(self) -> dict[str, Any]:
        return {"nonlinearity": self.nonlinearity}


class GRU(_SingleStateRNN):
    """GRU with torch's equations: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h.

    Gates (r, z, n), stacked in that order in ``weight_ih_l{k}`` (3H, F) and ``weight_hh_l{k}`` (3H, H).

    Args:
        input_size: F, the size of the last input axis, an int >= 1 (required).
        hidden_size: H, the hidden state size, an int >= 1 (required).
        num_layers: L, stacked layers, an int >= 1; default 1.
        bias: learn ``bias_ih_l{k}`` and ``bias_hh_l{k}``; default True.
        batch_first: inputs and outputs are (B, T, ...) instead of (T, B, ...); default False (as
            torch). States (h0, h_n, ...) stay ``(L*D, B, ...)`` either way, as torch.
        dropout: inverted dropout probability on the outputs of every layer but the last, in
            training mode; default 0.0. Must lie in [0, 1) (torch accepts [0, 1]); with one layer
            it has no effect (torch also warns then).
        bidirectional: add a reverse-time direction per layer (D = 2; parameters named
            ``..._reverse``); default False.
        dtype: dtype of every parameter, default ``"float32"`` (inputs are cast to it).

    Every parameter is drawn from U(-1/sqrt(H), 1/sqrt(H)), as torch.

    Shapes:
        ``forward(x, hx=None)`` -> ``(out, h_n)``: x (T, B, F) [(B, T, F) with ``batch_first``] or
        unbatched (T, F); hx, h_n ``(L*D, B, H)`` [``(L*D, H)`` unbatched]; out ``(T, B, D*H)`` [``(B, T, D*H)``].
        ``backward(dout, dh_n=None)``: dx of x's shape, or ``(dx, dh0)`` when ``hx`` was given.

    Raises:
        ConfigError: ``input_size``/``hidden_size``/``num_layers`` not an integer >= 1, ``dropout`` outside
            [0, 1), or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input that is not 2-D or 3-D, with a last axis other than F, or an empty
            sequence or batch; an initial state, ``dout`` or final-state gradient of the wrong shape.
        DTypeError: a non-floating input, state or gradient.
        PlaitError: ``backward`` without a matching ``forward``.
    """

    cell = (gru_forward, gru_backward)
    gates = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: str = "float32") -> None:
        super().__init__()
        self._build(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype)


class LSTM(_RNNBase):
    """LSTM: gates (i, f, g, o); c' = f c + i g; h' = o tanh(c'). ``forward`` returns (out, (h_n, c_n)).

    ``proj_size`` P > 0 projects h' = (o tanh(c')) W_hr^T as torch does: ``weight_hr_l{k}`` is
    (P, H), ``weight_hh_l{k}`` (4H, P), h and the output per direction have size P, c keeps H.

    Args:
        input_size: F, the size of the last input axis, an int >= 1 (required).
        hidden_size: H, the hidden state size, an int >= 1 (required).
        num_layers: L, stacked layers, an int >= 1; default 1.
        bias: learn ``bias_ih_l{k}`` and ``bias_hh_l{k}``; default True.
        batch_first: inputs and outputs are (B, T, ...) instead of (T, B, ...); default False (as
            torch). States (h0, h_n, ...) stay ``(L*D, B, ...)`` either way, as torch.
        dropout: inverted dropout probability on the outputs of every layer but the last, in
            training mode; default 0.0. Must lie in [0, 1) (torch accepts [0, 1]); with one layer
            it has no effect (torch also warns then).
        bidirectional: add a reverse-time direction per layer (D = 2; parameters named
            ``..._reverse``); default False.
        proj_size: P, project h to this size (0 < P < H) with ``weight_hr_l{k}`` (P, H); default 0, no
            projection (as torch).
        dtype: dtype of every parameter, default ``"float32"`` (inputs are cast to it).

    Every parameter is drawn from U(-1/sqrt(H), 1/sqrt(H)), as torch.

    Shapes:
        ``forward(x, hx=None)`` -> ``(out, (h_n, c_n))``: x (T, B, F) [(B, T, F) with ``batch_first``]
        or unbatched (T, F); hx = (h0, c0) with h0, h_n ``(L*D, B, H_out)`` and c0, c_n ``(L*D, B, H)``
        [``(L*D, ...)`` unbatched], H_out = P if ``proj_size`` else H; out ``(T, B, D*H_out)`` [``(B, T, D*H_out)``].
        ``backward(dout, dstate=None)``: dx of x's shape, or ``(dx, (dh0, dc0))`` when ``hx`` was given.

    Raises:
        ConfigError: ``input_size``/``hidden_size``/``num_layers`` not an integer >= 1, ``dropout`` outside
            [0, 1), ``proj_size`` negative, not an int or not below ``hidden_size``, or more parameters than ``PLAIT_MAX_PARAMETERS``.
        ShapeError: an input that is not 2-D or 3-D, with a last axis other than F, or an empty
            sequence or batch; an initial state, ``dout`` or final-state gradient of the wrong shape.
        DTypeError: a non-floating input, state or gradient.
        PlaitError: ``backward`` without a matching ``forward``.
    """

    _NAMES = ("initial hidden state", "initial cell state")
    cell = (lstm_forward, lstm_backward)
    gates = 4

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype: str = "float32") -> None:
        super().__init__()
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ConfigError(f"LSTM: proj_size must be a non-negative int, got {proj_size!r}")
        if proj_size and isinstance(hidden_size, int) and proj_size >= hidden_size:
            raise ConfigError(f"LSTM: proj_size ({proj_size}) must be smaller than hidden_size ({hidden_size})")
        self._build(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, proj_size)

    def _state_sizes(self) -> tuple[int, ...]:
        return (self._out_size, self.hidden_size)

    def cell_options(self) -> dict[str, Any]:
        """With ``batch_first`` the cell lays its outputs out batch-major (a time-major view of
        them), so the (B, T, H) output is contiguous for the layer that reads it."""
        return {"batch_major": self.batch_first}

    def forward(self, x: Any, hx: tuple[Any, Any] | None = None) -> tuple[Any, tuple[Any, Any]]:
        """x: (T, B, F) [(B, T, F) with batch_first] or (T, F); hx: (h0, c0), each ``(L*D, B, H)``, or None.

        Args:
            x: the input sequence, (T, B, F), (B, T, F) with ``batch_first``, or unbatched (T, F).
            hx: the initial state ``(h0, c0)``: h0 ``(L*D, B, H_out)``, c0 ``(L*D, B, H)`` (``(L*D, ...)`` for unbatched
                x), H_out = ``proj_size`` or H; default None (both zeros).

        Returns:
            ``(out, (h_n, c_n))``: out ``(T, B, D*H_out)`` [``(B, T, D*H_out)`` with ``batch_first``; ``(T, D*H_out)``
            unbatched]; h_n, c_n of h0's and c0's shapes.

        Raises:
            ShapeError: x not 2-D/3-D, with a last axis other than ``input_size``, or empty; hx not a pair,
                or a state of the wrong shape.
            DTypeError: a non-floating x or state.
        """
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ShapeError(f"LSTM: expected the initial state as a pair (h0, c0), got {type(hx).__name__}")
        out, (h_n, c_n) = self._forward(x, None if hx is None else tuple(hx), self._NAMES)
        return out, (h_n, c_n)

    def backward(self, dout: Any, dstate: tuple[Any, Any] | None = None) -> Any:
        """Returns dx, or (dx, (dh0, dc0)) when an initial state was passed to forward.

        Args:
            dout: gradient of ``out`` (out's shape), or None for zeros.
            dstate: ``(dh_n, dc_n)``, gradients of the final states (each may be None for zeros), or None
                (default) for both zeros.

        Returns:
            dx of x's shape; ``(dx, (dh0, dc0))`` when forward was given ``hx``.

        Raises:
            ShapeError: ``dstate`` not a pair or None, or a gradient of the wrong shape.
            DTypeError: a non-floating gradient.
            PlaitError: no matching forward.
        """
        if dstate is not None and (not isinstance(dstate, (tuple, list)) or len(dstate) != 2):
            raise ShapeError("LSTM.backward: expected the final-state gradient as a pair (dh_n, dc_n) or None, "
                             f"got {type(dstate).__name__}")
        dx, dinit = self._backward(dout, None if dstate is None else tuple(dstate), self._NAMES)
        return dx if dinit is None else (dx, dinit)


LAYERS: dict[str, type] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
