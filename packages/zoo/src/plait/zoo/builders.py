"""Building blocks by registry name, so a model config can name any installed layer.

A *layer spec* is a registered layer name (``"relu"``) or a config dict
(``{"type": "leaky_relu", "negative_slope": 0.1}``). Sizes the architecture knows
(a norm's feature count, a conv's channels) are passed positionally by the architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import ConfigError, Module, registry

__all__ = ["LayerSpec", "build_dropout", "build_layer", "run_backward", "run_forward"]

LayerSpec = str | Mapping[str, Any]


def build_layer(spec: LayerSpec, *args: Any, where: str = "model", **kwargs: Any) -> Module:
    """Instantiate ``spec`` from ``registry.layers`` with ``args``/``kwargs`` added.

    A thin spelling of :meth:`plait.core.registry.Registry.build` for layers (the one
    build-by-name helper): ``build_layer("linear", 4, 2, bias=False, where="mlp")``. Errors
    start with ``where``.
    """
    return registry.build(spec, "layers", args=args, where=where, **kwargs)


def build_dropout(p: float, where: str = "model") -> Module:
    """``dropout`` with probability ``p``, or ``identity`` when ``p == 0`` (nothing to do)."""
    if not 0.0 <= float(p) < 1.0:
        raise ConfigError(f"{where}: dropout must lie in [0, 1), got {p}")
    return build_layer("dropout", p=float(p), where=where) if p > 0 else build_layer("identity", where=where)


def run_forward(layers: Any, x: Any) -> Any:
    """Apply single-input layers in order."""
    for layer in layers:
        x = layer(x)
    return x


def run_backward(layers: Any, dy: Any) -> Any:
    """Backward through single-input layers in reverse order."""
    for layer in reversed(list(layers)):
        dy = layer.backward(dy)
    return dy
