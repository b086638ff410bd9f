"""The array backend: NumPy on the CPU, CuPy on CUDA, chosen per array.

Layer code is written once against ``xp = get_array_module(x)``. CuPy is imported
lazily, only when a CUDA array or device is asked for, so CPU users never pay for it.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

from .errors import DeviceError

__all__ = [
    "Device",
    "compiles_kernels",
    "cupy_available",
    "default_device",
    "device_of",
    "get_array_module",
    "get_cupy",
    "to_device",
    "to_numpy",
]

Device = str  # "cpu" or "cuda"

_cupy: ModuleType | None = None
_cupy_error: str | None = None


def get_cupy() -> ModuleType:
    """Import CuPy on first use; raise :class:`DeviceError` if it or a GPU is missing."""
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    if _cupy_error is None:
        try:
            import cupy  # noqa: PLC0415 - lazy on purpose

            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("no CUDA device found")
            _cupy = cupy
            return cupy
        except Exception as exc:  # ImportError, CUDARuntimeError, ...
            _cupy_error = f"{type(exc).__name__}: {exc}"
    raise DeviceError(
        "device 'cuda' was asked for but CuPy with a working GPU is unavailable "
        f"({_cupy_error}); install plait-core[cuda12] or plait-core[cuda13] on a machine with a GPU"
    )


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        get_cupy()
    except DeviceError:
        return False
    return True


def _is_cupy_array(x: Any) -> bool:
    return type(x).__module__.startswith("cupy")


def compiles_kernels(x: Any) -> bool:
    """True when ``x`` is a device array of a CuPy that compiles kernels (``ElementwiseKernel``).

    The fused CUDA kernels of plait-layers and plait-optim run only then; NumPy arrays and the
    test suite's CuPy stand-in (which has no kernel compiler) take the NumPy reference maths.
    """
    return _is_cupy_array(x) and callable(getattr(get_array_module(x), "ElementwiseKernel", None))


def get_array_module(*arrays: Any) -> ModuleType:
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for x in arrays:
        if type(x) is np.ndarray:  # the common case, without the module-name test
            continue
        if _is_cupy_array(x):
            return get_cupy()
    return np


def device_of(x: Any) -> Device:
    """``"cuda"`` for a CuPy array, ``"cpu"`` for anything else.

    Args:
        x: any object (arrays, Params' ``data``, numbers).
    """
    return "cuda" if _is_cupy_array(x) else "cpu"


def _check_device(device: str) -> Device:
    name = str(device).lower()
    if name.startswith("cuda"):
        return "cuda"
    if name == "cpu":
        return "cpu"
    raise DeviceError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")


def default_device() -> Device:
    """The device named by ``PLAIT_DEVICE`` (``cpu`` when unset)."""
    return _check_device(os.environ.get("PLAIT_DEVICE", "cpu") or "cpu")


def to_device(x: Any, device: str) -> Any:
    """Copy ``x`` to ``device`` (``"cpu"``/``"cuda"``); a no-op when it is already there.

    Args:
        x: an array (NumPy or CuPy) or anything ``asarray`` takes; same shape and dtype out.
        device: ``"cpu"``, or ``"cuda"`` (any ``"cuda..."`` name, e.g. ``"cuda:0"``, means
            the current GPU).

    Raises:
        DeviceError: an unknown device, or ``"cuda"`` without CuPy and a GPU.
    """
    target = _check_device(device)
    if target == "cuda":
        cp = get_cupy()
        return x if _is_cupy_array(x) else cp.asarray(x)
    return to_numpy(x)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array with the data of ``x`` (copied from the GPU when needed).

    Args:
        x: a NumPy or CuPy array, or anything ``numpy.asarray`` takes (same shape out; a
            NumPy array comes back as is, not copied).
    """
    if _is_cupy_array(x):
        return x.get()
    return np.asarray(x)
