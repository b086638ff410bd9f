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
    """Instantiate ``spec`` from ``registry.layers`` with ``args``/``kwargs`` added."""
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
        name = spec["type"]
        options = {k: v for k, v in spec.items() if k != "type"}
    else:
        raise ConfigError(f"{where}: a layer must be a registered name or a {{'type': name, ...}} dict, got {spec!r}")
    cls = registry.layers.get(name)
    try:
        return cls(*args, **{**options, **kwargs})
    except TypeError as exc:
        raise ConfigError(f"{where}: cannot build layer {name!r} with {args!r} {options | kwargs!r}: {exc}") from exc


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
