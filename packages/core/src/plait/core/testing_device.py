"""Running a component's tests on the device ``PLAIT_DEVICE`` names, with NumPy in and out.

    from plait.core.testing import assert_close, on_test_device
    layer = on_test_device(Conv2d(3, 4, 3))   # moved to PLAIT_DEVICE ("cpu" when unset)
    y = layer(x)                               # NumPy arguments go to the device, results come back
    dx = layer.backward(dy)
    assert_close(y, y_torch, np.float32, "forward")
    for name, g in layer.grads().items(): ...

A test written this way checks the CPU path in a plain run and the GPU path under
``PLAIT_DEVICE=cuda``, against the same reference and with the same tolerances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import default_device, device_of, to_device, to_numpy
from .module import Module

__all__ = ["TOLERANCES", "OnDevice", "assert_close", "move_to", "on_test_device", "to_host"]

TOLERANCES: dict[Any, tuple[float, float]] = {np.float32: (1e-4, 1e-5), np.float64: (1e-6, 1e-9)}
"""dtype -> (rtol, atol per unit of the reference's largest magnitude)."""


def _map_nested(value: Any, fn: Any) -> Any:
    """``fn`` applied to every leaf of ``value`` (through tuples, lists and dicts)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_map_nested(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_nested(v, fn) for k, v in value.items()}
    return fn(value)


def to_host(value: Any) -> Any:
    """``value`` with every device array replaced by a NumPy copy (through tuples, lists, dicts)."""
    return _map_nested(value, lambda a: to_numpy(a) if device_of(a) == "cuda" else a)


def move_to(value: Any, device: str) -> Any:
    """``value`` with every array (NumPy or device) moved to ``device`` (through tuples, lists, dicts)."""
    return _map_nested(value, lambda a: to_device(a, device) if isinstance(a, np.ndarray) or device_of(a) == "cuda" else a)


def assert_close(got: Any, want: Any, dtype: Any = None, what: str = "", *, rtol: float | None = None,
                 atol: float | None = None) -> None:
    """``np.testing.assert_allclose`` for results of either device.

    The absolute tolerance is ``atol`` (default from :data:`TOLERANCES` by ``dtype``, or
    by the reference's dtype) times ``max(1, max |want|)``, so large outputs are compared
    relative to their scale while values near zero are not held to a pure rtol.
    """
    got, want = np.asarray(to_numpy(got)), np.asarray(to_numpy(want))
    key = np.dtype(dtype if dtype is not None else want.dtype).type
    default_rtol, default_atol = TOLERANCES.get(key, TOLERANCES[np.float32])
    scale = max(1.0, float(np.abs(want).max(initial=0.0))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=default_rtol if rtol is None else rtol,
                               atol=(default_atol if atol is None else atol) * scale, err_msg=what)


class OnDevice:
    """A module moved to ``device``; calls take host or device arrays and return NumPy.

    Every other attribute is the module's own (``named_parameters``, ``train``...).
    """

    def __init__(self, module: Module, device: str | None = None) -> None:
        self.device = device or default_device()
        self.module = module.to(self.device)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return to_host(self.module(*move_to(args, self.device), **move_to(kwargs, self.device)))

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        return to_host(self.module.backward(*move_to(args, self.device), **move_to(kwargs, self.device)))

    def grads(self) -> dict[str, np.ndarray]:
        """Every parameter gradient that exists, as NumPy, by parameter name."""
        return {n: to_numpy(p.grad) for n, p in self.module.named_parameters() if p.grad is not None}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def __repr__(self) -> str:
        return f"OnDevice({self.module!r}, device={self.device!r})"


def on_test_device(module: Module) -> OnDevice:
    """``module`` on the device the tests run on (``PLAIT_DEVICE``; the CPU when unset)."""
    return OnDevice(module)
