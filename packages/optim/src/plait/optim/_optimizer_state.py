"""Reading an optimizer's state dict back: everything is parsed and checked before anything is assigned.

Only known keys (``state``/``param_groups``, the optimizer's options and the schedulers'
group keys, the buffers :meth:`Optimizer.state_names` lists), parameter indices that are
plain integers, counters that are integers in ``[0, 2**53]``, buffers of the parameter's
shape with a real, finite dtype. A damaged state dict raises :class:`SerializationError`
naming the field.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from plait.core import Param, get_array_module, to_numpy
from plait.core.errors import SerializationError

from ._state_checks import NON_NEGATIVE_STATE, SCHEDULER_GROUP_KEYS, check_index, check_real, check_scalar, short

__all__ = ["check_state", "import_value", "normalise_options", "parse_state_dict"]


def parse_state_dict(opt: Any, state_dict: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[Param, dict[str, Any]]]:
    """(new param_groups, new state) of ``opt`` from ``state_dict``, every field checked; ``opt`` is left as it was."""
    if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
        raise SerializationError(f"{opt.name}: a state dict needs 'state' and 'param_groups' entries")
    unknown = sorted(map(str, set(state_dict) - {"state", "param_groups"}))
    if unknown:
        raise SerializationError(f"{opt.name}: unknown state dict entries {unknown}; expected 'state' and 'param_groups'")
    saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
    if not isinstance(saved_groups, (list, tuple)) or not isinstance(saved_state, Mapping):
        raise SerializationError(f"{opt.name}: 'param_groups' must be a list and 'state' a mapping")
    if len(saved_groups) != len(opt.param_groups):
        raise SerializationError(
            f"{opt.name}: the state dict has {len(saved_groups)} parameter groups, this optimizer has {len(opt.param_groups)}"
        )
    by_index: dict[int, tuple[Param, int]] = {}
    new_groups = []
    for i, (saved, group) in enumerate(zip(saved_groups, opt.param_groups)):
        where = f"param_groups[{i}]"
        if not isinstance(saved, Mapping):
            raise SerializationError(f"{opt.name}: {where} must be a mapping, got {type(saved).__name__}")
        indices = saved.get("params", ())
        if not isinstance(indices, (list, tuple)):
            raise SerializationError(f"{opt.name}: {where}.params must be a list of indices, got {type(indices).__name__}")
        if len(indices) != len(group["params"]):
            raise SerializationError(
                f"{opt.name}: parameter group {i} of the state dict has {len(indices)} parameters, this optimizer's has {len(group['params'])}"
            )
        for j, (k, p) in enumerate(zip(indices, group["params"])):
            index = check_index(k, f"{where}.params[{j}]", opt.name)
            if index in by_index:
                raise SerializationError(f"{opt.name}: {where}.params[{j}]: index {index} is listed twice")
            by_index[index] = (p, i)
        known = set(opt.defaults) | set(group) | SCHEDULER_GROUP_KEYS
        for key in saved:
            if key not in known:
                raise SerializationError(f"{opt.name}: {where}: unknown option {key!r}")
            if key not in opt.defaults and key != "params":  # a scheduler's rate or momentum bound
                check_real(saved[key], f"{where}.{key}", opt.name)
        new_group = normalise_options({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        for key, value in opt.defaults.items():  # options newer than the state dict
            new_group.setdefault(key, value)
        opt._validate(new_group, f" (parameter group {i} of the state dict)")
        new_group["params"] = group["params"]
        new_groups.append(new_group)
    new_state: dict[Param, dict[str, Any]] = {}
    for key, values in saved_state.items():
        index = check_index(key, f"state key {key!r}", opt.name)
        if index not in by_index:
            raise SerializationError(f"{opt.name}: the state dict has state for parameter {key}, which no group lists")
        p, gi = by_index[index]
        where = f"state[{index}]"
        if not isinstance(values, Mapping):
            raise SerializationError(f"{opt.name}: {where} must be a mapping of buffers, got {type(values).__name__}")
        allowed = opt.state_names(p, new_groups[gi])
        for name in values:
            if name not in allowed:
                raise SerializationError(f"{opt.name}: {where}: unknown buffer {name!r} (expected {sorted(allowed)})")
        new_state[p] = {name: import_value(opt, p, name, value, f"{where}.{name}") for name, value in values.items()}
        check_state(opt, p, new_state[p], new_groups[gi])
    return new_groups, new_state


def check_state(opt: Any, p: Param, values: dict[str, Any], group: Mapping[str, Any]) -> None:
    """Every buffer a fresh state would hold is there, as an array or a number like the fresh one."""
    for name, fresh in opt._init_state(p, group).items():
        got = values.get(name)
        if hasattr(fresh, "shape") and not hasattr(got, "shape"):
            raise SerializationError(f"{opt.name}: state {name!r} of {p!r} must be an array, got {got!r}")
        if not hasattr(fresh, "shape") and (isinstance(got, bool) or not isinstance(got, numbers.Real)):
            raise SerializationError(f"{opt.name}: state {name!r} of {p!r} must be a number, got {got!r}")
        if isinstance(fresh, numbers.Integral) and not isinstance(got, numbers.Integral):
            if not float(got).is_integer():
                raise SerializationError(f"{opt.name}: state {name!r} of {p!r} must be an integer, got {got!r}")
            values[name] = int(got)  # a counter saved as a float (as torch does)


def import_value(opt: Any, p: Param, name: str, value: Any, where: str = "") -> Any:
    """A saved buffer or number as ``opt`` keeps it: checked, on ``p``'s device, in its dtype."""
    where = where or name
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, (str, bytes, Mapping)):
        raise SerializationError(f"{opt.name}: {where} must be a number or an array, got {short(value)}")
    if isinstance(value, numbers.Number):
        return check_scalar(value.item() if isinstance(value, np.generic) else value, where, opt.name)
    if isinstance(value, (list, tuple)) and not value:
        raise SerializationError(f"{opt.name}: {where} is an empty list, expected an array of shape {p.shape}")
    try:
        host = to_numpy(value) if hasattr(value, "shape") else np.asarray(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"{opt.name}: {where} is not an array: {exc}") from None
    if host.dtype.kind not in "biuf":
        raise SerializationError(f"{opt.name}: {where} has dtype {host.dtype}; expected real numbers (complex state is refused)")
    if host.ndim == 0:
        return check_scalar(host.item(), where, opt.name)
    if host.shape != p.shape:
        raise SerializationError(f"{opt.name}: state {name!r} of {p!r} has shape {host.shape}, expected {p.shape}")
    if host.dtype.kind == "b":
        raise SerializationError(f"{opt.name}: {where} has dtype bool; expected real numbers")
    if not np.isfinite(host).all():
        raise SerializationError(f"{opt.name}: {where} holds NaN or infinite values")
    if name in NON_NEGATIVE_STATE and (host < 0).any():
        raise SerializationError(f"{opt.name}: {where} holds negative values (it is a sum of squares)")
    xp = get_array_module(p.data)
    return xp.array(host if xp is np else value, dtype=p.data.dtype)


def normalise_options(group: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists: make ``betas`` a tuple again."""
    if isinstance(group.get("betas"), list):
        group["betas"] = tuple(group["betas"])
    return group
