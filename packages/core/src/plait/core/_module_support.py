"""Helpers of :mod:`.module`: recording constructor arguments and the warnings Module gives."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

__all__ = ["bind_init_args", "warn_plain_container", "warn_unconsumed"]

_NO_OPTIONS: dict[str, Any] = {}
_WARNED: set[type] = set()
_WARNED_CONTAINERS: set[tuple[type, str]] = set()
_SIGNATURES: dict[type, inspect.Signature | None] = {}


def warn_plain_container(module: Any, name: str, value: Any) -> None:
    key = (type(module), name)
    if key in _WARNED_CONTAINERS:
        return
    _WARNED_CONTAINERS.add(key)
    holder = "ModuleDict" if isinstance(value, dict) else "ModuleList"
    warnings.warn(
        f"{type(module).__name__}.{name} is a plain {type(value).__name__} holding modules: their parameters are "
        f"not registered (no parameters(), state_dict(), to() or train()); use plait.core.{holder} instead",
        UserWarning, stacklevel=3)


def warn_unconsumed(module: Any) -> None:
    cls = type(module)
    if cls in _WARNED:
        return
    _WARNED.add(cls)
    warnings.warn(
        f"{cls.__name__}: more than {module.max_saved} forward caches are waiting for a backward, so the "
        "oldest are being dropped. Run inference inside plait.core.no_grad() (or put the model in eval() "
        "mode); a backward that still needs a dropped cache fails with a clear error.",
        ResourceWarning, stacklevel=4)


def bind_init_args(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The arguments of ``cls(*args, **kwargs)`` by name, defaults filled in (None if they do not bind)."""
    sig = _SIGNATURES.get(cls)
    if sig is None and cls not in _SIGNATURES:
        try:
            sig = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            sig = None
        _SIGNATURES[cls] = sig
    if sig is None:
        return None
    try:
        bound = sig.bind(None, *args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop(next(iter(params)))  # self
    return params
