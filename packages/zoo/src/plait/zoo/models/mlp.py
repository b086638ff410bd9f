"""``mlp``: a multilayer perceptron, Linear -> [norm] -> activation -> [dropout] per hidden layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, Module, ModuleList, ShapeError, check_array, leading_modules

from ..builders import LayerSpec, build_dropout, build_layer, run_backward, run_forward
from ..catalog import register_model
from . import _sizes

__all__ = ["MLP"]


@register_model("mlp")
class MLP(Module):
    """x: (B, sizes[0]) or (B, ...) with prod(...) == sizes[0] (flattened) -> (B, sizes[-1]).

    Each hidden layer is ``Linear -> norm(width) -> activation -> Dropout(dropout)``; the
    last layer is a plain Linear (logits). ``activation`` and ``norm`` are layer specs: a
    registered name or a ``{"type": name, ...}`` dict; ``norm`` is built with the width.

    Args:
        sizes: default ``(784, 256, 10)``; the widths, input first, output last (at least
            two positive integers).
        activation: default ``"relu"``; the layer after each hidden Linear (and its norm).
        dropout: default 0.0; the dropout probability after each hidden activation, in [0, 1).
        norm: default None (none); a normalisation layer spec built as ``norm(width)``,
            e.g. ``"layer_norm"`` or ``"batch_norm1d"``.
        bias: default True; biases in every Linear.

    Raises:
        ConfigError: fewer than two sizes, a size that is not a positive integer, dropout
            out of range, an unknown layer spec, or too many parameters.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 256, 10),
        activation: LayerSpec = "relu",
        dropout: float = 0.0,
        norm: LayerSpec | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        sizes = _sizes.sizes(sizes, "mlp", "sizes")
        if len(sizes) < 2:
            raise ConfigError(f"mlp: sizes must list at least an input and an output width, got {sizes}")
        _sizes.check_parameter_count(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])), "mlp")
        self.sizes = sizes
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(build_layer("linear", n_in, n_out, bias=bias, where="mlp"))
            if i < len(sizes) - 2:
                if norm is not None:
                    layers.append(build_layer(norm, n_out, where="mlp norm"))
                layers.append(build_layer(activation, where="mlp activation"))
                layers.append(build_dropout(dropout, where="mlp"))
        self.layers = ModuleList(layers)

    def forward(self, x: Any) -> Any:
        x = check_array(x, "mlp", ndim_min=2)
        shape = x.shape
        if x.ndim > 2:
            x = x.reshape(shape[0], -1)
        if x.shape[1] != self.sizes[0]:
            raise ShapeError(
                f"mlp: expected input (B, {self.sizes[0]}) or (B, ...) with {self.sizes[0]} features per sample, "
                f"got shape {shape}"
            )
        self.save_for_backward(shape)
        return run_forward(self.layers, x)

    def backward(self, dy: Any) -> Any:
        shape = self.saved()
        dx = run_backward(self.layers, dy)
        return None if dx is None else dx.reshape(shape)

    def input_modules(self) -> list[Module]:
        return leading_modules(self.layers)

