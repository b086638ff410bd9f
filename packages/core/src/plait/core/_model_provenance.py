"""Which installed distributions a saved model needs: recorded at save time, checked at load time.

A model folder's config.json lists, under ``requires``, the distribution (and version)
that registered its architecture and every registered component its arguments name
(found through the registry's origin of each entry). Loading without one of them is a
:class:`SerializationError` saying ``needs my-plait 0.0.1 (pip install my-plait)``;
another installed version is a warning.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ConfigError, PlaitError, SerializationError
from .module import Module
from .registry import registry

__all__ = ["check_requirements", "check_requires_field", "describe_model", "origin_of", "versions_of"]

_DIST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
_MAX_REQUIRES = 256


# -- describing a model -------------------------------------------------------------------------
def origin_of(kind: str, name: str) -> tuple[str, str] | None:
    """``(distribution, version)`` that registered ``kind:name``, if it is an installed distribution."""
    try:
        origin = registry.table(kind).origin(name)
        return origin, metadata.version(origin)
    except (PlaitError, metadata.PackageNotFoundError, ValueError, TypeError):
        return None  # registered in-process (a script, a test): nothing to install


def _named_components(architecture: str, kind: str, args: Any) -> list[tuple[str, str]]:
    """Every ``(kind, name)`` of a registered component that rebuilding the model looks up."""
    found = [(kind, architecture)]
    stack = [args]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            if isinstance(value.get("type"), str):
                found.append((str(value.get("kind", "layers")), value["type"]))
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, str):
            found.extend((k, value) for k in ("layers", "initializers", "losses") if value in registry.table(k))
    return found


def _requirements(components: list[tuple[str, str]]) -> list[dict[str, Any]]:
    by_dist: dict[tuple[str, str], set[str]] = {}
    for kind, name in components:
        origin = origin_of(kind, name) if kind in registry.tables() else None
        if origin is not None:
            by_dist.setdefault(origin, set()).add(f"{kind}:{name}")
    return [{"distribution": d, "version": v, "provides": sorted(p)} for (d, v), p in sorted(by_dist.items())]


def describe_model(model: Module, *, architecture: str | None = None,
                   model_args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What config.json records to rebuild ``model``: architecture, arguments and their providers.

    ``architecture``/``model_args`` give the name and JSON-able arguments explicitly (e.g. a
    model built by a registered function); otherwise ``model`` must be an instance of a class
    registered in ``registry.models`` (or, as ``kind: "layers"``, in ``registry.layers``).

    Args:
        model: the Module to describe.
        architecture: default None (looked up in the registry); the registered name.
        model_args: default None; the JSON-able constructor arguments (used with
            ``architecture``; otherwise ``model.config()`` supplies them).

    Returns:
        ``{"architecture", "model_args", "requires"}`` (plus ``"kind": "layers"`` for a layer).

    Raises:
        ConfigError: ``model``'s class is not registered and no ``architecture`` is given.
    """
    kind = "models"
    if architecture is None:
        found = registry.name_of(type(model))
        if found is None or found[0] not in ("models", "layers"):
            raise ConfigError(
                f"{type(model).__name__} is not a registered model architecture, so it cannot be saved by name; "
                "register it with plait.zoo.register_model (or a plugin's register_models hook)"
            )
        cfg = model.config()
        kind, architecture = found[0], cfg.pop("type")
        model_args = {k: v for k, v in cfg.items() if k != "kind"}
    args = dict(model_args or {})
    desc: dict[str, Any] = {"architecture": architecture, "model_args": args}
    if kind != "models":
        desc["kind"] = kind
    desc["requires"] = _requirements(_named_components(architecture, kind, args))
    return desc


def versions_of(requires: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for dist in ("plait-core", *[r["distribution"] for r in requires]):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def check_requires_field(requires: Any, path: Path) -> None:
    _check_field(isinstance(requires, list) and len(requires) <= _MAX_REQUIRES, path,
           f"'requires' must be a list of at most {_MAX_REQUIRES} distributions")
    for req in requires:
        _check_field(isinstance(req, dict) and isinstance(req.get("distribution"), str)
               and bool(_DIST_NAME.match(req["distribution"])) and isinstance(req.get("version"), str)
               and 0 < len(req["version"]) <= 64 and isinstance(req.get("provides", []), list),
               path, f"'requires' entry {json.dumps(req)[:120]} must name a distribution and its version")


def check_requirements(config: Mapping[str, Any], path: str | os.PathLike[str], entries: list[Any] | None = None) -> None:
    """Raise naming a missing distribution the folder needs; warn about another installed version."""
    missing = []
    for req in config.get("requires", []) if entries is None else entries:
        dist, wanted = req["distribution"], req["version"]
        try:
            installed = metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append(f"{dist} {wanted} (pip install {dist})")
            continue
        if installed != wanted:
            warnings.warn(f"{path}: saved with {dist} {wanted}; {installed} is installed", stacklevel=3)
    if missing:
        raise SerializationError(f"{path}: needs {', '.join(missing)}, which is not installed")




def _check_field(cond: bool, path: Path, message: str) -> None:
    if not cond:
        raise SerializationError(f"{path}: {message}")
