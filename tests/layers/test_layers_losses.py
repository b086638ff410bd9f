"""Losses: parity with torch.nn.functional (every reduction and option), finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plait.core import DTypeError, PlaitError, ShapeError, no_grad, registry
from plait.core.testing import loss_gradcheck, numerical_gradient, on_test_device
from plait.layers import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)

REDUCTIONS = ["mean", "sum", "none"]


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-6)


def _check_parity(ours, torch_fn, x, t, dtype, t_torch=None):
    """Forward value and d loss / d pred against torch (upstream R for reduction='none'), on PLAIT_DEVICE."""
    rng = np.random.default_rng(7)
    ours = on_test_device(ours)
    out = ours(x, t)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch_fn(xt, torch.tensor(t) if t_torch is None else t_torch)
    if ours.reduction == "none":
        r = rng.standard_normal(np.shape(out)).astype(dtype)
        dx = ours.backward(r)
        ref.backward(torch.tensor(r))
        assert out.dtype == dtype and out.shape == tuple(ref.shape)
        np.testing.assert_allclose(out, ref.detach().numpy(), **_tol(dtype))
    else:
        dx = ours.backward()
        ref.backward()
        assert isinstance(out, float)
        np.testing.assert_allclose(out, ref.item(), **_tol(dtype))
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, xt.grad.numpy(), **_tol(dtype))


def _gradcheck(loss, x, t):
    """loss_gradcheck for scalar reductions; for 'none' the objective sum(l * R)."""
    if loss.reduction != "none":
        loss_gradcheck(loss, x, t)
        return
    r = np.random.default_rng(3).standard_normal(np.shape(loss(x, t)))
    analytic = loss.backward(r)
    idx = [tuple(i) for i in np.argwhere(np.ones(x.shape, bool))[:40]]
    numeric = numerical_gradient(lambda: float(np.sum(loss(x, t) * r)), x, idx, 1e-6)
    np.testing.assert_allclose([analytic[i] for i in idx], numeric, rtol=1e-5, atol=1e-7)


# -- cross entropy ------------------------------------------------------------------------------
CE_SHAPES = [(6, 4), (3, 4, 2, 3), (4,)]


def _ce_data(shape, kind, dtype, ignore, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    c = shape[0] if len(shape) == 1 else shape[1]
    if kind == "probs":
        t = rng.random(shape).astype(dtype)
        return x, t / t.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    id_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = rng.integers(0, c, size=id_shape)
    if len(shape) > 1:
        t.flat[0] = t.flat[-1]  # a repeated class
        if ignore is not None:
            t.flat[1] = ignore
    return x, np.asarray(t, dtype=np.int64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize(("kind", "ignore"), [("ids", None), ("ids", -100), ("ids", 2), ("probs", None)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_parity(dtype, shape, kind, ignore, reduction, weighted, smoothing):
    c = shape[0] if len(shape) == 1 else shape[1]
    w = np.linspace(0.5, 2.0, c) if weighted else None
    x, t = _ce_data(shape, kind, dtype, ignore)
    ii = -100 if ignore is None else ignore
    ours = CrossEntropyLoss(weight=w, ignore_index=ii, reduction=reduction, label_smoothing=smoothing)
    wt = None if w is None else torch.tensor(w, dtype=torch.float64 if dtype == np.float64 else torch.float32)

    def ref(a, b):
        return F.cross_entropy(a, b, weight=wt, ignore_index=ii, reduction=reduction, label_smoothing=smoothing)

    _check_parity(ours, ref, x, t, dtype)


@pytest.mark.parametrize("kind", ["ids", "probs"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradcheck(kind, reduction):
    x, t = _ce_data((5, 4, 3), kind, np.float64, ignore=-100, seed=1)
    loss = CrossEntropyLoss(weight=[0.5, 1.0, 2.0, 1.5], reduction=reduction, label_smoothing=0.1)
    _gradcheck(loss, x, t)


def test_cross_entropy_stable_for_huge_logits():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5e3, 1e4, -1e4]], dtype=np.float32)
    t = np.array([1, 2, 0])
    for smoothing in (0.0, 0.1):
        loss = on_test_device(CrossEntropyLoss(label_smoothing=smoothing))
        value = loss(x, t)
        dx = loss.backward()
        assert np.isfinite(value) and np.all(np.isfinite(dx))
        xt = torch.tensor(x, requires_grad=True)
        ref = F.cross_entropy(xt, torch.tensor(t), label_smoothing=smoothing)
        ref.backward()
        np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_cross_entropy_all_ignored_matches_torch():
    x = np.random.default_rng(0).standard_normal((3, 4))
    t = np.full(3, -100)
    loss = on_test_device(CrossEntropyLoss())
    assert np.isnan(loss(x, t))
    xt = torch.tensor(x, requires_grad=True)
    F.cross_entropy(xt, torch.tensor(t)).backward()
    np.testing.assert_array_equal(loss.backward(), xt.grad.numpy())


@pytest.mark.parametrize("loss_cls", [CrossEntropyLoss, NLLLoss])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_class_id_fast_path_equals_the_masked_path(loss_cls, reduction, ignore_index):
    """All ids valid and no weight takes a path without masks; a weight of ones takes the
    masked one. Both must agree bit for bit (ignore_index=2 lies inside the ids' range
    without occurring, which must not drop a row)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 5)).astype(np.float32)
    t = np.array([0, 1, 3, 4, 0, 1, 3, 4, 1])
    grad_out = rng.standard_normal(9).astype(np.float32) if reduction == "none" else None
    results = []
    for weight in (None, np.ones(5)):
        loss = loss_cls(weight=weight, ignore_index=ignore_index, reduction=reduction)
        results.append((np.asarray(loss(x, t)), loss.backward(grad_out)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


# -- nll --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", CE_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 1])
def test_nll_parity(dtype, shape, reduction, weighted, ignore):
    c = shape[0] if len(shape) == 1 else shape[1]
    w = np.linspace(0.5, 2.0, c) if weighted else None
    x, t = _ce_data(shape, "ids", dtype, ignore)
    ii = -100 if ignore is None else ignore
    wt = None if w is None else torch.tensor(w, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    _check_parity(NLLLoss(weight=w, ignore_index=ii, reduction=reduction),
                  lambda a, b: F.nll_loss(a, b, weight=wt, ignore_index=ii, reduction=reduction), x, t, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_gradcheck(reduction):
    x, t = _ce_data((6, 3), "ids", np.float64, ignore=-100, seed=2)
    _gradcheck(NLLLoss(weight=[1.0, 2.0, 0.5], reduction=reduction), x, t)


# -- element-wise -------------------------------------------------------------------------------------
def _make_bce(opts):
    return BCELoss(**opts), lambda a, b: F.binary_cross_entropy(a, b, weight=_t(opts.get("weight")),
                                                                reduction=opts.get("reduction", "mean"))


def _make_bcel(opts):
    return BCEWithLogitsLoss(**opts), lambda a, b: F.binary_cross_entropy_with_logits(
        a, b, weight=_t(opts.get("weight")), pos_weight=_t(opts.get("pos_weight")), reduction=opts.get("reduction", "mean"))


def _make_simple(cls, fn):
    return lambda opts: (cls(**opts), lambda a, b: fn(a, b, **opts))


_DTYPE = {"value": torch.float64}


def _t(a):
    return None if a is None else torch.tensor(a, dtype=_DTYPE["value"])


ELEMENTWISE = [
    ("bce", _make_bce, {}),
    ("bce_weight", _make_bce, {"weight": [0.5, 1.0, 2.0]}),
    ("bce_with_logits", _make_bcel, {}),
    ("bce_with_logits_pos_weight", _make_bcel, {"pos_weight": [0.5, 3.0, 1.0], "weight": [1.0, 2.0, 0.5]}),
    ("mse", _make_simple(MSELoss, F.mse_loss), {}),
    ("l1", _make_simple(L1Loss, F.l1_loss), {}),
    ("huber", _make_simple(HuberLoss, F.huber_loss), {}),
    ("huber_delta", _make_simple(HuberLoss, F.huber_loss), {"delta": 0.3}),
]


def _elementwise_data(name, shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if name.startswith("bce") and "logits" not in name:
        x = rng.uniform(0.02, 0.98, shape)
        t = rng.random(shape)
        t.flat[0], x.flat[1] = 1.0, 0.0  # a hard target, and p=0 hitting torch's clamps
    else:
        x = rng.standard_normal(shape) * 2
        t = rng.random(shape) if name.startswith("bce") else rng.standard_normal(shape)
    return x.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_elementwise_parity(dtype, shape, reduction, case):
    name, make, opts = case
    _DTYPE["value"] = torch.float64 if dtype == np.float64 else torch.float32
    ours, ref = make({**opts, "reduction": reduction})
    x, t = _elementwise_data(name, shape, dtype)
    _check_parity(ours, ref, x, t, dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_elementwise_gradcheck(reduction, case):
    name, make, opts = case
    _DTYPE["value"] = torch.float64
    ours, _ = make({**opts, "reduction": reduction})
    x, t = _elementwise_data(name, (3, 3), np.float64, seed=4)
    if name.startswith("bce") and "logits" not in name:
        x = np.clip(x, 0.05, 0.95)  # finite differences need room on both sides
    if name.startswith("huber"):
        x[np.abs(x - t) - ours.delta < 1e-3] += 0.01  # keep off the kink
    _gradcheck(ours, x, t)


def test_bce_with_logits_stable_for_huge_logits():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], dtype=np.float32)
    t = np.array([[0.0, 1.0, 0.5], [0.0, 1.0, 1.0]], dtype=np.float32)
    loss = on_test_device(BCEWithLogitsLoss(pos_weight=[2.0, 3.0, 1.0]))
    value = loss(x, t)
    dx = loss.backward()
    xt = torch.tensor(x, requires_grad=True)
    ref = F.binary_cross_entropy_with_logits(xt, torch.tensor(t), pos_weight=torch.tensor([2.0, 3.0, 1.0]))
    ref.backward()
    assert np.isfinite(value) and np.all(np.isfinite(dx))
    np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-5, atol=1e-8)


# -- config, errors, caching ------------------------------------------------------------------------------
CONFIG_CASES = [
    CrossEntropyLoss(weight=np.array([1.0, 2.0, 3.0]), ignore_index=0, reduction="sum", label_smoothing=0.1),
    NLLLoss(weight=[0.5, 1.0, 1.0], reduction="none"),
    BCELoss(weight=[1.0, 2.0, 3.0]),
    BCEWithLogitsLoss(pos_weight=np.array([2.0, 1.0, 1.0]), reduction="sum"),
    MSELoss(reduction="sum"),
    L1Loss(),
    HuberLoss(delta=0.5),
]


@pytest.mark.parametrize("loss", CONFIG_CASES, ids=lambda m: type(m).__name__)
def test_config_round_trip(loss):
    cfg = loss.config()
    assert cfg["kind"] == "losses"
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(loss) and rebuilt.config() == cfg
    rng = np.random.default_rng(0)
    if isinstance(loss, (CrossEntropyLoss, NLLLoss)):
        x, t = rng.standard_normal((4, 3)), np.array([0, 1, 2, 1])
    elif isinstance(loss, BCELoss):
        x, t = rng.uniform(0.1, 0.9, (4, 3)), rng.random((4, 3))
    else:
        x, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    np.testing.assert_array_equal(rebuilt(x, t), loss(x, t))


def test_registry_names():
    assert {"cross_entropy", "nll", "bce", "bce_with_logits", "mse", "l1", "huber"} <= set(registry.losses.names())


def test_cross_entropy_errors():
    loss = CrossEntropyLoss()
    x = np.zeros((4, 3))
    with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*\(4,\).*\(5,\)"):
        loss(x, np.zeros(5, dtype=np.int64))
    with pytest.raises(ShapeError, match=r"CrossEntropyLoss.*\[0, 3\)"):
        loss(x, np.array([0, 1, 3, 1]))
    with pytest.raises(ShapeError, match="CrossEntropyLoss"):
        loss(x, np.zeros((4, 2)))  # probabilities of the wrong shape
    with pytest.raises(DTypeError, match="CrossEntropyLoss"):
        loss(x, np.zeros(4, dtype=bool))
    with pytest.raises(DTypeError, match="CrossEntropyLoss"):
        loss(np.zeros((4, 3), dtype=np.int64), np.zeros(4, dtype=np.int64))
    with pytest.raises(ShapeError, match="CrossEntropyLoss.*weight"):
        CrossEntropyLoss(weight=[1.0, 2.0])(x, np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="CrossEntropyLoss.*reduction"):
        CrossEntropyLoss(reduction="avg")


def test_other_loss_errors():
    with pytest.raises(DTypeError, match="NLLLoss"):
        NLLLoss()(np.zeros((2, 3)), np.zeros(2))  # float ids
    with pytest.raises(ShapeError, match="MSELoss.*\\(2, 3\\).*\\(3, 2\\)"):
        MSELoss()(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(DTypeError, match="L1Loss"):
        L1Loss()(np.zeros((2, 3)), np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ShapeError, match=r"BCELoss.*\[0, 1\]"):
        BCELoss()(np.full((2, 2), 1.5), np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="BCEWithLogitsLoss.*pos_weight"):
        BCEWithLogitsLoss(pos_weight=[1.0, 2.0])(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="HuberLoss"):
        HuberLoss(delta=0.0)


@pytest.mark.parametrize("loss", CONFIG_CASES, ids=lambda m: type(m).__name__)
def test_backward_needs_a_forward(loss):
    with pytest.raises(PlaitError, match="without a matching forward"):
        type(loss)().backward()


def test_single_cache_semantics():
    loss = MSELoss()
    x, t = np.ones((2, 2)), np.zeros((2, 2))
    loss(x * 5, t)
    loss(x, t)  # replaces the first cache
    np.testing.assert_allclose(loss.backward(), 2 * x / 4)
    with pytest.raises(PlaitError):
        loss.backward()  # consumed
    with no_grad():
        loss(x, t)
    with pytest.raises(PlaitError):
        loss.backward()  # nothing cached inside no_grad


def test_scalar_upstream_and_none_upstream_shape():
    loss = MSELoss()
    x, t = np.ones((2, 2)), np.zeros((2, 2))
    loss(x, t)
    np.testing.assert_allclose(loss.backward(3.0), 3 * 2 * x / 4)
    none = MSELoss(reduction="none")
    none(x, t)
    with pytest.raises(ShapeError, match="MSELoss.backward"):
        none.backward(np.ones(3))
