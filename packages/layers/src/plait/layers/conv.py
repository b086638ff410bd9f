"""Convolutions: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d`` (PyTorch's arguments and layouts).

``Conv2d.weight`` is (out, in/groups, kh, kw), ``ConvTranspose2d.weight`` is
(in, out/groups, kh, kw) and ``Conv1d.weight`` is (out, in/groups, k), each initialised
as torch does (Kaiming-uniform with a = sqrt(5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))) unless
``init`` / ``bias_init`` name another rule (a registered initializer name, a ``{"type": name,
**args}`` dict or an initializer; recorded in ``config()``; torch's fan rule for the shape).
The maths is one pair, :func:`._conv_maths.conv_forward` / ``conv_backward`` (im2col GEMMs,
col2im), which picks the faster layout of :mod:`._conv_flat` for stride 1 itself; 1-D runs
as 2-D with H = 1.
"""

from __future__ import annotations

import math
from typing import Any

from plait.core import ConfigError, Module, Param, ShapeError, check_array, check_parameter_count, get_rng
from plait.core.initializers import KaimingUniform, Uniform

from ._conv_args import IntOrTuple, Pads, as_tuple, check_groups
from ._conv_maths import conv_backward, conv_forward, conv_transpose2d_backward, conv_transpose2d_forward, out_size
from ._conv_pad import PADDING_MODES
from ._init_args import InitSpec, chosen_initializer, draw

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]


def _init_weights(module: Module, name: str, init: InitSpec, bias_init: InitSpec, shape: tuple[int, ...],
                  fan_in: int, fan_out: int, out_channels: int, bias: bool, dtype: str) -> tuple[Param, Param | None]:
    """(weight, bias): torch's rule (Kaiming-uniform a = sqrt(5), bias U(+-1/sqrt(fan_in))) unless chosen."""
    w_init = chosen_initializer(module, "init", init, name)
    b_init = chosen_initializer(module, "bias_init", bias_init, name)
    rng = get_rng()
    if w_init is None:
        weight = Param(KaimingUniform(a=math.sqrt(5))(shape, fan_in, fan_out, rng, dtype))
    else:
        weight = Param(draw(w_init, shape, dtype))
    if not bias:
        return weight, None
    if b_init is None:
        bound = 1.0 / math.sqrt(fan_in)
        return weight, Param(Uniform(-bound, bound)((out_channels,), fan_in, out_channels, rng, dtype))
    return weight, Param(draw(b_init, (out_channels,), dtype))


class _Conv(Module):
    """Shared by Conv1d and Conv2d: the geometry, kept in 2-D form; the maths is one pair."""

    maths = (conv_forward, conv_backward)
    maths_params = ("weight", "bias")

    _name = ""
    _nd = 2

    def _setup(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple,
               padding: str | IntOrTuple, dilation: IntOrTuple, groups: int, bias: bool, padding_mode: str,
               dtype: str, init: InitSpec = None, bias_init: InitSpec = None) -> None:
        nd, name = self._nd, self._name
        check_groups(name, in_channels, out_channels, groups)
        if padding_mode not in PADDING_MODES:
            raise ConfigError(f"{name}: padding_mode must be one of {', '.join(map(repr, PADDING_MODES))}, "
                              f"got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", name, 1)
        self.stride = as_tuple(stride, nd, "stride", name, 1)
        self.dilation = as_tuple(dilation, nd, "dilation", name, 1)
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ConfigError(f"{name}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ConfigError(f"{name}: padding='same' needs stride 1, got stride {self.stride}")
            self.padding: str | tuple[int, ...] = padding
            totals = [d * (k - 1) if padding == "same" else 0 for k, d in zip(self.kernel_size, self.dilation)]
            pads = tuple((t // 2, t - t // 2) for t in totals)  # as torch: the odd pixel goes after
        else:
            self.padding = as_tuple(padding, nd, "padding", name, 0)
            pads = tuple((p, p) for p in self.padding)
        lift = 2 - nd  # 1-D as 2-D: prepend a unit height
        self._pads2: Pads = ((0, 0),) * lift + pads  # type: ignore[assignment]
        self._k2 = (1,) * lift + self.kernel_size
        self._s2 = (1,) * lift + self.stride
        self._d2 = (1,) * lift + self.dilation
        fan_in = (self.in_channels // self.groups) * math.prod(self.kernel_size)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        check_parameter_count(self.out_channels * (fan_in + 1), name)
        self.weight, self.bias = _init_weights(self, name, init, bias_init, shape, fan_in, self.out_channels,
                                               self.out_channels, bias, dtype)

    def check_input(self, x: Any) -> Any:
        x = check_array(x, self._name, ndim=self._nd + 2, dims={1: self.in_channels})
        if x.shape[0] == 0:  # the GEMM layout cannot infer sizes from an empty array
            raise ShapeError(f"{self._name}: got an empty batch (input shape {tuple(x.shape)}); pass at least one sample")
        h, w = (1, x.shape[2]) if self._nd == 1 else x.shape[2:]
        ho = out_size(h, self._k2[0], self._s2[0], self._pads2[0], self._d2[0])
        wo = out_size(w, self._k2[1], self._s2[1], self._pads2[1], self._d2[1])
        if ho < 1 or wo < 1:
            raise ShapeError(f"{self._name}: input of shape {tuple(x.shape)} is smaller than the kernel "
                             f"{self.kernel_size} (dilation {self.dilation}, padding {self.padding})")
        mode = self.padding_mode
        if mode in ("reflect", "circular"):  # torch: reflect needs pad < size, circular pad <= size
            for size, pad in zip((h, w), self._pads2):
                if max(pad) > size - (mode == "reflect"):
                    raise ShapeError(f"{self._name}: padding {self.padding} with padding_mode={mode!r} needs "
                                     f"{'more than' if mode == 'reflect' else 'at least'} {max(pad)} input "
                                     f"elements per side, got input of shape {tuple(x.shape)}")
        return x

    def options(self, x: Any) -> dict[str, Any]:
        return {"stride": self._s2, "pads": self._pads2, "dilation": self._d2, "groups": self.groups,
                "padding_mode": self.padding_mode}

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}, dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}, "
                f"padding_mode={self.padding_mode!r}")


class Conv1d(_Conv):
    """1-D convolution, x: (N, C_in, L) -> (N, C_out, L_out), as ``torch.nn.Conv1d``.

    ``padding_mode`` is 'zeros', 'reflect', 'replicate' or 'circular' (torch's meanings).

    Args:
        in_channels: C_in, an int >= 1 divisible by ``groups``.
        out_channels: C_out, an int >= 1 divisible by ``groups``.
        kernel_size: an int or a 1-tuple, each >= 1 (required, as torch).
        stride: an int or a 1-tuple, each >= 1; default 1.
        padding: an int or a 1-tuple of zero-or-more pixels added on both sides, or ``"valid"`` (none) or ``"same"``
            (output size = input size; needs stride 1); default 0.
        dilation: spacing between kernel taps, an int or a 1-tuple, each >= 1; default 1.
        groups: split the channels into this many independent convolutions; default 1.
        bias: learn a bias (C_out,); default True.
        padding_mode: ``"zeros"`` (default), ``"reflect"``, ``"replicate"`` or ``"circular"``, as torch.
        dtype: dtype of weight and bias, default ``"float32"``.
        init: initializer of ``weight``; default None keeps torch's ``kaiming_uniform_(a=sqrt(5))``
            (a registered initializer name, a ``{"type": name, **args}`` dict or an initializer).
        bias_init: initializer of ``bias``; default None keeps torch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
            fan_in = C_in / groups * k.

    Shapes:
        ``forward(x)``: x (N, C_in, L) -> y (N, C_out, L_out), L_out = floor((L + 2 padding - dilation
        (k - 1) - 1) / stride) + 1. ``backward(dy)``: dy (N, C_out, L_out) -> dx (N, C_in, L) (None after
        ``requires_input_grad(False)``); adds dW (C_out, C_in/groups, k) and db (C_out,) to the gradients.

    Raises:
        ConfigError: a channel count, ``groups``, ``kernel_size``, ``stride``, ``padding`` or ``dilation``
            that is not an integer (tuple) in range; channels not divisible by ``groups``; an unknown
            ``padding`` string or ``padding_mode``; ``padding="same"`` with a stride other than 1; more
            parameters than ``PLAIT_MAX_PARAMETERS``; an ``init``/``bias_init`` that names no initializer.
        ShapeError: an input of another rank, with axis 1 not C_in, an empty batch, smaller than the
            (dilated, padded) kernel, or too small for ``reflect``/``circular`` padding; a ``dy`` of
            another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "Conv1d"
    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: str | IntOrTuple = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", dtype: str = "float32", *, init: InitSpec = None,
                 bias_init: InitSpec = None) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype,
                    init, bias_init)


class Conv2d(_Conv):
    """2-D convolution, x: (N, C_in, H, W) -> (N, C_out, H_out, W_out), as ``torch.nn.Conv2d``.

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (stride 1; for an even kernel
    span the extra pixel goes to the bottom/right, as torch). ``padding_mode`` is 'zeros',
    'reflect' (mirror without repeating the edge), 'replicate' (repeat the edge) or 'circular'
    (wrap around), as torch.

    Args:
        in_channels: C_in, an int >= 1 divisible by ``groups``.
        out_channels: C_out, an int >= 1 divisible by ``groups``.
        kernel_size: an int or a pair (kh, kw), each >= 1 (required, as torch).
        stride: an int or a pair (kh, kw), each >= 1; default 1.
        padding: an int or a pair (kh, kw) of zero-or-more pixels added on both sides, or ``"valid"`` (none) or ``"same"``
            (output size = input size; needs stride 1); default 0.
        dilation: spacing between kernel taps, an int or a pair (kh, kw), each >= 1; default 1.
        groups: split the channels into this many independent convolutions; default 1.
        bias: learn a bias (C_out,); default True.
        padding_mode: ``"zeros"`` (default), ``"reflect"``, ``"replicate"`` or ``"circular"``, as torch.
        dtype: dtype of weight and bias, default ``"float32"``.
        init: initializer of ``weight``; default None keeps torch's ``kaiming_uniform_(a=sqrt(5))``
            (a registered initializer name, a ``{"type": name, **args}`` dict or an initializer).
        bias_init: initializer of ``bias``; default None keeps torch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
            fan_in = C_in / groups * kh * kw.

    Shapes:
        ``forward(x)``: x (N, C_in, H, W) -> y (N, C_out, H_out, W_out), H_out = floor((H + 2 padding[0]
        - dilation[0] (kh - 1) - 1) / stride[0]) + 1 (W_out likewise). ``backward(dy)``: dy of y's shape ->
        dx (N, C_in, H, W) (None after ``requires_input_grad(False)``); adds dW (C_out, C_in/groups, kh, kw)
        and db (C_out,) to the gradients.

    Raises:
        ConfigError: a channel count, ``groups``, ``kernel_size``, ``stride``, ``padding`` or ``dilation``
            that is not an integer (tuple) in range; channels not divisible by ``groups``; an unknown
            ``padding`` string or ``padding_mode``; ``padding="same"`` with a stride other than 1; more
            parameters than ``PLAIT_MAX_PARAMETERS``; an ``init``/``bias_init`` that names no initializer.
        ShapeError: an input of another rank, with axis 1 not C_in, an empty batch, smaller than the
            (dilated, padded) kernel, or too small for ``reflect``/``circular`` padding; a ``dy`` of
            another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    _name = "Conv2d"
    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: str | IntOrTuple = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", dtype: str = "float32", *, init: InitSpec = None,
                 bias_init: InitSpec = None) -> None:
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype,
                    init, bias_init)


class ConvTranspose2d(Module):
    """Transposed 2-D convolution (the gradient of Conv2d w.r.t. its input), as ``torch.nn.ConvTranspose2d``.

    x: (N, C_in, H, W) -> (N, C_out, H_out, W_out) with
    H_out = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1.
    ``weight`` is (C_in, C_out/groups, kh, kw).

    Args:
        in_channels: C_in, an int >= 1 divisible by ``groups``.
        out_channels: C_out, an int >= 1 divisible by ``groups``.
        kernel_size: an int or a pair (kh, kw), each >= 1 (required, as torch).
        stride: an int or a pair, each >= 1; default 1.
        padding: an int or a pair >= 0: ``dilation * (k - 1) - padding`` zeros are added to the input of
            the equivalent convolution (torch's meaning); default 0. Strings are not accepted (as torch).
        output_padding: extra size added to one side of each output axis, an int or a pair, each smaller
            than the stride or the dilation on its axis; default 0.
        groups: split the channels into this many independent convolutions; default 1.
        bias: learn a bias (C_out,); default True.
        dilation: spacing between kernel taps, an int or a pair, each >= 1; default 1.
        padding_mode: only ``"zeros"`` (the default), as torch.
        dtype: dtype of weight and bias, default ``"float32"``.
        init: initializer of ``weight``; default None keeps torch's ``kaiming_uniform_(a=sqrt(5))`` with
            torch's fans for this layout (fan_in = C_out / groups * kh * kw).
        bias_init: initializer of ``bias``; default None keeps U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in as above.

    Shapes:
        ``forward(x)``: x (N, C_in, H, W) -> y (N, C_out, H_out, W_out), H_out as above (W_out likewise).
        ``backward(dy)``: dy of y's shape -> dx (N, C_in, H, W) (None after ``requires_input_grad(False)``);
        adds dW (C_in, C_out/groups, kh, kw) and db (C_out,) to the gradients.

    Raises:
        ConfigError: a channel count, ``groups``, ``kernel_size``, ``stride``, ``padding``,
            ``output_padding`` or ``dilation`` that is not an integer (pair) in range; channels not
            divisible by ``groups``; ``output_padding`` not below the stride or the dilation;
            ``padding_mode`` other than ``"zeros"``; more parameters than ``PLAIT_MAX_PARAMETERS``; an
            ``init``/``bias_init`` that names no initializer.
        ShapeError: an input that is not 4-D, with axis 1 not C_in, an empty batch or an empty output;
            a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
    """

    maths = (conv_transpose2d_forward, conv_transpose2d_backward)
    maths_params = ("weight", "bias")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrTuple = 1, padding_mode: str = "zeros", dtype: str = "float32", *,
                 init: InitSpec = None, bias_init: InitSpec = None) -> None:
        super().__init__()
        name = "ConvTranspose2d"
        check_groups(name, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ConfigError(f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = as_tuple(kernel_size, 2, "kernel_size", name, 1)
        self.stride = as_tuple(stride, 2, "stride", name, 1)
        self.padding = as_tuple(padding, 2, "padding", name, 0)
        self.output_padding = as_tuple(output_padding, 2, "output_padding", name, 0)
        self.dilation = as_tuple(dilation, 2, "dilation", name, 1)
        self.padding_mode = padding_mode
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ConfigError(f"{name}: output_padding {self.output_padding} must be smaller than "
                                  f"either stride {self.stride} or dilation {self.dilation}")
        fan_in = (self.out_channels // self.groups) * math.prod(self.kernel_size)  # torch: dim 1 of the weight
        shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        check_parameter_count(self.in_channels * fan_in + self.out_channels, name)
        self.weight, self.bias = _init_weights(self, name, init, bias_init, shape, fan_in, self.in_channels,
                                               self.out_channels, bias, dtype)

    def check_input(self, x: Any) -> Any:
        x = check_array(x, "ConvTranspose2d", ndim=4, dims={1: self.in_channels})
        if x.shape[0] == 0:  # the GEMM layout cannot infer sizes from an empty array
            raise ShapeError(f"ConvTranspose2d: got an empty batch (input shape {tuple(x.shape)}); pass at least one sample")
        out_hw = [(s - 1) * st - 2 * p + d * (k - 1) + op + 1 for s, st, p, d, k, op in
                  zip(x.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size, self.output_padding)]
        if min(out_hw) < 1:
            raise ShapeError(f"ConvTranspose2d: input of shape {tuple(x.shape)} gives an empty output {tuple(out_hw)}")
        return x

    def options(self, x: Any) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
                "dilation": self.dilation, "groups": self.groups}

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}")


LAYERS: dict[str, type] = {"conv1d": Conv1d, "conv2d": Conv2d, "conv_transpose2d": ConvTranspose2d}
