"""Every torch-named loss in the registry computes torch's loss and torch's gradients.

The registry is walked: a first-party loss whose class name is a ``torch.nn`` class must have
an entry in ``TWINS`` (constructor arguments, shared by both sides, and the inputs), or this
test fails. For each entry and every reduction, the value and the gradient of every float
input are compared with torch's in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from plait.core import registry  # noqa: E402

FIRST_PARTY = ("plait-layers",)
REDUCTIONS = ("mean", "sum", "none")
W = [1.0, 2.0, 0.5, 1.5]

Inputs = Callable[[np.random.Generator], tuple[np.ndarray, ...]]


def _ids(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.standard_normal((6, 4)), np.array([0, 3, 1, 1, 2, 0])


def _logp(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    x = rng.standard_normal((6, 4))
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True)), np.array([0, 3, 1, 1, 2, 0])


def _unit(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(size=(3, 4))


def _pair(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.standard_normal((3, 4)), 3.0 * rng.standard_normal((3, 4))


def _kl(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    t = rng.uniform(0.1, 1.0, (3, 4))
    return np.log(rng.dirichlet(np.ones(4), 3)), t / t.sum(axis=1, keepdims=True)


def _cosine(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.standard_normal((5, 4)), rng.standard_normal((5, 4)), np.array([1.0, -1.0, 1.0, -1.0, -1.0])


def _ranking(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.standard_normal(6), rng.standard_normal(6), np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])


TWINS: dict[str, list[tuple[dict[str, Any], Inputs]]] = {
    "bce": [({"weight": W}, _unit)],
    "bce_with_logits": [({"pos_weight": W}, _pair), ({}, _unit)],
    "cosine_embedding": [({"margin": 0.2}, _cosine)],
    "cross_entropy": [({}, _ids), ({"weight": W, "label_smoothing": 0.1}, _ids)],
    "huber": [({"delta": 0.7}, _pair)],
    "kl_div": [({}, _kl), ({"log_target": True}, lambda rng: (np.log(rng.dirichlet(np.ones(4), 3)),
                                                              np.log(rng.dirichlet(np.ones(4), 3))))],
    "l1": [({}, _pair)],
    "margin_ranking": [({"margin": 0.1}, _ranking)],
    "mse": [({}, _pair)],
    "nll": [({"weight": W}, _logp)],
    "smooth_l1": [({"beta": 0.7}, _pair)],
}


def _torch_named() -> list[str]:
    return sorted(n for n in registry.losses.names()
                  if registry.losses.origin(n) in FIRST_PARTY and hasattr(torch.nn, registry.losses.get(n).__name__))


def test_every_torch_named_loss_has_a_twin():
    missing = [n for n in _torch_named() if n not in TWINS]
    assert not missing, f"torch-named losses without a parity entry in {__file__}: {missing}"


def _torch_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v for k, v in kwargs.items()}


CASES = [(name, k, reduction) for name, cases in TWINS.items() for k in range(len(cases)) for reduction in REDUCTIONS]


@pytest.mark.parametrize(("name", "k", "reduction"), CASES)
def test_loss_value_and_gradients_equal_torchs(name, k, reduction):
    kwargs, make = TWINS[name][k]
    cls = registry.losses.get(name)
    inputs = make(np.random.default_rng(k))
    n_pred = getattr(cls, "num_inputs", 1)
    ours = cls(**kwargs, reduction=reduction)
    value = ours(*inputs)
    grads = ours.backward(None if reduction != "none" else np.ones(np.shape(value)))
    grads = grads if isinstance(grads, tuple) else (grads,)

    tensors = [torch.tensor(a, requires_grad=i < n_pred and a.dtype.kind == "f") if a.dtype.kind == "f"
               else torch.tensor(a) for i, a in enumerate(inputs)]
    theirs = getattr(torch.nn, cls.__name__)(**_torch_args(kwargs), reduction=reduction)
    out = theirs(*tensors)
    out.sum().backward()
    np.testing.assert_allclose(np.asarray(value), out.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    for i in range(n_pred):
        np.testing.assert_allclose(np.asarray(grads[i]), tensors[i].grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name}: d input {i}")
