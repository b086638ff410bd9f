"""Gradient clipping against torch.nn.utils: the same total norm and the same clipped gradients.

The Plait gradients live on ``PLAIT_DEVICE`` (the CPU when unset); the references on the CPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from plait.core import Param, default_device, to_device, to_numpy
from plait.core.errors import ConfigError
from plait.optim import NonFiniteNormError, clip_grad_norm_, clip_grad_value_

torch = pytest.importorskip("torch")

SHAPES = [(4, 3), (7,), (2, 2, 3)]


def _dev(a):
    """A copy of the NumPy array ``a`` on the device the tests run on."""
    return to_device(np.array(a), default_device())


def _pair(seed=0, scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
    ours = []
    for g in grads:
        p = Param(_dev(np.zeros(g.shape, dtype)))
        p.grad = _dev(g)
        ours.append(p)
    theirs = []
    for g in grads:
        t = torch.zeros(g.shape, dtype=torch.float64 if dtype == np.float64 else torch.float32, requires_grad=True)
        t.grad = torch.tensor(g.copy())
        theirs.append(t)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [1, 2, 2.0, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3], ids=["clipped", "unclipped"])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    norm_type = float(norm_type)
    ours, theirs = _pair()
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type, foreach=False)
    assert isinstance(total, float)
    assert total == pytest.approx(float(expected), rel=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(to_numpy(p.grad), t.grad.numpy(), rtol=1e-12, atol=1e-15)
    if max_norm < 1:  # clipped to the bound
        joint = np.linalg.norm([np.linalg.norm(to_numpy(p.grad).ravel(), norm_type) for p in ours], norm_type)
        assert joint == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_float32_matches_torch():
    ours, theirs = _pair(1, dtype=np.float32)
    total = clip_grad_norm_(ours, 0.3)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.3)
    assert total == pytest.approx(float(expected), rel=1e-5)
    for p, t in zip(ours, theirs):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(to_numpy(p.grad), t.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_clip_grad_norm_skips_missing_grads_and_accepts_a_single_param():
    ours, _ = _pair(2)
    ours.append(Param(np.ones(3)))  # no grad
    total = clip_grad_norm_(ours, 1.0)
    assert total > 1.0 and ours[-1].grad is None
    single = Param(_dev(np.zeros(2)))
    single.grad = _dev([3.0, 4.0])
    assert clip_grad_norm_(single, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(to_numpy(single.grad), [0.6, 0.8], rtol=1e-5)
    assert clip_grad_norm_([Param(_dev(np.ones(2)))], 1.0) == 0.0


def test_nonfinite_norm():
    ours, theirs = _pair(3)
    ours[0].grad[0, 0] = np.nan
    with pytest.raises(NonFiniteNormError, match="clip_grad_norm_: the total 2-norm of the gradients is nan"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert not np.isnan(to_numpy(ours[1].grad)).any()  # nothing was touched
    theirs[0].grad[0, 0] = float("nan")
    total = clip_grad_norm_(ours, 1.0)  # like torch: the NaN spreads
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert math.isnan(total) and math.isnan(float(expected))
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(np.isnan(to_numpy(p.grad)), np.isnan(t.grad.numpy()))


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 10.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = _pair(4)
    grads = [p.grad for p in ours]
    clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value, foreach=False)
    for p, g, t in zip(ours, grads, theirs):
        assert p.grad is g  # in place
        np.testing.assert_array_equal(to_numpy(p.grad), t.grad.numpy())


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda ps: clip_grad_norm_(ps, -1.0), "clip_grad_norm_: max_norm must be a number >= 0, got -1.0"),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type="two"), "norm_type must be a number or inf"),
        (lambda ps: clip_grad_norm_([np.ones(3)], 1.0), "item 0 is a ndarray, expected a plait.core.Param"),
        (lambda ps: clip_grad_norm_(3, 1.0), "expected a Param or an iterable of Params, got int"),
        (lambda ps: clip_grad_value_(ps, -0.5), "clip_grad_value_: clip_value must be a number >= 0"),
    ],
)
def test_bad_clip_arguments(call, match):
    with pytest.raises(ConfigError, match=match):
        call(_pair()[0])
