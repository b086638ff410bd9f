"""Numerical stability: logits of magnitude up to 1e4 give finite values and torch's gradients.

Softmax, LogSoftmax, Sigmoid (layers) and CrossEntropyLoss, BCEWithLogitsLoss, BCELoss
(losses) in float32 and float64, with hypothesis drawing the logits. BCELoss takes
probabilities, so it gets sigmoid(logits) — which saturates to exactly 0 and 1; torch
clamps log at -100 there and so must we.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from plait.core import registry

TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-6, "atol": 1e-9}}
FUZZ = settings(max_examples=20, deadline=None, derandomize=True)
BIG = [1e4, -1e4, 3e3, -3e3, 88.7, -88.7, 0.0, 1e-7]


def _logits(dtype: type) -> st.SearchStrategy[np.ndarray]:
    element = st.sampled_from(BIG) | st.floats(-1e4, 1e4, allow_nan=False, width=32)
    return arrays(dtype, st.tuples(st.integers(1, 4), st.integers(2, 5)), elements=element)


def _torch(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, requires_grad=True)


def _close(mine: np.ndarray, theirs: torch.Tensor, dtype: type) -> None:
    mine = np.asarray(mine)
    assert np.all(np.isfinite(mine)), f"non-finite values: {mine}"
    np.testing.assert_allclose(mine, theirs.detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, torch_fn", [
    ("softmax", lambda t: torch.softmax(t, dim=-1)),
    ("log_softmax", lambda t: torch.log_softmax(t, dim=-1)),
    ("sigmoid", torch.sigmoid),
])
@FUZZ
@given(data=st.data())
def test_activations_at_huge_logits(name, torch_fn, dtype, data):
    x = data.draw(_logits(dtype), label="logits")
    dy = data.draw(arrays(dtype, x.shape, elements=st.floats(-1, 1, width=32)), label="dy")
    layer = registry.build({"type": name, **({"dim": -1} if "softmax" in name else {})})
    y = layer(x)
    dx = layer.backward(dy)
    t = _torch(x)
    ty = torch_fn(t)
    ty.backward(torch.tensor(dy))
    assert y.dtype == dtype and dx.dtype == dtype
    _close(y, ty, dtype)
    _close(dx, t.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@FUZZ
@given(data=st.data())
def test_cross_entropy_at_huge_logits(dtype, smoothing, data):
    x = data.draw(_logits(dtype), label="logits")
    target = np.array(data.draw(st.lists(st.integers(0, x.shape[1] - 1), min_size=x.shape[0], max_size=x.shape[0])))
    loss = registry.build({"type": "cross_entropy", "label_smoothing": smoothing}, kind="losses")
    value = loss(x, target)
    grad = loss.backward()
    t = _torch(x)
    tv = torch.nn.functional.cross_entropy(t, torch.tensor(target), label_smoothing=smoothing)
    tv.backward()
    assert np.isfinite(value) and value == pytest.approx(tv.item(), rel=TOL[dtype]["rtol"], abs=TOL[dtype]["atol"])
    _close(grad, t.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_pos_weight", [False, True])
@FUZZ
@given(data=st.data())
def test_bce_with_logits_at_huge_logits(dtype, with_pos_weight, data):
    x = data.draw(_logits(dtype), label="logits")
    target = data.draw(arrays(dtype, x.shape, elements=st.sampled_from([0.0, 1.0, 0.3])), label="target")
    pos_weight = np.linspace(0.5, 2.0, x.shape[1]) if with_pos_weight else None
    loss = registry.build({"type": "bce_with_logits", "pos_weight": pos_weight}, kind="losses")
    value = loss(x, target)
    grad = loss.backward()
    t = _torch(x)
    tw = None if pos_weight is None else torch.tensor(pos_weight, dtype=t.dtype)
    tv = torch.nn.functional.binary_cross_entropy_with_logits(t, torch.tensor(target), pos_weight=tw)
    tv.backward()
    assert np.isfinite(value) and value == pytest.approx(tv.item(), rel=TOL[dtype]["rtol"], abs=TOL[dtype]["atol"])
    _close(grad, t.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@FUZZ
@given(data=st.data())
def test_bce_on_saturated_probabilities(dtype, data):
    x = data.draw(_logits(dtype), label="logits")
    p = torch.sigmoid(torch.tensor(x)).numpy()  # exactly 0 and 1 at the extremes
    target = data.draw(arrays(dtype, x.shape, elements=st.sampled_from([0.0, 1.0, 0.3])), label="target")
    loss = registry.build({"type": "bce"}, kind="losses")
    value = loss(p, target)
    grad = loss.backward()
    t = _torch(p)
    tv = torch.nn.functional.binary_cross_entropy(t, torch.tensor(target))
    tv.backward()
    assert np.isfinite(value) and value == pytest.approx(tv.item(), rel=TOL[dtype]["rtol"], abs=TOL[dtype]["atol"])
    # torch's BCE gradient at p in {0, 1} is finite (its eps-clamped formula); ours must be too and agree
    _close(grad, t.grad, dtype)


def test_softmax_of_identical_huge_logits_is_uniform():
    layer = registry.build({"type": "softmax", "dim": -1})
    y = layer(np.full((2, 4), 1e4, dtype=np.float32))
    np.testing.assert_array_equal(y, np.full((2, 4), 0.25, dtype=np.float32))
