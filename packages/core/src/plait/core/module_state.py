"""State dicts, devices and dtypes of a :class:`~plait.core.module.Module` (a mixin of it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .backend import _check_device, get_array_module, to_device
from .checks import dtype_of
from .errors import ConfigError, DeviceError, DTypeError, ShapeError

if TYPE_CHECKING:
    from .module import Module

__all__ = ["IncompatibleKeys", "ModuleState"]


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def _floating_dtype(value: Any) -> np.dtype | None:
    """``value`` as a floating NumPy dtype, or None when it names none (a device, say)."""
    if isinstance(value, str) and (value.lower() == "cpu" or value.lower().startswith("cuda")):
        return None
    try:
        dtype = np.dtype(value)
    except (TypeError, ValueError):
        return None
    return dtype if dtype.kind == "f" else None


class ModuleState:
    """``state_dict``/``load_state_dict``, ``to``/``astype``/``double``/``float``/``half``."""

    # -- state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Parameters and persistent buffers by dotted name (the arrays themselves, not copies)."""
        return {key: self._slot_array(module, name) for key, (module, name, _) in self._state_slots().items()}

    def _state_slots(self) -> dict[str, tuple[Module, str, str]]:
        """dotted name -> (owning module, attribute, "param"|"buffer")."""
        slots: dict[str, tuple[Module, str, str]] = {}
        seen: set[int] = set()
        for mod_name, module in self.named_modules():
            dot = f"{mod_name}." if mod_name else ""
            for name, p in module.__dict__["_params"].items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    slots[dot + name] = (module, name, "param")
            for name, b in module.__dict__["_buffers"].items():
                if b is not None and name not in module.__dict__["_non_persistent"]:
                    slots[dot + name] = (module, name, "buffer")
        return slots

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into this module's parameters and buffers (in place, same dtype/device).

        Shape mismatches are always an error; with ``strict`` missing and unexpected keys are
        too. The error lists every problem at once.

        Args:
            state_dict: dotted name -> array (NumPy or CuPy, any numeric dtype; cast to each
                slot's dtype and moved to its device).
            strict: default True; False ignores missing and unexpected keys (they are still
                returned).

        Returns:
            ``IncompatibleKeys(missing_keys, unexpected_keys)``.

        Raises:
            ShapeError: an array's shape differs from its slot's.
            ConfigError: ``strict`` and keys are missing or unexpected.
            DTypeError: an array's dtype cannot be stored (complex, text, objects).
        """
        slots = self._state_slots()
        missing = sorted(k for k in slots if k not in state_dict)
        unexpected = sorted(k for k in state_dict if k not in slots)
        mismatched = []
        for key, (module, name, _) in slots.items():
            if key in state_dict:
                target = self._slot_array(module, name)
                dtype = dtype_of(state_dict[key])
                if dtype.kind not in "biuf" and dtype.kind != target.dtype.kind:  # complex, objects, text, None
                    raise DTypeError(f"load_state_dict into {type(self).__name__}: {key} has dtype "
                                     f"{dtype}, cannot be stored in a {target.dtype} array")
                got = tuple(np.shape(state_dict[key]))
                if got != tuple(target.shape):
                    mismatched.append(f"{key}: expected {tuple(target.shape)}, got {got}")
        problems = []
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            error = ShapeError if mismatched else ConfigError
            raise error(f"load_state_dict into {type(self).__name__} failed: " + " | ".join(problems))
        for key, (module, name, _) in slots.items():
            if key in state_dict:
                target = self._slot_array(module, name)
                xp = get_array_module(target)
                value = state_dict[key]
                if xp is not np:
                    value = to_device(value, "cuda")
                target[...] = xp.asarray(value).astype(target.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    @staticmethod
    def _slot_array(module: Module, name: str) -> Any:
        d = module.__dict__
        return d["_params"][name].data if name in d["_params"] else d["_buffers"][name]

    # -- device and dtype -----------------------------------------------------------------
    def _map_arrays(self, fn: Any, buffers_too: bool = True) -> None:
        seen: set[int] = set()
        for module in self.modules():
            for p in module.__dict__["_params"].values():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                p.data = fn(p.data)
                if p.grad is not None:
                    p.grad = fn(p.grad)
            if buffers_too:
                bufs = module.__dict__["_buffers"]
                for name, b in bufs.items():
                    if b is not None:
                        bufs[name] = fn(b)
            module.__dict__["_saved_stack"].clear()

    def to(self, *args: Any, device: str | None = None, dtype: Any = None) -> Module:
        """Move to a device and/or cast to a floating dtype, like ``torch.nn.Module.to``; returns self.

        ``m.to("cuda")``, ``m.to(np.float64)``, ``m.to("cpu", "float32")``,
        ``m.to(device="cuda", dtype="float16")``. Parameters, gradients and buffers move;
        integer buffers keep their dtype. Moving clears the forward caches.

        Args:
            *args: a device string and/or a floating dtype, in either order.
            device: ``"cpu"`` or ``"cuda"`` (``"cuda:0"``); default None keeps the device.
            dtype: a floating dtype (float16, float32, float64); default None keeps it.

        Raises:
            DeviceError: an unknown device, a positional argument that is neither a device
                nor a floating dtype, or ``"cuda"`` without CuPy and a GPU.
        """
        for arg in args:
            as_dtype = _floating_dtype(arg)
            if as_dtype is not None and dtype is None:
                dtype = as_dtype
            elif isinstance(arg, str) and device is None and as_dtype is None:
                device = arg
            else:
                raise DeviceError(f"{type(self).__name__}.to: unknown device or dtype {arg!r}; expected a device "
                                  "('cpu' or 'cuda') and/or a floating dtype (float16, float32, float64)")
        if device is not None:
            try:
                _check_device(device)
            except DeviceError as exc:
                raise DeviceError(f"{type(self).__name__}.to: {exc}, and/or a floating dtype "
                                  "(float16, float32, float64)") from None
            self._map_arrays(lambda a: to_device(a, device))
        if dtype is not None:
            self.astype(dtype)
        return self

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64; returns self."""
        return self.astype(np.float64)

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32; returns self."""
        return self.astype(np.float32)

    def half(self) -> Module:
        """Cast floating parameters and buffers to float16; returns self."""
        return self.astype(np.float16)

    def astype(self, dtype: Any) -> Module:
        """Cast floating parameters and buffers to ``dtype`` (integer buffers stay); returns self.

        Args:
            dtype: the target dtype (anything ``numpy.dtype`` accepts, e.g. ``"float64"``).
        """

        def cast(a: Any) -> Any:
            if np.issubdtype(a.dtype, np.floating):
                return a.astype(dtype, copy=False)
            return a

        self._map_arrays(cast)
        return self
