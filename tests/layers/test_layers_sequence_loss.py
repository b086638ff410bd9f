"""SequenceCrossEntropyLoss: (B, T, V) logits against (B, T) ids, classes last.

Checked twice: central finite differences in float64 and torch's
``cross_entropy(logits.reshape(-1, V), ids.reshape(-1))`` (every reduction and option).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plait.core import DTypeError, ShapeError, registry
from plait.core.testing import loss_gradcheck
from plait.layers import SequenceCrossEntropyLoss


def _data(dtype=np.float64, b=3, t=5, v=7, seed=0, ignore=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, t, v)).astype(dtype)
    ids = rng.integers(0, v, (b, t))
    if ignore:
        ids[0, :2] = -100
    return x, ids


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1}, {"ignore_index": -100},
                                     {"weight": np.linspace(0.5, 2.0, 7)}])
def test_finite_differences_float64(options):
    x, ids = _data(ignore="ignore_index" in options)
    loss_gradcheck(SequenceCrossEntropyLoss(**options), x, ids)
    loss_gradcheck(SequenceCrossEntropyLoss(reduction="sum", **options), x, ids)


def test_finite_differences_probability_targets():
    x, _ = _data()
    p = np.random.default_rng(1).random(x.shape)
    loss_gradcheck(SequenceCrossEntropyLoss(), x, p / p.sum(-1, keepdims=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_matches_torch(reduction, dtype, smoothing):
    x, ids = _data(dtype, ignore=True)
    w = np.linspace(0.5, 2.0, x.shape[-1])
    loss = SequenceCrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=smoothing)
    value = loss(x, ids)
    xt = torch.tensor(x, requires_grad=True)
    ref = F.cross_entropy(xt.reshape(-1, x.shape[-1]), torch.tensor(ids).reshape(-1),
                          weight=torch.tensor(w, dtype=xt.dtype), reduction=reduction, label_smoothing=smoothing)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    if reduction == "none":
        ref = ref.reshape(ids.shape)
        assert value.shape == ids.shape
        np.testing.assert_allclose(value, ref.detach().numpy(), rtol=tol, atol=tol)
        upstream = np.random.default_rng(2).standard_normal(ids.shape).astype(dtype)
        ref.backward(torch.tensor(upstream))
        dx = loss.backward(upstream)
    else:
        assert isinstance(value, float)
        np.testing.assert_allclose(value, ref.item(), rtol=tol, atol=tol)
        ref.backward()
        dx = loss.backward()
    assert dx.shape == x.shape and dx.dtype == x.dtype
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol * 10, atol=tol)


def test_equals_cross_entropy_with_classes_in_axis_one():
    from plait.layers import CrossEntropyLoss

    x, ids = _data()
    seq, ce = SequenceCrossEntropyLoss(), CrossEntropyLoss()
    assert seq(x, ids) == pytest.approx(ce(np.moveaxis(x, -1, 1), ids), rel=1e-12)
    np.testing.assert_allclose(seq.backward(), np.moveaxis(ce.backward(), 1, -1), rtol=1e-12, atol=1e-15)


def test_registered_and_rebuilt_from_config():
    assert registry.losses.get("sequence_cross_entropy") is SequenceCrossEntropyLoss
    assert registry.losses.origin("sequence_cross_entropy") == "plait-layers"
    loss = registry.build({"type": "sequence_cross_entropy", "label_smoothing": 0.1}, kind="losses")
    assert loss.config() == {"type": "sequence_cross_entropy", "kind": "losses", "weight": None, "ignore_index": -100,
                             "reduction": "mean", "label_smoothing": 0.1}


def test_clear_errors():
    loss = SequenceCrossEntropyLoss()
    x, ids = _data()
    with pytest.raises(ShapeError, match=r"need class-index target of shape \(3, 5\)"):
        loss(x, ids[:, :4])
    with pytest.raises(ShapeError, match="weight has shape"):
        SequenceCrossEntropyLoss(weight=np.ones(3))(x, ids)
    with pytest.raises(DTypeError, match="integer class indices or float probabilities"):
        loss(x, ids.astype(bool))
    with pytest.raises(ShapeError):
        loss(x[0, 0], ids[0, 0])  # one position: logits need a leading axis
