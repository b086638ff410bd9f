"""Pooling: ``MaxPool1d``, ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d`` (PyTorch's arguments).

Output sizes, padding and ``ceil_mode`` follow torch exactly; max pooling routes the
gradient to the first maximum of each window, as torch does. The maths is in
:mod:`._pool_maths`; 1-D pooling runs as 2-D with H = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, Module, ShapeError, check_array, get_array_module

from ._conv_args import IntOrTuple, as_tuple
from ._pool_maths import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    avg_divisors,
    max_pool2d_backward,
    max_pool2d_forward,
    pool_out_size,
    sum_pool2d_backward,
    sum_pool2d_forward,
)

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool1d", "MaxPool2d"]


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

    def _prepare(self, x: Any) -> tuple[Any, tuple[int, int]]:
        """Validate; return x as (N, C, H, W) and the output size."""
        x = check_array(x, self._name, ndim=self._nd + 2)
        x4 = x if self._nd == 2 else x[:, :, None, :]
        out_hw = tuple(pool_out_size(s, k, st, p, d, self.ceil_mode)
                       for s, k, st, p, d in zip(x4.shape[2:], self._k2, self._s2, self._p2, self._d2))
        if min(out_hw) < 1:
            raise ShapeError(f"{self._name}: input of shape {tuple(x.shape)} is smaller than the kernel "
                             f"{self.kernel_size} (padding {self.padding}, dilation {self.dilation})")
        return x4, out_hw  # type: ignore[return-value]

    def _check_dy(self, dy: Any, y_shape: tuple[int, ...]) -> Any:
        dy = check_array(dy, f"{self._name}.backward", what="output gradient", ndim=self._nd + 2)
        dy4 = dy if self._nd == 2 else dy[:, :, None, :]
        if tuple(dy4.shape) != tuple(y_shape):
            want = y_shape if self._nd == 2 else (y_shape[0], y_shape[1], y_shape[3])
            raise ShapeError(f"{self._name}.backward: expected output gradient of shape {tuple(want)}, "
                             f"got shape {tuple(dy.shape)}")
        return dy4

    def _out(self, a4: Any) -> Any:
        return a4 if self._nd == 2 else a4[:, :, 0, :]


class _MaxPool(_Pool):
    def forward(self, x: Any) -> Any:
        x4, out_hw = self._prepare(x)
        y, arg = max_pool2d_forward(x4, self._k2, self._s2, self._p2, self._d2, out_hw)
        self.save_for_backward((arg, x4.shape))
        return self._out(y)

    def backward(self, dy: Any) -> Any:
        arg, x_shape = self.saved()
        dy4 = self._check_dy(dy, arg.shape)
        return self._out(max_pool2d_backward(dy4, arg, x_shape, self._k2, self._s2, self._p2, self._d2))


class MaxPool1d(_MaxPool):
    """Max over sliding windows, x: (N, C, L) -> (N, C, L_out), as ``torch.nn.MaxPool1d``."""

    _name = "MaxPool1d"
    _nd = 1

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        self._setup(kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool2d(_MaxPool):
    """Max over sliding windows, x: (N, C, H, W) -> (N, C, H_out, W_out), as ``torch.nn.MaxPool2d``.

    H_out = floor_or_ceil((H + 2 p - d (k - 1) - 1) / s) + 1; ``stride`` defaults to ``kernel_size``.
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
    """

    _name = "AvgPool2d"
    _nd = 2

    def __init__(self, kernel_size: IntOrTuple, stride: IntOrTuple | None = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self._setup(kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None and int(divisor_override) == 0:
            raise ConfigError("AvgPool2d: divisor_override must be non-zero")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def _divisor(self, xp: Any, x_hw: tuple[int, int], out_hw: tuple[int, int], dtype: Any) -> Any:
        return avg_divisors(xp, x_hw, self._k2, self._s2, self._p2, out_hw, self.count_include_pad,
                            self.divisor_override).astype(dtype)

    def forward(self, x: Any) -> Any:
        x4, out_hw = self._prepare(x)
        divisor = self._divisor(get_array_module(x4), x4.shape[2:], out_hw, x4.dtype)
        y = sum_pool2d_forward(x4, self._k2, self._s2, self._p2, out_hw)
        y /= divisor
        self.save_for_backward((x4.shape, y.shape, divisor))
        return y

    def backward(self, dy: Any) -> Any:
        x_shape, y_shape, divisor = self.saved()
        dy4 = self._check_dy(dy, y_shape)
        return sum_pool2d_backward(dy4 / divisor, x_shape, self._k2, self._s2, self._p2)


class AdaptiveAvgPool2d(Module):
    """Mean over torch's adaptive windows: x (N, C, H, W) -> (N, C, *output_size).

    Output row i averages input rows [floor(i H / Ho), ceil((i + 1) H / Ho)); ``None`` in
    ``output_size`` keeps that input size.
    """

    def __init__(self, output_size: int | None | Sequence[int | None]) -> None:
        super().__init__()
        items = (output_size, output_size) if output_size is None or isinstance(output_size, int) else tuple(output_size)
        if len(items) != 2 or not all(v is None or (isinstance(v, int) and v >= 1) for v in items):
            raise ConfigError(f"AdaptiveAvgPool2d: output_size must be a positive int, None or two of them, got {output_size!r}")
        self.output_size = items

    def forward(self, x: Any) -> Any:
        x = check_array(x, "AdaptiveAvgPool2d", ndim=4)
        out_hw = tuple(s if o is None else o for s, o in zip(x.shape[2:], self.output_size))
        y = adaptive_avg_pool2d_forward(x, out_hw)
        self.save_for_backward((tuple(x.shape[2:]), y.shape))
        return y

    def backward(self, dy: Any) -> Any:
        x_hw, y_shape = self.saved()
        dy = check_array(dy, "AdaptiveAvgPool2d.backward", what="output gradient", ndim=4)
        if tuple(dy.shape) != tuple(y_shape):
            raise ShapeError(f"AdaptiveAvgPool2d.backward: expected output gradient of shape {tuple(y_shape)}, "
                             f"got shape {tuple(dy.shape)}")
        return adaptive_avg_pool2d_backward(dy, x_hw)


LAYERS: dict[str, type] = {
    "max_pool1d": MaxPool1d,
    "max_pool2d": MaxPool2d,
    "avg_pool2d": AvgPool2d,
    "adaptive_avg_pool2d": AdaptiveAvgPool2d,
}
