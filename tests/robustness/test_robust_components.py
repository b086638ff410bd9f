"""Every registered loss, optimizer and metric, driven from the registry, against bad input.

Each table below must hold an entry for every first-party registered name (the coverage
tests FAIL otherwise). Bad shapes and dtypes raise ShapeError/DTypeError naming the
component or give the correct result; never silent broadcasting, never a numpy error;
non-contiguous and read-only inputs give the same result and are never modified.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.core import Param, device_of, registry, to_device, to_numpy
from plait.core.errors import DTypeError, PlaitError, ShapeError


def _first_party(table: Any) -> list[str]:
    return [n for n in table.names() if table.origin(n).startswith("plait-")]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _logits(*shape: int) -> np.ndarray:
    return _rng(0).standard_normal(shape).astype(np.float32)


def _ids(high: int, *shape: int) -> np.ndarray:
    return _rng(1).integers(0, high, size=shape)


def _probs(*shape: int) -> np.ndarray:
    return (1 / (1 + np.exp(-_logits(*shape)))).astype(np.float32)


def _log_probs(*shape: int) -> np.ndarray:
    x = _logits(*shape)
    return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(np.float32)


# name -> (constructor args, pred, target, class-index target?)
LOSSES: dict[str, tuple[dict[str, Any], np.ndarray, np.ndarray, bool]] = {
    "bce": ({}, _probs(4, 3), _rng(2).uniform(size=(4, 3)).astype(np.float32), False),
    "bce_with_logits": ({}, _logits(4, 3), _rng(2).uniform(size=(4, 3)).astype(np.float32), False),
    "cross_entropy": ({"label_smoothing": 0.1}, _logits(4, 5), _ids(5, 4), True),
    "huber": ({"delta": 0.5}, _logits(4, 3), _logits(3, 4).T.copy(), False),
    "kl_div": ({"reduction": "batchmean"}, _log_probs(4, 3), np.exp(_log_probs(4, 3)[::-1]).copy(), False),
    "l1": ({}, _logits(4, 3), _logits(3, 4).T.copy(), False),
    "mse": ({}, _logits(4, 3), _logits(3, 4).T.copy(), False),
    "nll": ({}, _log_probs(4, 5), _ids(5, 4), True),
    "smooth_l1": ({"beta": 0.5}, _logits(4, 3), _logits(3, 4).T.copy(), False),
    # (B, T, V) logits against (B, T) ids: B = 4 sequences of T = 5 positions over V = 5 classes
    "sequence_cross_entropy": ({"label_smoothing": 0.1}, _logits(4, 25).reshape(4, 5, 5), _ids(5, 20).reshape(4, 5),
                               True),
}
LOSS_NAMES = sorted(n for n in LOSSES if n in registry.losses)


def test_every_registered_loss_has_a_case():
    missing = sorted(set(_first_party(registry.losses)) - set(LOSSES) - set(PAIR_LOSSES))
    assert not missing, f"registered losses without a robustness case: {missing}"


def _loss(name: str) -> Any:
    return registry.build({"type": name, **LOSSES[name][0]}, kind="losses")


def _loss_and_grad(name: str, pred: Any, target: Any) -> tuple[float, np.ndarray]:
    fn = _loss(name)
    value = fn(pred, target)
    return value, fn.backward()


def _named(err: BaseException, fn: Any) -> None:
    assert type(fn).__name__ in str(err), f"error does not name {type(fn).__name__}: {err}"


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_config_round_trip(name):
    fn = _loss(name)
    again = registry.build(fn.config(), kind="losses")
    assert again.config() == fn.config()
    _, pred, target, _ = LOSSES[name]
    assert again(pred, target) == fn(pred, target)


def _bad_targets(name: str) -> dict[str, np.ndarray]:
    _, pred, target, indices = LOSSES[name]
    if indices:
        return {"broadcastable": target[:1], "extra axis": target[:, None], "too long": np.concatenate([target, target]),
                "one-hot of the wrong width": np.eye(pred.shape[1] + 1, dtype=np.float32)[target]}
    return {"broadcastable": target[:1], "row": target[0], "transposed": target.T.copy(), "flattened": target.reshape(-1)}


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("which", ["broadcastable", "extra axis", "too long", "one-hot of the wrong width", "row",
                                   "transposed", "flattened"])
def test_loss_mismatched_target_raises(name, which):
    bad = _bad_targets(name).get(which)
    if bad is None:
        pytest.skip("not a case for this loss")
    fn = _loss(name)
    with pytest.raises((ShapeError, DTypeError)) as err:  # NLL takes no probabilities: a DTypeError
        fn(LOSSES[name][1], bad)
    _named(err.value, fn)


BAD = {
    "int64": lambda a: np.round(a * 3).astype(np.int64),
    "bool": lambda a: a > 0,
    "complex64": lambda a: a.astype(np.complex64),
    "object": lambda a: a.astype(object),
    "str": lambda a: a.astype(str),
}


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("dtype", list(BAD))
@pytest.mark.parametrize("side", ["pred", "target"])
def test_loss_wrong_dtype(name, dtype, side):
    _, pred, target, indices = LOSSES[name]
    if side == "pred":
        pred = BAD[dtype](pred)
    else:
        target = BAD[dtype](target.astype(np.float32) + (0.25 if indices else 0.0))
    fn = _loss(name)
    try:
        value = fn(pred, target)
    except (DTypeError, ShapeError) as err:
        _named(err, fn)
        return
    # accepted: only a real-valued target that means the same numbers is acceptable
    assert side == "target" and dtype in ("int64", "bool") and not indices, f"{name} accepted a {dtype} {side}"
    assert value == pytest.approx(fn(LOSSES[name][1], np.asarray(target, dtype=np.float32)), rel=1e-6)


@pytest.mark.parametrize("name", [n for n in LOSS_NAMES if LOSSES[n][3]])
@pytest.mark.parametrize("bad_id", [5, -3, 10**12])
def test_loss_class_id_out_of_range(name, bad_id):
    _, pred, target, _ = LOSSES[name]
    target = target.copy()
    target[1] = bad_id
    fn = _loss(name)
    with pytest.raises(PlaitError) as err:
        fn(pred, target)
    _named(err.value, fn)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_empty_batch(name):
    _, pred, target, _ = LOSSES[name]
    fn = _loss(name)
    try:
        value = fn(pred[:0], target[:0])
    except ShapeError as err:
        _named(err, fn)
        return
    assert np.isnan(value) or value == 0.0  # torch's mean over nothing is nan
    assert fn.backward().shape == pred[:0].shape


def _odd_layout(a: np.ndarray, how: str) -> np.ndarray:
    if how == "read-only":
        out = a.copy()
        out.setflags(write=False)
        return out
    if how == "fortran":
        return np.asfortranarray(a)
    wide = np.zeros((*a.shape, 2), dtype=a.dtype)
    wide[..., 0] = a
    return wide[..., 0]


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("how", ["strided", "fortran", "read-only"])
def test_loss_unusual_layouts_match(name, how):
    _, pred, target, _ = LOSSES[name]
    v0, g0 = _loss_and_grad(name, pred, target)
    p, t = _odd_layout(pred, how), _odd_layout(target, how)
    v1, g1 = _loss_and_grad(name, p, t)
    assert v1 == pytest.approx(v0, rel=1e-6)
    np.testing.assert_allclose(g1, g0, rtol=1e-6, atol=1e-7)
    assert np.array_equal(p, pred) and np.array_equal(t, target)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_backward_misuse(name):
    fn = _loss(name)
    with pytest.raises(PlaitError, match="without a matching forward"):
        fn.backward()
    fn(LOSSES[name][1], LOSSES[name][2])
    fn.backward()
    with pytest.raises(PlaitError):
        fn.backward()


# -- two-input losses: fn(input1, input2, target) -> (dinput1, dinput2) --------------------------------
_SIGNS = np.array([1, -1, -1, 1], dtype=np.int64)
# name -> (constructor args, input1, input2, target)
PAIR_LOSSES: dict[str, tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]] = {
    "cosine_embedding": ({"margin": 0.2}, _logits(4, 3), _logits(3, 4).T.copy(), _SIGNS),
    "margin_ranking": ({"margin": 0.1}, _logits(4), _logits(5)[1:].copy(), _SIGNS.astype(np.float32)),
}
PAIR_NAMES = sorted(n for n in PAIR_LOSSES if n in registry.losses)


def _pair(name: str, **override: Any) -> Any:
    return registry.build({"type": name, **PAIR_LOSSES[name][0], **override}, kind="losses")


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_pair_loss_config_round_trip_and_gradient_pair(name):
    _, x1, x2, y = PAIR_LOSSES[name]
    fn = _pair(name)
    again = registry.build(fn.config(), kind="losses")
    assert again.config() == fn.config() and fn.num_inputs == 2
    assert again(x1, x2, y) == fn(x1, x2, y)
    dx1, dx2 = fn.backward()
    assert dx1.shape == x1.shape and dx2.shape == x2.shape and dx1.dtype == x1.dtype


@pytest.mark.parametrize("name", PAIR_NAMES)
@pytest.mark.parametrize("which", ["input2 broadcastable", "input2 extra axis", "target broadcastable",
                                   "target extra axis", "target 0/1", "target 2"])
def test_pair_loss_bad_second_input_or_target_raises(name, which):
    _, x1, x2, y = PAIR_LOSSES[name]
    bad = {"input2 broadcastable": (x2[:1], y), "input2 extra axis": (x2[:, None], y),
           "target broadcastable": (x2, y[:1]), "target extra axis": (x2, y[:, None]),
           "target 0/1": (x2, (y > 0).astype(np.int64)), "target 2": (x2, y * 2)}[which]
    fn = _pair(name)
    with pytest.raises(ShapeError) as err:
        fn(x1, *bad)
    _named(err.value, fn)


@pytest.mark.parametrize("name", PAIR_NAMES)
@pytest.mark.parametrize("dtype", ["complex64", "object", "str"])
@pytest.mark.parametrize("side", [0, 1, 2])
def test_pair_loss_wrong_dtype(name, dtype, side):
    args = list(PAIR_LOSSES[name][1:])
    args[side] = BAD[dtype](args[side])
    fn = _pair(name)
    with pytest.raises(DTypeError) as err:
        fn(*args)
    _named(err.value, fn)


@pytest.mark.parametrize("name", PAIR_NAMES)
@pytest.mark.parametrize("how", ["strided", "fortran", "read-only"])
def test_pair_loss_unusual_layouts_match_and_empty_batch(name, how):
    _, x1, x2, y = PAIR_LOSSES[name]
    fn = _pair(name)
    v0, g0 = fn(x1, x2, y), fn.backward()
    odd = [_odd_layout(a, how) for a in (x1, x2, y)]
    v1, g1 = fn(*odd), fn.backward()
    assert v1 == pytest.approx(v0, rel=1e-6)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert all(np.array_equal(a, b) for a, b in zip(odd, (x1, x2, y)))
    assert np.isnan(fn(x1[:0], x2[:0], y[:0])) and fn.backward()[0].shape == x1[:0].shape


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_pair_loss_backward_misuse_and_hostile_arguments(name):
    _, x1, x2, y = PAIR_LOSSES[name]
    fn = _pair(name)
    with pytest.raises(PlaitError, match="without a matching forward"):
        fn.backward()
    fn(x1, x2, y)
    fn.backward()
    with pytest.raises(PlaitError):
        fn.backward()
    for key in ("margin", "reduction"):
        for junk in _JUNK:
            try:
                obj = _pair(name, **{key: junk})
            except PlaitError:
                continue
            assert np.isfinite(obj(x1, x2, y)), (key, junk)


# -- optimizers -----------------------------------------------------------------------------------
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adagrad": {"lr": 0.1},
    "adam": {"lr": 0.1, "weight_decay": 0.01},
    "adamax": {"lr": 0.1, "weight_decay": 0.01},
    "adamw": {"lr": 0.1, "amsgrad": True},
    "example_sign_sgd": {"lr": 0.1},
    "lion": {"lr": 0.1},
    "nadam": {"lr": 0.1, "weight_decay": 0.01, "decoupled_weight_decay": True},
    "radam": {"lr": 0.1, "weight_decay": 0.01},
    "rmsprop": {"lr": 0.1, "momentum": 0.9, "centered": True},
    "sgd": {"lr": 0.1, "momentum": 0.9, "nesterov": True},
}
OPT_NAMES = sorted(n for n in OPTIMIZERS if n in registry.optimizers)


def test_every_registered_optimizer_has_a_case():
    missing = sorted(set(_first_party(registry.optimizers)) - set(OPTIMIZERS))
    assert not missing, f"registered optimizers without a robustness case: {missing}"


def _params() -> list[Param]:
    return [Param(_logits(3, 4).copy()), Param(_logits(4).copy())]


def _grads(step: int) -> list[np.ndarray]:
    return [_rng(10 + step).standard_normal((3, 4)).astype(np.float32), _rng(20 + step).standard_normal(4).astype(np.float32)]


def _optimizer(name: str, params: list[Param]) -> Any:
    return registry.optimizers.get(name)(params, **OPTIMIZERS[name])


def _train(name: str, layout: str = "contiguous", steps: int = 3) -> list[np.ndarray]:
    params = _params()
    opt = _optimizer(name, params)
    for step in range(steps):
        for p, g in zip(params, _grads(step)):
            p.grad = g if layout == "contiguous" else _odd_layout(g, layout)
        opt.step()
    return [p.data for p in params]


@pytest.mark.parametrize("name", OPT_NAMES)
@pytest.mark.parametrize("layout", ["strided", "fortran", "read-only"])
def test_optimizer_unusual_gradient_layouts_match(name, layout):
    for a, b in zip(_train(name, layout), _train(name)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", OPT_NAMES)
@pytest.mark.parametrize("shape", [(1, 4), (3, 1), (4, 3), (12,)])
def test_optimizer_misshaped_gradient_raises(name, shape):
    params = _params()
    opt = _optimizer(name, params)
    before = params[0].data.copy()
    params[0].grad = np.ones(shape, np.float32)
    with pytest.raises(ShapeError):
        opt.step()
    assert np.array_equal(params[0].data, before)


@pytest.mark.parametrize("name", OPT_NAMES)
def test_optimizer_float64_gradient_keeps_float32_params(name):
    params = _params()
    opt = _optimizer(name, params)
    for p, g in zip(params, _grads(0)):
        p.grad = g.astype(np.float64)
    opt.step()
    assert all(p.data.dtype == np.float32 and np.all(np.isfinite(p.data)) for p in params)


@pytest.mark.parametrize("name", OPT_NAMES)
def test_optimizer_without_gradients_changes_nothing(name):
    params = _params()
    before = [p.data.copy() for p in params]
    _optimizer(name, params).step()
    assert all(np.array_equal(p.data, b) for p, b in zip(params, before))


_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats() | st.text(max_size=4)
    | st.builds(lambda s: np.ones(s, np.float32), st.sampled_from([(), (1,), (3, 4), (4,), (4, 3)])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), inner, max_size=3),
    max_leaves=6,
)


def _mutated_state(state: Any, data: st.DataObject, depth: int = 0) -> Any:
    """A copy of an optimizer state dict with random entries replaced, dropped or added."""
    if isinstance(state, dict):
        out = {}
        for k, v in state.items():
            action = data.draw(st.sampled_from(["keep", "keep", "keep", "recurse", "replace", "drop"]), label=f"{k}")
            if action == "keep":
                out[k] = v
            elif action == "recurse":
                out[k] = _mutated_state(v, data, depth + 1)
            elif action == "replace":
                out[k] = data.draw(_junk, label="junk")
        if data.draw(st.booleans(), label="add"):
            out[data.draw(st.text(max_size=4) | st.integers(0, 5), label="new key")] = data.draw(_junk, label="junk")
        return out
    if isinstance(state, list):
        return [_mutated_state(v, data, depth + 1) for v in state]
    return state


@pytest.mark.parametrize("name", [n for n in OPT_NAMES if not n.startswith("example")])
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_optimizer_hostile_state_dict(name, data):
    """Loading a damaged state dict raises a PlaitError, or loads and keeps stepping cleanly:
    finite parameters of unchanged shape and dtype, and, when nothing was damaged, exactly the
    parameters of an uninterrupted run."""
    params = _params()
    opt = _optimizer(name, params)
    for p, g in zip(params, _grads(0)):
        p.grad = g
    opt.step()
    original = opt.state_dict()
    hostile = _mutated_state(original, data)
    fresh_params = [Param(p.data.copy()) for p in params]
    fresh = _optimizer(name, fresh_params)
    try:
        fresh.load_state_dict(hostile)
    except PlaitError:
        return
    for ps, o in ((fresh_params, fresh), (params, opt)):
        for p, g in zip(ps, _grads(1)):
            p.grad = g
        o.step()
    for p, ref in zip(fresh_params, params):
        assert p.data.shape == ref.data.shape and p.data.dtype == ref.data.dtype
        assert np.all(np.isfinite(p.data)), "a loaded state made the parameters non-finite"
    if _same_state(hostile, original):
        for p, ref in zip(fresh_params, params):
            np.testing.assert_array_equal(p.data, ref.data)


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if hasattr(a, "shape") or hasattr(b, "shape"):
        return hasattr(a, "shape") and hasattr(b, "shape") and np.array_equal(a, b)
    return type(a) is type(b) and a == b


# -- metrics ----------------------------------------------------------------------------------
# name -> (constructor args, pred, target, class-index target?)
METRICS: dict[str, tuple[dict[str, Any], np.ndarray, np.ndarray, bool]] = {
    "accuracy": ({}, _logits(6, 4), _ids(4, 6), True),
    "f1": ({"num_classes": 4}, _logits(6, 4), _ids(4, 6), True),
    "mae": ({}, _logits(6, 3), _logits(3, 6).T.copy(), False),
    "mse": ({}, _logits(6, 3), _logits(3, 6).T.copy(), False),
    "perplexity": ({}, _logits(2, 3, 5), _ids(5, 2, 3), True),
    "precision": ({"num_classes": 4}, _logits(6, 4), _ids(4, 6), True),
    "recall": ({"num_classes": 4}, _logits(6, 4), _ids(4, 6), True),
    "top_k_accuracy": ({"k": 2}, _logits(6, 4), _ids(4, 6), True),
}
METRIC_NAMES = sorted(n for n in METRICS if n in registry.metrics)


def test_every_registered_metric_has_a_case():
    missing = sorted(set(_first_party(registry.metrics)) - set(METRICS))
    assert not missing, f"registered metrics without a robustness case: {missing}"


def _metric_value(name: str, pred: Any, target: Any) -> float:
    m = registry.build({"type": name, **METRICS[name][0]}, kind="metrics")
    m.update(pred, target)
    return m.compute()


def _metric_error(name: str, pred: Any, target: Any, errors: tuple = (ShapeError, DTypeError)) -> None:
    m = registry.build({"type": name, **METRICS[name][0]}, kind="metrics")
    with pytest.raises(errors) as err:
        m.update(pred, target)
    assert type(m).__name__ in str(err.value) or name in str(err.value).lower(), err.value


@pytest.mark.parametrize("name", METRIC_NAMES)
@pytest.mark.parametrize("which", ["broadcastable", "too long", "extra axis", "transposed"])
def test_metric_mismatched_target(name, which):
    _, pred, target, _ = METRICS[name]
    bad = {"broadcastable": target[:1], "too long": np.concatenate([target, target]),
           "extra axis": target[..., None, None], "transposed": target.T}[which]
    if bad.shape == target.shape:
        pytest.skip("the same shape for a 1-D target")
    if which == "extra axis" and target.shape == pred.shape:  # (N, C, 1, 1) for (N, C): same numbers, fine
        m = registry.build({"type": name, **METRICS[name][0]}, kind="metrics")
        try:
            m.update(pred, bad)
        except ShapeError as err:
            assert type(m).__name__ in str(err)
            return
        assert m.compute() == pytest.approx(_metric_value(name, pred, target), rel=1e-12)
        return
    _metric_error(name, pred, bad)


@pytest.mark.parametrize("name", METRIC_NAMES)
@pytest.mark.parametrize("dtype", ["complex64", "object", "str"])
def test_metric_wrong_pred_dtype_raises(name, dtype):
    _, pred, target, _ = METRICS[name]
    _metric_error(name, BAD[dtype](pred), target)


@pytest.mark.parametrize("name", [n for n in METRIC_NAMES if METRICS[n][3]])
@pytest.mark.parametrize("bad_id", [10**6, -3])
def test_metric_class_id_out_of_range(name, bad_id):
    """Raises naming the metric; accuracies may instead count the sample as a miss."""
    _, pred, target, _ = METRICS[name]
    target = target.copy()
    target.flat[0] = bad_id
    if name in ("accuracy", "top_k_accuracy"):
        try:
            value = _metric_value(name, pred, target)
        except PlaitError:
            return
        ok = target.copy()
        ok.flat[0] = (int(np.argmax(pred.reshape(-1, pred.shape[-1])[0])) + 1) % pred.shape[-1]  # a surely-wrong id
        assert value <= _metric_value(name, pred, ok.astype(target.dtype)) + 1e-12 + 1.0 / target.size
        return
    _metric_error(name, pred, target, errors=(PlaitError,))


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_metric_empty_batch_changes_nothing(name):
    _, pred, target, _ = METRICS[name]
    m = registry.build({"type": name, **METRICS[name][0]}, kind="metrics")
    m.update(pred, target)
    before = m.compute()
    try:
        m.update(pred[:0], target[:0])
    except ShapeError as err:
        assert type(m).__name__ in str(err)
        return
    assert m.compute() == pytest.approx(before, rel=1e-12)


@pytest.mark.parametrize("name", METRIC_NAMES)
@pytest.mark.parametrize("how", ["strided", "fortran", "read-only"])
def test_metric_unusual_layouts_match(name, how):
    _, pred, target, _ = METRICS[name]
    p, t = _odd_layout(pred, how), _odd_layout(target, how)
    assert _metric_value(name, p, t) == pytest.approx(_metric_value(name, pred, target), rel=1e-6)
    assert np.array_equal(p, pred) and np.array_equal(t, target)


_JUNK = ["abc", -3, None, 2.5, 2**40, [1, 2], {"type": "no_such"}, True, float("nan")]


@pytest.mark.parametrize("kind, name", [("losses", n) for n in LOSS_NAMES] + [("metrics", n) for n in METRIC_NAMES])
def test_hostile_constructor_arguments_through_the_registry(kind, name):
    """Config-driven construction: a PlaitError, or an object that still works on valid input."""
    table = LOSSES if kind == "losses" else METRICS
    args, pred, target, _ = table[name]
    keys = list(args) + (["reduction"] if kind == "losses" else [])
    for key in keys:
        for junk in _JUNK:
            try:
                obj = registry.build({"type": name, **args, key: junk}, kind=kind)
            except PlaitError:
                continue
            # built: it must work on valid input (a finite value, the same as a fresh build
            # when the junk equals the valid argument)
            if kind == "losses":
                value = obj(pred, target)
            else:
                obj.update(pred, target)
                value = obj.compute()
            assert np.all(np.isfinite(np.asarray(to_numpy(value), dtype=np.float64))), (key, junk, value)


# -- every loss, optimizer and metric on the device -----------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("name", PAIR_NAMES)
def test_pair_loss_on_the_device_matches_the_cpu(name):
    _, x1, x2, y = PAIR_LOSSES[name]
    fn = _pair(name)
    value, grads = fn(x1, x2, y), fn.backward()
    value_d = fn(*(to_device(a, "cuda") for a in (x1, x2, y)))
    grads_d = fn.backward()
    assert isinstance(value_d, float) and value_d == pytest.approx(value, rel=1e-5)
    for g, g_d in zip(grads, grads_d):
        assert device_of(g_d) == "cuda"
        np.testing.assert_allclose(to_numpy(g_d), g, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_on_the_device_matches_the_cpu(name):
    _, pred, target, _ = LOSSES[name]
    value, grad = _loss_and_grad(name, pred, target)
    value_d, grad_d = _loss_and_grad(name, to_device(pred, "cuda"), to_device(target, "cuda"))
    assert isinstance(value_d, float) and device_of(grad_d) == "cuda"
    assert value_d == pytest.approx(value, rel=1e-5)
    np.testing.assert_allclose(to_numpy(grad_d), grad, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.parametrize("name", OPT_NAMES)
def test_optimizer_on_the_device_matches_the_cpu(name):
    host, device = _params(), [Param(to_device(p.data, "cuda")) for p in _params()]
    opts = _optimizer(name, host), _optimizer(name, device)
    for step in range(3):
        for p, q, g in zip(host, device, _grads(step)):
            p.grad, q.grad = g, to_device(g, "cuda")
        for opt in opts:
            opt.step()
    for p, q in zip(host, device):
        assert device_of(q.data) == "cuda"
        np.testing.assert_allclose(to_numpy(q.data), p.data, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_metric_on_the_device_matches_the_cpu(name):
    _, pred, target, _ = METRICS[name]
    assert _metric_value(name, to_device(pred, "cuda"), to_device(target, "cuda")) == pytest.approx(
        _metric_value(name, pred, target), rel=1e-6)
