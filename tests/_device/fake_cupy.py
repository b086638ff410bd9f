"""A strict NumPy stand-in for CuPy, so Plait's device code paths run on machines without a GPU.

It keeps the CuPy rules that CPU-only code breaks without noticing:

* a device array never turns into a NumPy array implicitly: ``np.asarray(x)``
  raises ``TypeError`` exactly like CuPy, and only ``x.get()``/``cupy.asnumpy`` copy;
* device functions and ufuncs reject NumPy arrays (``cupy.where(np_mask, ...)`` raises);
* reductions and scalar indexing return 0-d device arrays, not NumPy scalars;
* only names and keyword arguments that exist in CuPy are offered
  (``cupy_api.json``, recorded from a real CuPy install; ``errstate`` is not there);
* every device-to-host synchronisation (``float(x)``, ``bool(x)``, ``x.item()``,
  ``x.get()``, ...) is counted in :data:`host_syncs`, so tests can assert a training
  step stays on the device.

The data lives in NumPy arrays, so results are bitwise those of the CPU path.
"""

from __future__ import annotations

import json
import sys
import types
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

API = json.loads((Path(__file__).with_name("cupy_api.json")).read_text())
CREATION = frozenset({"asarray", "array", "ascontiguousarray", "asanyarray", "asfortranarray"})
UFUNC_KWARGS = frozenset({"out", "dtype", "casting"})
# results whose size depends on the data: CuPy must read it back to allocate them
DATA_DEPENDENT_SHAPE = frozenset({"nonzero", "flatnonzero", "argwhere", "unique", "extract", "compress"})

host_syncs: Counter[str] = Counter()
"""How many times each kind of device->host synchronisation happened."""


def _sync(kind: str) -> None:
    host_syncs[kind] += 1


def _unwrap(obj: Any, where: str, *, strict: bool = True) -> Any:
    """Raw NumPy data for a device array (recursing into lists/tuples/dicts)."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, np.ndarray):
        if strict:
            raise TypeError(f"Unsupported type {type(obj)}: a NumPy array was passed to {where} "
                            "(fake CuPy; move it to the device with cupy.asarray first)")
        return obj
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_unwrap(o, where, strict=strict) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, where, strict=strict) for k, v in obj.items()}
    return obj


def _wrap(obj: Any) -> Any:
    """Device arrays for NumPy results; NumPy scalars become 0-d device arrays as in CuPy."""
    if isinstance(obj, np.ndarray):
        return ndarray(obj)
    if isinstance(obj, np.generic):
        return ndarray(np.asarray(obj))
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_wrap(o) for o in obj)
    return obj


def _check_kwargs(where: str, kwargs: dict[str, Any], allowed: Any) -> None:
    if allowed is None:
        return
    unknown = set(kwargs) - set(allowed)
    if unknown:
        raise TypeError(f"{where}() got keyword argument(s) {sorted(unknown)} that CuPy does not accept")


def _is_mask(key: Any) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return any(getattr(k, "dtype", None) == np.bool_ and getattr(k, "ndim", 0) > 0 for k in keys)


def _device_function(func: Any, where: str, *, strict: bool = True, allowed_kwargs: Any = None) -> Any:
    syncs = where.rsplit(".", 1)[-1] in DATA_DEPENDENT_SHAPE

    def call(*args: Any, **kwargs: Any) -> Any:
        _check_kwargs(where, kwargs, allowed_kwargs)
        if syncs:
            _sync("data-dependent shape")
        with np.errstate(all="ignore"):  # CuPy never warns about floating-point errors
            return _wrap(func(*_unwrap(args, where, strict=strict), **_unwrap(kwargs, where, strict=strict)))

    call.__name__ = call.__qualname__ = where
    return call


class _Ufunc:
    """A NumPy ufunc with CuPy's calling rules (``out``/``dtype``/``casting`` only)."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        self.nin, self.nout, self.nargs = ufunc.nin, ufunc.nout, ufunc.nargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _check_kwargs(f"cupy.{self.__name__}", kwargs, UFUNC_KWARGS)
        return _apply_ufunc(self._ufunc, "__call__", args, kwargs)

    def __getattr__(self, method: str) -> Any:
        if method not in ("reduce", "accumulate", "outer", "at", "reduceat"):
            raise AttributeError(method)
        return lambda *args, **kwargs: _apply_ufunc(self._ufunc, method, args, kwargs)


def _apply_ufunc(ufunc: np.ufunc, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
    where = f"cupy.{ufunc.__name__}.{method}" if method != "__call__" else f"cupy.{ufunc.__name__}"
    out = kwargs.get("out")
    with np.errstate(all="ignore"):  # CuPy never warns about floating-point errors
        raw = getattr(ufunc, method)(*_unwrap(args, where), **_unwrap(kwargs, where))
    if out is not None:
        outs = out if isinstance(out, tuple) else (out,)
        return outs[0] if len(outs) == 1 else outs
    return _wrap(raw)


class ndarray(NDArrayOperatorsMixin):  # noqa: N801 - CuPy's name
    """A device array: NumPy data behind CuPy's interface and rules."""

    __slots__ = ("_a",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, data: np.ndarray) -> None:
        self._a = data

    # -- attributes that stay on the host in CuPy too --------------------------------
    shape = property(lambda self: self._a.shape)
    # CuPy's arrays describe their device memory this way; code tells device arrays apart by it
    __cuda_array_interface__ = property(lambda self: {"shape": self._a.shape, "typestr": self._a.dtype.str,
                                                      "data": (self._a.ctypes.data, False), "version": 3,
                                                      "strides": None if self._a.flags.c_contiguous else self._a.strides})
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: _wrap(self._a.real))
    imag = property(lambda self: _wrap(self._a.imag))
    device = property(lambda self: "fake-cuda:0")

    # -- CuPy's refusal to convert implicitly ------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly. (fake CuPy)")

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "__call__":
            _check_kwargs(f"cupy.{ufunc.__name__}", kwargs, UFUNC_KWARGS)
        return _apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
        # CuPy answers numpy.<f>(device_array) with cupy.<f>; names CuPy lacks fail.
        name = func.__name__
        if name not in API["cupy"]:
            raise TypeError(f"numpy.{name} was called on a device array, and CuPy has no {name} (fake CuPy)")
        return _device_function(func, f"numpy.{name}", allowed_kwargs=API["cupy"][name])(*args, **kwargs)

    # -- synchronising conversions (counted) -------------------------------------------
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> np.ndarray:
        _sync("get")
        return self._a.copy()

    def item(self, *args: Any) -> Any:
        _sync("item")
        return self._a.item(*args)

    def tolist(self) -> Any:
        _sync("tolist")
        return self._a.tolist()

    def __bool__(self) -> bool:
        _sync("bool")
        return bool(self._a)

    def __float__(self) -> float:
        _sync("float")
        return float(self._a)

    def __int__(self) -> int:
        _sync("int")
        return int(self._a)

    def __complex__(self) -> complex:
        _sync("complex")
        return complex(self._a)

    def __index__(self) -> int:
        _sync("index")
        return self._a.__index__()

    # -- indexing and the rest of the ndarray interface --------------------------------
    def __getitem__(self, key: Any) -> Any:
        if _is_mask(key):
            _sync("boolean mask")
        return _wrap(self._a[_unwrap(key, "ndarray.__getitem__", strict=False)])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_unwrap(key, "ndarray.__setitem__", strict=False)] = _unwrap(value, "ndarray.__setitem__", strict=False)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Iterator[Any]:
        return (_wrap(row) for row in self._a)

    def __copy__(self) -> ndarray:
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo: dict) -> ndarray:
        return ndarray(self._a.copy())

    def __reduce__(self) -> Any:
        raise TypeError("fake CuPy arrays are not picklable")

    def __repr__(self) -> str:
        return f"array({np.array2string(self._a)}, device='fake-cuda:0')"

    def __getattr__(self, name: str) -> Any:
        if name not in API["ndarray"]:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} (fake CuPy)")
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)
        # methods take the keywords of the cupy function of the same name (ndarray.sum ~ cupy.sum)
        return _device_function(attr, f"ndarray.{name}", allowed_kwargs=API["cupy"].get(name))


ndarray.__module__ = "cupy"


class _Generator:
    """``cupy.random.Generator``: NumPy's generator, results on the device."""

    def __init__(self, gen: np.random.Generator) -> None:
        self._gen = gen

    def __getattr__(self, name: str) -> Any:
        return _device_function(getattr(self._gen, name), f"Generator.{name}")


class _Namespace(types.ModuleType):
    """A CuPy module: the NumPy module of the same name, restricted to CuPy's API."""

    def __init__(self, name: str, source: types.ModuleType, api_key: str) -> None:
        super().__init__(name)
        self._source, self._api = source, API[api_key]

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr not in self._api:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r} (fake CuPy)")
        value = getattr(self._source, attr)
        if isinstance(value, types.ModuleType):
            raise AttributeError(f"{self.__name__}.{attr}: this CuPy submodule is not part of the stand-in")
        if isinstance(value, np.ufunc):
            value = _Ufunc(value)
        elif callable(value) and not isinstance(value, type):
            value = _device_function(value, f"{self.__name__}.{attr}", strict=attr not in CREATION,
                                     allowed_kwargs=self._api[attr])
        setattr(self, attr, value)
        return value


def _build() -> dict[str, types.ModuleType]:
    cupy = _Namespace("cupy", np, "cupy")
    cupy.ndarray = ndarray
    cupy.__version__ = f"{API['version']}+fake"
    cupy.asnumpy = lambda a, stream=None, order="C", out=None, blocking=True: (
        a.get() if isinstance(a, ndarray) else np.asarray(a))
    cupy.get_array_module = lambda *args: cupy if any(isinstance(a, ndarray) for a in args) else np

    random = _Namespace("cupy.random", np.random, "cupy.random")
    random.default_rng = lambda seed=None: _Generator(np.random.default_rng(seed))
    cupy.random = random
    cupy.linalg = _Namespace("cupy.linalg", np.linalg, "cupy.linalg")
    cupy.fft = _Namespace("cupy.fft", np.fft, "cupy.fft")
    cupy.lib = types.ModuleType("cupy.lib")
    cupy.lib.stride_tricks = _Namespace("cupy.lib.stride_tricks", np.lib.stride_tricks, "cupy.lib.stride_tricks")

    class _Device:
        def __init__(self, device: int = 0) -> None:
            self.id = device

        def synchronize(self) -> None:
            _sync("synchronize")

        def __enter__(self) -> _Device:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

    cuda = types.ModuleType("cupy.cuda")
    cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    cuda.Device = _Device
    cuda.get_current_stream = lambda: types.SimpleNamespace(synchronize=lambda: _sync("synchronize"))
    cupy.cuda = cuda

    cupyx = types.ModuleType("cupyx")

    def scatter_add(a: ndarray, slices: Any, value: Any) -> None:
        # a rule from a real GPU: CuPy 14 warns that cupyx.scatter_add is deprecated
        raise DeprecationWarning("cupyx.scatter_add is deprecated (CuPy 14): use cupy.add.at (fake CuPy)")

    cupyx.scatter_add = scatter_add
    return {"cupy": cupy, "cupy.random": random, "cupy.linalg": cupy.linalg, "cupy.fft": cupy.fft,
            "cupy.lib": cupy.lib, "cupy.lib.stride_tricks": cupy.lib.stride_tricks, "cupy.cuda": cuda, "cupyx": cupyx}


@contextmanager
def installed() -> Iterator[types.ModuleType]:
    """Make ``import cupy`` give the stand-in (and Plait's backend use it) inside the block."""
    from plait.core import backend  # noqa: PLC0415

    modules = _build()
    saved_modules = {name: sys.modules.get(name) for name in modules}
    saved_backend = backend._cupy, backend._cupy_error
    sys.modules.update(modules)
    backend._cupy, backend._cupy_error = modules["cupy"], None
    host_syncs.clear()
    try:
        yield modules["cupy"]
    finally:
        backend._cupy, backend._cupy_error = saved_backend
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
