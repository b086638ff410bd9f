"""Constructor arguments as JSON values: what ``Module.config()`` writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Turn constructor arguments into JSON values (modules become their configs)."""
    from .module import Module  # noqa: PLC0415 - module.py imports this file

    if isinstance(value, Module):
        return value.config()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"constructor argument {value!r} of type {type(value).__name__} is not JSON-able")
