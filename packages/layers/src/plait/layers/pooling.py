"""Pooling: ``MaxPool1d/2d``, ``AvgPool1d/2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool1d/2d`` (torch's arguments).

Output sizes, padding and ``ceil_mode`` follow torch exactly; max pooling routes the
gradient to the first maximum of each window, as torch does. The maths is in
:mod:`._pool_maths` (one pair per kind); 1-D pooling runs as 2-D with H = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, Module, ShapeError, check_array, check_size

from ._conv_args import IntOrTuple, as_tuple
from ._pool_maths import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    adaptive_max_pool_backward,
    adaptive_max_pool_forward,
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
    pool_output_hw,
)

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "MaxPool1d",
           "MaxPool2d"]


class _Pool(Module):
    """Shared geometry of the windowed pools (kept in 2-D form; 1-D lifts H = 1)."""

    _name = ""
    _nd = 2

    def _setup(self, kernel_size: IntOrTuple, stride: IntOrTuple | None, padding: IntOrTuple, dilation: IntOrTuple,
               ceil_mode: bool) -> None:
        nd, name = self._nd, self._name
        self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else as_tuple(stride, nd, "stride", name, 1)
        self.padding = as_tuple(padding, nd, "padding", name, 0)
        self.dilation = as_tuple(dilation, nd, "dilation", name, 1)
        self.ceil_mode = bool(ceil_mode)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ConfigError(f"{name}: padding {self.padding} must be at most half of kernel_size {self.kernel_size}")
        lift = 2 - nd
        self._k2, self._s2 = (1,) * lift + self.kernel_size, (1,) * lift + self.stride
        self._p2, self._d2 = (0,) * lift + self.padding, (1,) * lift + self.dilation

    def check_input(self, x: Any) -> Any:
        x = check_array(x, self._name, ndim=self._nd + 2)
        x_hw = x.shape[2:] if self._nd == 2 else (1, x.shape[2])
        if min(pool_output_hw(x_hw, self._k2, self._s2, self._p2, self._d2, self.ceil_mode)) < 1:
            raise ShapeError(f"{self._name}: input of shape {tuple(x.shape)} is smaller than the kernel "
                             f"{self.kernel_size} (padding {self.padding}, dilation {self.dilation})")
        return x


class _MaxPool(_Pool):
    maths = (max_pool_forward, max_pool_backward)

    def options(self, x: Any) -> dict[str, Any]:
        return {"kernel": self._k2, "stride": self._s2, "padding": self._p2, "dilation": self._d2,
                "ceil_mode": self.ceil_mode}


class MaxPool1d(_MaxPool):
    """Max over sliding windows, x: (N, C, L) -> (N, C, L_out), as ``torch.nn.MaxPool1d``.

    Args:
        kernel_size: window size, an int or a 1-tuple, each >= 1 (required).
        stride: window step, an int or a 1-tuple, each >= 1; default None means ``kernel_size`` (as torch).
        padding: implicit padding on both sides, an int or a 1-tuple, each >= 0 and at most half the kernel size;
            default 0. Padded positions count as -inf (never the maximum).
        dilation: spacing between window elements, an int or a 1-tuple, each >= 1; default 1.
        ceil_mode: round the output size up instead of down (a last window must still start inside
            the input or the left padding, as torch); default False.

    Torch's ``return_indices`` is not accepted. The gradient goes to the first maximum of each window.

    Shapes:
        ``forward(x)``: x (N, C, L) -> y (N, C, L_out), L_out = floor_or_ceil((L + 2 p - d (k - 1) - 1) / s) + 1.
        ``backward(dy)``: dy (N, C, L_out) -> dx (N, C, L).

    Raises:
        ConfigError: ``kernel_size``/``stride``/``padding``/``dilation`` not an integer (tuple) in range, or
            padding above half the kernel size.
        ShapeError: an input that is not 3-D, or smaller than the padded window; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "MaxPool1d"
    _nd = 1

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        self._setup(kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool2d(_MaxPool):
    """Max over sliding windows, x: (N, C, H, W) -> (N, C, H_out, W_out), as ``torch.nn.MaxPool2d``.

    H_out = floor_or_ceil((H + 2 p - d (k - 1) - 1) / s) + 1; ``stride`` defaults to ``kernel_size``.

    Args:
        kernel_size: window size, an int or a pair, each >= 1 (required).
        stride: window step, an int or a pair, each >= 1; default None means ``kernel_size`` (as torch).
        padding: implicit padding on both sides, an int or a pair, each >= 0 and at most half the kernel size;
            default 0. Padded positions count as -inf (never the maximum).
        dilation: spacing between window elements, an int or a pair, each >= 1; default 1.
        ceil_mode: round the output size up instead of down (a last window must still start inside
            the input or the left padding, as torch); default False.

    Torch's ``return_indices`` is not accepted. The gradient goes to the first maximum of each window.

    Shapes:
        ``forward(x)``: x (N, C, H, W) -> y (N, C, H_out, W_out), H_out = floor_or_ceil((H + 2 p - d (k - 1) - 1)
        / s) + 1 per axis. ``backward(dy)``: dy of y's shape -> dx of x's shape.

    Raises:
        ConfigError: ``kernel_size``/``stride``/``padding``/``dilation`` not an integer (tuple) in range, or
            padding above half the kernel size.
        ShapeError: an input that is not 4-D, or smaller than the padded window; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "MaxPool2d"
    _nd = 2

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        self._setup(kernel_size, stride, padding, dilation, ceil_mode)


class AvgPool2d(_Pool):
    """Mean over sliding windows, x: (N, C, H, W) -> (N, C, H_out, W_out), as ``torch.nn.AvgPool2d``.

    ``count_include_pad`` counts zero padding in the divisor; ``divisor_override`` replaces it.

    Args:
        kernel_size: window size, an int or a pair, each >= 1 (required).
        stride: window step, an int or a pair, each >= 1; default None means ``kernel_size`` (as torch).
        padding: implicit padding on both sides, an int or a pair, each >= 0 and at most half the kernel size;
            default 0. Padded positions count as zeros (see ``count_include_pad``).
        ceil_mode: round the output size up instead of down (a last window must still start inside
            the input or the left padding, as torch); default False.
        count_include_pad: count the padded zeros in the divisor of windows that overlap the padding;
            default True (as torch).
        divisor_override: divide every window sum by this non-zero int instead; default None.

    Shapes:
        ``forward(x)``: x (N, C, H, W) -> y (N, C, H_out, W_out), H_out = floor_or_ceil((H + 2 p - k) / s)
        + 1 per axis. ``backward(dy)``: dy of y's shape -> dx of x's shape.

    Raises:
        ConfigError: ``kernel_size``/``stride``/``padding`` not an integer (tuple) in range, or
            padding above half the kernel size; ``divisor_override`` equal to 0.
        ShapeError: an input that is not 4-D, or smaller than the padded window; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "AvgPool2d"
    maths = (avg_pool_forward, avg_pool_backward)
    _nd = 2

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self._setup(kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None:
            divisor_override = check_size(divisor_override, "AvgPool2d", "divisor_override", minimum=None)
            if divisor_override == 0:
                raise ConfigError("AvgPool2d: divisor_override must be non-zero")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def options(self, x: Any) -> dict[str, Any]:
        return {"kernel": self._k2, "stride": self._s2, "padding": self._p2, "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad, "divisor_override": self.divisor_override}


class AvgPool1d(_Pool):
    """Mean over sliding windows, x: (N, C, L) -> (N, C, L_out), as ``torch.nn.AvgPool1d``.

    L_out = floor_or_ceil((L + 2 p - k) / s) + 1; ``stride`` defaults to ``kernel_size``;
    ``count_include_pad`` counts zero padding in the divisor.

    Args:
        kernel_size: window size, an int or a 1-tuple, each >= 1 (required).
        stride: window step, an int or a 1-tuple, each >= 1; default None means ``kernel_size`` (as torch).
        padding: implicit padding on both sides, an int or a 1-tuple, each >= 0 and at most half the kernel size;
            default 0. Padded positions count as zeros (see ``count_include_pad``).
        ceil_mode: round the output size up instead of down (a last window must still start inside
            the input or the left padding, as torch); default False.
        count_include_pad: count the padded zeros in the divisor of windows that overlap the padding;
            default True (as torch).

    Shapes:
        ``forward(x)``: x (N, C, L) -> y (N, C, L_out), L_out = floor_or_ceil((L + 2 p - k) / s) + 1.
        ``backward(dy)``: dy (N, C, L_out) -> dx (N, C, L).

    Raises:
        ConfigError: ``kernel_size``/``stride``/``padding`` not an integer (tuple) in range, or
            padding above half the kernel size.
        ShapeError: an input that is not 3-D, or smaller than the padded window; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "AvgPool1d"
    maths = (avg_pool_forward, avg_pool_backward)
    _nd = 1

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        self._setup(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def options(self, x: Any) -> dict[str, Any]:
        return {"kernel": self._k2, "stride": self._s2, "padding": self._p2, "ceil_mode": self.ceil_mode,
                "count_include_pad": self.count_include_pad, "divisor_override": None}


class AdaptiveAvgPool2d(Module):
    """Mean over torch's adaptive windows: x (N, C, H, W) -> (N, C, *output_size).

    Output row i averages input rows [floor(i H / Ho), ceil((i + 1) H / Ho)); ``None`` in
    ``output_size`` keeps that input size.

    Args:
        output_size: (Ho, Wo): an int >= 1 (both sizes), or a pair of ints >= 1 or None (None keeps
            that input size). Required, as torch.

    Shapes:
        ``forward(x)``: x (N, C, H, W) -> y (N, C, Ho, Wo); ``backward(dy)``: dy of y's shape -> dx of x's shape.

    Raises:
        ConfigError: ``output_size`` is not a positive int, None, or a pair of them.
        ShapeError: an input that is not 4-D; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (adaptive_avg_pool2d_forward, adaptive_avg_pool2d_backward)

    def __init__(self, output_size: int | None | Sequence[int | None]) -> None:
        super().__init__()
        items = (output_size, output_size) if output_size is None or isinstance(output_size, int) else tuple(output_size)
        if len(items) != 2 or not all(v is None or (isinstance(v, int) and v >= 1) for v in items):
            raise ConfigError(f"AdaptiveAvgPool2d: output_size must be a positive int, None or two of them, got {output_size!r}")
        self.output_size = items

    def check_input(self, x: Any) -> Any:
        return check_array(x, "AdaptiveAvgPool2d", ndim=4)

    def options(self, x: Any) -> dict[str, Any]:
        return {"output_hw": tuple(s if o is None else o for s, o in zip(x.shape[2:], self.output_size))}


def _adaptive_sizes(output_size: Any, nd: int, where: str) -> tuple[int | None, ...]:
    single = output_size is None or (isinstance(output_size, int) and not isinstance(output_size, bool))
    items = (output_size,) * nd if single else tuple(output_size) if isinstance(output_size, (list, tuple)) else ()
    if len(items) != nd or not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
                                   for v in items):
        raise ConfigError(f"{where}: output_size must be a positive int, None or {nd} of them, got {output_size!r}")
    return items


class _AdaptiveMaxPool(Module):
    """Max over torch's adaptive windows: output index i covers [floor(i L / Lo), ceil((i + 1) L / Lo))."""

    maths = (adaptive_max_pool_forward, adaptive_max_pool_backward)
    _name = ""
    _nd = 2

    def __init__(self, output_size: int | None | Sequence[int | None], return_indices: bool = False) -> None:
        super().__init__()
        if return_indices:
            raise ConfigError(f"{self._name}: return_indices=True is not supported (the layer returns the pooled "
                              "array only); use return_indices=False")
        self.output_size = _adaptive_sizes(output_size, self._nd, self._name)
        self.return_indices = False

    def check_input(self, x: Any) -> Any:
        x = check_array(x, self._name, ndim=self._nd + 2)
        if min(x.shape[2:]) < 1:
            raise ShapeError(f"{self._name}: expected non-empty spatial sizes, got input of shape {tuple(x.shape)}")
        return x

    def options(self, x: Any) -> dict[str, Any]:
        out = tuple(s if o is None else o for s, o in zip(x.shape[2:], self.output_size))
        return {"output_hw": out if self._nd == 2 else (1, *out)}


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max over torch's adaptive windows, x: (N, C, L) -> (N, C, output_size), as ``torch.nn.AdaptiveMaxPool1d``.

    ``return_indices`` must be False (the default).

    Args:
        output_size: Lo, an int >= 1, or None to keep L (a 1-tuple or 1-list is also accepted). Required.
        return_indices: must be False (the default); torch's True (also return the argmax indices) is
            refused, as the layer returns the pooled array only.

    Shapes:
        ``forward(x)``: x (N, C, L) -> y (N, C, Lo); ``backward(dy)``: dy of y's shape -> dx (N, C, L),
        the gradient going to the first maximum of each window.

    Raises:
        ConfigError: ``output_size`` not a positive int, None or a 1-tuple of them; ``return_indices=True``.
        ShapeError: an input that is not 3-D or has L = 0; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "AdaptiveMaxPool1d"
    _nd = 1

    def __init__(self, output_size: int, return_indices: bool = False) -> None:
        super().__init__(output_size, return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Max over torch's adaptive windows, x: (N, C, H, W) -> (N, C, *output_size), as ``torch.nn.AdaptiveMaxPool2d``.

    ``None`` in ``output_size`` keeps that input size; ``return_indices`` must be False (the default).

    Args:
        output_size: (Ho, Wo): an int >= 1 (both sizes), or a pair (tuple or list) of ints >= 1 or None
            (None keeps that input size). Required.
        return_indices: must be False (the default); torch's True (also return the argmax indices) is
            refused, as the layer returns the pooled array only.

    Shapes:
        ``forward(x)``: x (N, C, H, W) -> y (N, C, Ho, Wo); ``backward(dy)``: dy of y's shape -> dx of x's
        shape, the gradient going to the first maximum of each window.

    Raises:
        ConfigError: ``output_size`` not a positive int, None or a pair of them; ``return_indices=True``.
        ShapeError: an input that is not 4-D or has an empty spatial axis; a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "AdaptiveMaxPool2d"
    _nd = 2

    def __init__(self, output_size: int | None | Sequence[int | None], return_indices: bool = False) -> None:
        super().__init__(output_size, return_indices)


LAYERS: dict[str, type] = {
    "max_pool1d": MaxPool1d,
    "max_pool2d": MaxPool2d,
    "avg_pool2d": AvgPool2d,
    "adaptive_avg_pool2d": AdaptiveAvgPool2d,
    "avg_pool1d": AvgPool1d,
    "adaptive_max_pool1d": AdaptiveMaxPool1d,
    "adaptive_max_pool2d": AdaptiveMaxPool2d,
}
