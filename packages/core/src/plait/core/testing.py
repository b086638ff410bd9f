"""Gradient checking for layer and loss authors (first-party and plugins alike).

    from plait.core.testing import gradcheck, loss_gradcheck
    gradcheck(layer.astype(np.float64), x64)          # raises AssertionError on a mismatch

The analytic gradients of ``backward`` are compared with central finite differences
``(f(x + eps) - f(x - eps)) / (2 eps)`` of the scalar ``f = sum(forward(x) * R)`` for a
fixed random ``R``: every input array and every parameter, at up to ``max_checks``
sampled entries each. Run it in float64.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .backend import default_device, to_device, to_numpy
from .grad_mode import enable_grad, no_grad
from .module import Module
from .testing_device import TOLERANCES, OnDevice, assert_close, move_to, on_test_device, to_host

__all__ = [
    "TOLERANCES",
    "OnDevice",
    "assert_close",
    "gradcheck",
    "isolated_plugins",
    "loss_gradcheck",
    "numerical_gradient",
    "on_test_device",
    "to_host",
]


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flatten(o)]
    return [] if out is None else [out]


def _unflatten_like(structure: Any, flat: list[Any]) -> Any:
    if isinstance(structure, (tuple, list)):
        return type(structure)(_unflatten_like(s, flat) for s in structure)
    return None if structure is None else flat.pop(0)


def numerical_gradient(f: Callable[[], float], array: np.ndarray, indices: Sequence[tuple[int, ...]], eps: float) -> np.ndarray:
    """Central differences of ``f`` w.r.t. ``array`` (perturbed in place) at ``indices``."""
    out = np.empty(len(indices))
    for k, idx in enumerate(indices):
        old = array[idx].copy()
        array[idx] = old + eps
        plus = f()
        array[idx] = old - eps
        minus = f()
        array[idx] = old
        out[k] = (plus - minus) / (2 * eps)
    return out


def _sample(shape: tuple[int, ...], n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    size = int(np.prod(shape))
    picks = np.arange(size) if size <= n else rng.choice(size, n, replace=False)
    return [tuple(int(i) for i in np.unravel_index(p, shape)) for p in picks]


def _compare(name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> None:
    if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
        worst = int(np.argmax(np.abs(analytic - numeric)))
        raise AssertionError(
            f"gradient of {name} differs from finite differences: max abs error "
            f"{np.max(np.abs(analytic - numeric)):.3e} (analytic {analytic[worst]:.6e}, numeric {numeric[worst]:.6e})"
        )


def gradcheck(
    module: Module,
    *inputs: Any,
    forward_kwargs: dict[str, Any] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    max_checks: int = 40,
    seed: int = 0,
    check_inputs: Sequence[bool] | None = None,
    device: str | None = None,
) -> None:
    """Check ``module.backward`` against finite differences, for inputs and parameters.

    ``inputs`` are float64 arrays (integer arrays, e.g. token ids, are passed through
    unchecked); outputs may be an array or a nested tuple of arrays (``None`` allowed),
    and ``backward`` receives the same structure of output gradients. The check runs on
    ``device`` (default: ``PLAIT_DEVICE``, else the CPU): the module is moved there.
    """
    device = device or default_device()
    module.to(device)
    kwargs = move_to(forward_kwargs or {}, device)
    rng = np.random.default_rng(seed)
    inputs = tuple(to_device(np.array(x, copy=True), device) if isinstance(x, np.ndarray) else x for x in inputs)

    with no_grad():
        probe = module(*inputs, **kwargs)
    weights = [rng.standard_normal(np.shape(o)) for o in _flatten(probe)]

    def objective() -> float:
        with no_grad():
            outs = _flatten(module(*inputs, **kwargs))
        return float(sum(np.sum(to_numpy(o) * w) for o, w in zip(outs, weights)))

    module.zero_grad(set_to_none=True)
    with enable_grad():  # a module in eval() mode is checked too
        out = module(*inputs, **kwargs)
    dys = _unflatten_like(out, [to_device(w.astype(o.dtype), device) for o, w in zip(_flatten(out), weights)])
    grads = module.backward(dys) if not isinstance(out, tuple) else module.backward(*dys)
    grads = grads if isinstance(grads, tuple) else (grads,)

    for i, x in enumerate(inputs):
        if not hasattr(x, "dtype") or x.dtype.kind != "f":
            continue
        if check_inputs is not None and not check_inputs[i]:
            continue
        if i >= len(grads) or grads[i] is None:
            raise AssertionError(f"{type(module).__name__}.backward returned no gradient for input {i}")
        idx = _sample(x.shape, max_checks, rng)
        grad = to_numpy(grads[i])
        analytic = np.array([grad[j] for j in idx])
        _compare(f"{type(module).__name__} input {i}", analytic, numerical_gradient(objective, x, idx, eps), atol, rtol)

    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        idx = _sample(p.shape, max_checks, rng)
        g = np.zeros(p.shape) if p.grad is None else to_numpy(p.grad)
        analytic = np.array([g[j] for j in idx])
        _compare(f"{type(module).__name__} parameter {name}", analytic, numerical_gradient(objective, p.data, idx, eps), atol, rtol)


def loss_gradcheck(loss: Any, pred: np.ndarray, target: Any, *, eps: float = 1e-6, atol: float = 1e-6,
                   rtol: float = 1e-5, max_checks: int = 60, seed: int = 0) -> None:
    """Check ``loss.backward()`` (d loss / d pred) against finite differences in float64,
    on ``PLAIT_DEVICE`` (else the CPU)."""
    device = default_device()
    rng = np.random.default_rng(seed)
    loss.to(device)
    pred = to_device(np.array(pred, dtype=np.float64, copy=True), device)
    target = move_to(target, device)
    loss.forward(pred, target)
    analytic_full = to_numpy(loss.backward())
    idx = _sample(pred.shape, max_checks, rng)

    def objective() -> float:
        return float(loss.forward(pred, target))

    numeric = numerical_gradient(objective, pred, idx, eps)
    _compare(f"{type(loss).__name__} prediction", np.array([analytic_full[j] for j in idx]), numeric, atol, rtol)


@contextlib.contextmanager
def isolated_plugins(autoload: bool = False) -> Iterator[Any]:
    """A fresh plugin host and empty registry tables for the duration of a test.

    With ``autoload=False`` only core's own plugin is loaded; register test plugins with
    :func:`plait.core.plugins.register_plugin`. Everything is restored afterwards.
    """
    from . import plugins  # noqa: PLC0415
    from .registry import KINDS, Table, registry  # noqa: PLC0415

    saved_host, saved_tables = plugins._host, registry.__dict__["_tables"]
    old_env = os.environ.get("PLAIT_DISABLE_PLUGIN_AUTOLOAD")
    try:
        registry.__dict__["_tables"] = {kind: Table(kind) for kind in KINDS}
        plugins._host = plugins.PluginHost()
        if not autoload:
            os.environ["PLAIT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        plugins._host.ensure_loaded()
        if old_env is None:
            os.environ.pop("PLAIT_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PLAIT_DISABLE_PLUGIN_AUTOLOAD"] = old_env
        yield plugins._host
    finally:
        plugins._host, registry.__dict__["_tables"] = saved_host, saved_tables
        if old_env is None:
            os.environ.pop("PLAIT_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PLAIT_DISABLE_PLUGIN_AUTOLOAD"] = old_env
