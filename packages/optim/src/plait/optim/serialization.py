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
    """``(meta, arrays)``: arrays named ``state.<index>.<name>`` (NumPy), replaced in ``meta`` by references.

    Args:
        state_dict: an optimizer's :meth:`~plait.optim.Optimizer.state_dict`; arrays with
            at least one dimension move to ``arrays`` (copied to the host), numbers and 0-d
            values stay in ``meta``.

    Returns:
        ``meta`` (JSON-able: ``{"state": {"<index>": {...}}, "param_groups": [...]}``) and
        ``arrays`` (``{name: numpy array}``, ready for ``save_safetensors``).
    """
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


def merge_state_dict(meta: Mapping[str, Any], arrays: Mapping[str, Any], *, source: Any = "optimizer state") -> dict[str, Any]:
    """Undo :func:`split_state_dict`; ``meta`` may come from a file, so it is checked first.

    ``meta`` must be ``{"state": {index: {name: value | {"__array__": key}}}, "param_groups": [...]}``
    with nothing else; every array reference must name an entry of ``arrays``. A problem
    raises :class:`SerializationError` naming ``source`` and the field. (The values
    themselves are checked by ``Optimizer.load_state_dict``.)

    Args:
        meta: the metadata :func:`split_state_dict` gave (read back from JSON).
        arrays: ``{name: array}`` as read from the safetensors file.
        source: default ``"optimizer state"``; names the origin (a file) in errors.

    Raises:
        SerializationError: ``meta`` has other entries, a malformed field or index, a
            parameter twice, or references an array missing from ``arrays``.
    """
    if not isinstance(meta, Mapping) or set(meta) != {"state", "param_groups"}:
        keys = sorted(map(str, meta)) if isinstance(meta, Mapping) else type(meta).__name__
        raise SerializationError(f"{source}: expected exactly the entries 'param_groups' and 'state', got {keys}")
    if not isinstance(meta["state"], Mapping):
        raise SerializationError(f"{source}: field 'state' must be a mapping, got {type(meta['state']).__name__}")
    if not isinstance(meta["param_groups"], (list, tuple)) or not all(isinstance(g, Mapping) for g in meta["param_groups"]):
        raise SerializationError(f"{source}: field 'param_groups' must be a list of mappings")
    state: dict[int, Any] = {}
    for index, values in meta["state"].items():
        key = _index(index, source)
        if key in state:
            raise SerializationError(f"{source}: field 'state.{index}': parameter {key} appears twice")
        if not isinstance(values, Mapping):
            raise SerializationError(f"{source}: field 'state.{index}' must be a mapping, got {type(values).__name__}")
        entry = {}
        for name, value in values.items():
            where = f"state.{index}.{name}"
            if isinstance(value, Mapping) and _ARRAY in value:
                ref = value[_ARRAY]
                if set(value) != {_ARRAY} or not isinstance(ref, str):
                    raise SerializationError(f"{source}: field {where!r}: an array reference must be {{{_ARRAY!r}: name}}")
                if ref not in arrays:
                    raise SerializationError(f"{source}: field {where!r}: optimizer state array {ref[:100]!r} is missing")
                entry[name] = arrays[ref]
            else:
                entry[name] = value
        state[key] = entry
    return {"state": state, "param_groups": [dict(g) for g in meta["param_groups"]]}


def _index(key: Any, source: Any) -> int:
    """A parameter index: an int, or its decimal spelling (JSON object keys are strings)."""
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 12:
        return int(key)
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < 10**12:
        return key
    raise SerializationError(f"{source}: field 'state': {str(key)[:40]!r} is not a parameter index")
