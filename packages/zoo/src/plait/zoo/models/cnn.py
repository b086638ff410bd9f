"""``cnn``: a LeNet-style network, [conv -> (batch norm) -> activation -> pool] x n -> MLP head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, Module, ModuleList, check_array, leading_modules

from ..builders import LayerSpec, build_dropout, build_layer, run_backward, run_forward
from ..catalog import register_model
from . import _sizes

__all__ = ["CNN"]


def _area(kernel: Any) -> int:
    """kh * kw of an int or (kh, kw) kernel size (non-integers are refused by the conv layer itself)."""
    k = tuple(kernel) if isinstance(kernel, (list, tuple)) else (kernel, kernel)
    return int(k[0]) * int(k[-1]) if all(isinstance(v, int) for v in k) else 1


def _per_layer(value: int | Sequence[int], n: int, name: str) -> list[int]:
    values = [_sizes.size(value, "cnn", name, 0)] * n if not isinstance(value, (list, tuple)) else _sizes.sizes(
        value, "cnn", name, 0)
    if len(values) != n:
        raise ConfigError(f"cnn: {name} needs one value per conv layer ({n}), got {value!r}")
    return values


@register_model("cnn")
class CNN(Module):
    """x: (B, in_channels, image_size, image_size) -> logits (B, num_classes).

    The defaults are LeNet-5 for 28x28 images: conv 5x5 (pad 2) 6 -> pool -> conv 5x5 16
    -> pool -> 120 -> 84 -> 10. ``pool`` is a layer spec built with ``kernel_size=2``.

    Args:
        in_channels: default 1; the input's channels.
        num_classes: default 10; the logits' width.
        image_size: default 28; the input's height and width (square images).
        channels: default ``(6, 16)``; the output channels of each conv stage.
        kernel_size: default 5; the square kernel of every conv, or one per conv.
        padding: default ``(2, 0)``; the zero padding of every conv, or one per conv.
        hidden: default ``(120, 84)``; the widths of the hidden Linear layers of the head.
        activation: default ``"relu"``; the layer spec after each conv (and its batch norm)
            and each hidden Linear.
        pool: default ``"max_pool2d"``; the layer spec after each activation, built with
            ``kernel_size=2`` (``"avg_pool2d"`` for the original LeNet).
        batch_norm: default False; a BatchNorm2d after each conv.
        dropout: default 0.0; dropout after each hidden activation of the head, in [0, 1).

    Raises:
        ConfigError: a size that is not a positive integer, a per-conv list of the wrong
            length, an image that shrinks to nothing, an unknown layer spec, dropout out
            of range, or too many parameters.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        channels: Sequence[int] = (6, 16),
        kernel_size: int | Sequence[int] = 5,
        padding: int | Sequence[int] = (2, 0),
        hidden: Sequence[int] = (120, 84),
        activation: LayerSpec = "relu",
        pool: LayerSpec = "max_pool2d",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        channels, hidden = _sizes.sizes(channels, "cnn", "channels"), _sizes.sizes(hidden, "cnn", "hidden")
        n = len(channels)
        kernels = _per_layer(kernel_size, n, "kernel_size")
        pads = _per_layer(padding, n, "padding")
        self.in_channels = _sizes.size(in_channels, "cnn", "in_channels")
        self.image_size = _sizes.size(image_size, "cnn", "image_size")
        num_classes = _sizes.size(num_classes, "cnn", "num_classes")
        conv_params = sum((a * _area(k) + 1) * b for a, b, k in zip([self.in_channels, *channels[:-1]], channels, kernels))
        # the flattened map is at most image_size**2 positions of the last conv's channels
        dense = [(channels[-1] if channels else self.in_channels) * self.image_size**2, *hidden, num_classes]
        _sizes.check_parameter_count(conv_params + sum((a + 1) * b for a, b in zip(dense[:-1], dense[1:])), "cnn")
        layers: list[Module] = []
        size, c_in = self.image_size, self.in_channels
        for c_out, k, p in zip(channels, kernels, pads):
            layers.append(build_layer("conv2d", c_in, int(c_out), k, padding=p, where="cnn"))
            if batch_norm:
                layers.append(build_layer("batch_norm2d", int(c_out), where="cnn"))
            layers.append(build_layer(activation, where="cnn activation"))
            layers.append(build_layer(pool, kernel_size=2, where="cnn pool"))
            size = (size + 2 * p - k + 1) // 2
            c_in = int(c_out)
            if size < 1:
                raise ConfigError(f"cnn: a {image_size}x{image_size} image shrinks to nothing after {len(layers)} layers")
        self.features = ModuleList(layers)
        head: list[Module] = [build_layer("flatten", where="cnn")]
        width = c_in * size * size
        for h in hidden:
            head.append(build_layer("linear", width, int(h), where="cnn"))
            head.append(build_layer(activation, where="cnn activation"))
            head.append(build_dropout(dropout, where="cnn"))
            width = int(h)
        head.append(build_layer("linear", width, int(num_classes), where="cnn"))
        self.classifier = ModuleList(head)

    def forward(self, x: Any) -> Any:
        size = self.image_size
        x = check_array(x, "cnn", ndim=4, dims={1: self.in_channels, 2: size, 3: size})
        return run_forward(self.classifier, run_forward(self.features, x))

    def backward(self, dlogits: Any) -> Any:
        """Gradient w.r.t. the input images.

        Args:
            dlogits: the gradient w.r.t. the logits, ``(B, num_classes)``.

        Returns:
            ``dx`` of shape ``(B, in_channels, image_size, image_size)``, or None when
            ``requires_input_grad(False)``.
        """
        return run_backward(self.features, run_backward(self.classifier, dlogits))

    def input_modules(self) -> list[Module]:
        return leading_modules(self.features)
