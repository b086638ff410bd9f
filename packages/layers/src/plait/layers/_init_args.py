"""The Keras habit of an initializer chosen at construction: ``Linear(4, 3, init="xavier_uniform")``.

Layers with weights take ``init=`` (and ``bias_init=`` where they have a bias): ``None``
keeps torch's default rule; otherwise a registered initializer name
(``registry.initializers``), a ``{"type": name, **args}`` dict, or an initializer object.
The chosen rule is recorded in the layer's ``config()`` (the default is not listed; a name stays a name; a dict or an
object is recorded as ``{"type": name, "kind": "initializers", **args}``, which
``registry.build`` turns back into the same initializer), so a rebuilt layer draws with the
same rule. The weight is drawn with torch's fan rule (:func:`plait.core.initializers.compute_fans`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import ConfigError, Module, RegistryError, get_rng, registry
from plait.core.initializers import compute_fans

__all__ = ["InitSpec", "chosen_initializer", "draw"]

InitSpec = str | Mapping[str, Any] | Any | None


def chosen_initializer(module: Module, arg: str, spec: InitSpec, where: str) -> Any | None:
    """The initializer ``spec`` names (None: the layer's default); records its JSON form for ``config()``."""
    if spec is None:  # the default is left out of config(), which then reads as before the option existed
        module.__dict__["_init_args"].pop(arg, None)
        return None
    try:
        if isinstance(spec, str):
            return registry.initializers.get(spec)()
        if isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
            record = {**spec, "kind": "initializers"}
            init = registry.build(record, kind="initializers")
        elif callable(spec) and callable(getattr(spec, "config", None)):
            init, record = spec, spec.config()
        else:
            raise ConfigError(f"{where}: {arg} must be a registered initializer name, a {{'type': name, ...}} dict "
                              f"or an initializer, got {spec!r}")
    except (RegistryError, ConfigError) as exc:  # an unknown name (with close matches), bad arguments
        if str(exc).startswith(f"{where}: "):
            raise
        raise ConfigError(f"{where}: {arg}: {exc}") from None
    module.__dict__["_init_args"][arg] = record
    return init


def draw(init: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """A fresh array of ``shape`` from ``init``, with torch's fans for that shape and Plait's generator."""
    fan_in, fan_out = compute_fans(shape)
    return init(shape, fan_in, fan_out, get_rng(), dtype)
