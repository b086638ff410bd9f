"""Split an optimizer state dict into JSON-able metadata and named arrays, and back.

A checkpoint writes the arrays with ``save_safetensors`` and the rest as JSON::

    meta, arrays = split_state_dict(optimizer.state_dict())
    ...
    optimizer.load_state_dict(merge_state_dict(meta, arrays))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.core import to_numpy
from plait.core.errors import SerializationError

__all__ = ["merge_state_dict", "split_state_dict"]

_ARRAY = "__array__"


def split_state_dict(state_dict: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, arrays)``: arrays named ``state.<index>.<name>`` (NumPy), replaced in ``meta`` by references."""
    arrays: dict[str, Any] = {}
    state: dict[str, Any] = {}
    for index, values in state_dict["state"].items():
        entry = {}
        for name, value in values.items():
            if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
                key = f"state.{index}.{name}"
                arrays[key] = to_numpy(value)
                entry[name] = {_ARRAY: key}
            else:
                entry[name] = value
        state[str(index)] = entry
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state_dict["param_groups"]]
    return {"state": state, "param_groups": groups}, arrays


def merge_state_dict(meta: Mapping[str, Any], arrays: Mapping[str, Any]) -> dict[str, Any]:
    """Undo :func:`split_state_dict`."""
    state: dict[int, Any] = {}
    for index, values in meta["state"].items():
        entry = {}
        for name, value in values.items():
            if isinstance(value, Mapping) and _ARRAY in value:
                if value[_ARRAY] not in arrays:
                    raise SerializationError(f"optimizer state array {value[_ARRAY]!r} is missing")
                entry[name] = arrays[value[_ARRAY]]
            else:
                entry[name] = value
        state[int(index)] = entry
    return {"state": state, "param_groups": [dict(g) for g in meta["param_groups"]]}
