"""The leaf-layer contract, walked over the registry: every first-party leaf layer and loss
names a pure maths pair ``<op>_forward`` / ``<op>_backward`` in ``plait.layers._<family>_maths``,
and each pair is checked here against central finite differences in float64, called
directly (no Module, no Param): the input gradient and every parameter gradient.

Composites (containers, attention, transformer blocks, the recurrent stack) write their
own backward; the recurrent layers' cell pairs are checked the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from plait.core import enable_grad, manual_seed, registry
from plait.core.testing import numerical_gradient

COMPOSITES = {
    "sequential", "residual", "multi_head_attention", "feed_forward", "transformer_encoder_layer",
    "transformer_decoder_layer", "grouped_query_attention", "multihead_attention", "transformer_encoder",
    "transformer_decoder", "rnn", "lstm", "gru",
}
MATHS_MODULE = re.compile(r"^plait\.layers\._[a-z]+_maths$")


def _away_from_kinks(x: np.ndarray, kinks: tuple[float, ...] = (0.0,)) -> np.ndarray:
    for k in kinks:
        close = np.abs(x - k) < 0.05
        x[close] += 0.1
    return x


def _distinct(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values without ties (max pooling and L1 pick one element; ties have no derivative)."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)


@dataclass
class Case:
    kwargs: dict[str, Any]
    x: Callable[[np.random.Generator], np.ndarray]
    options: Callable[[Any, np.ndarray], dict[str, Any]] | None = None
    training: bool = True
    seeded: bool = False  # reseed before every forward (dropout draws the same mask)
    extra: dict[str, Any] = field(default_factory=dict)


def _normal(*shape: int, kinks: tuple[float, ...] = ()) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: _away_from_kinks(rng.standard_normal(shape), kinks)


LAYER_CASES: dict[str, list[Case]] = {
    "relu": [Case({}, _normal(3, 4, kinks=(0.0,)))],
    "leaky_relu": [Case({"negative_slope": 0.2}, _normal(3, 4, kinks=(0.0,)))],
    "elu": [Case({"alpha": 0.7}, _normal(3, 4, kinks=(0.0,)))],
    "selu": [Case({}, _normal(3, 4, kinks=(0.0,)))],
    "gelu": [Case({}, _normal(3, 4)), Case({"approximate": "tanh"}, _normal(3, 4))],
    "silu": [Case({}, _normal(3, 4))],
    "mish": [Case({}, _normal(3, 4))],
    "hardtanh": [Case({"min_val": -0.5, "max_val": 0.8}, _normal(3, 4, kinks=(-0.5, 0.8)))],
    "sigmoid": [Case({}, _normal(3, 4))],
    "tanh": [Case({}, _normal(3, 4))],
    "softplus": [Case({"beta": 2.0, "threshold": 1.5}, _normal(3, 4, kinks=(0.75,)))],
    "softmax": [Case({"dim": 1}, _normal(2, 4, 3))],
    "log_softmax": [Case({"dim": -1}, _normal(2, 3, 4))],
    "relu6": [Case({}, lambda rng: _away_from_kinks(rng.standard_normal((3, 4)) * 4, (0.0, 6.0)))],
    "prelu": [Case({}, _normal(3, 4, kinks=(0.0,))), Case({"num_parameters": 3}, _normal(2, 3, 4, kinks=(0.0,)))],
    "hardswish": [Case({}, lambda rng: _away_from_kinks(rng.standard_normal((3, 4)) * 3, (-3.0, 3.0)))],
    "hardsigmoid": [Case({}, lambda rng: _away_from_kinks(rng.standard_normal((3, 4)) * 3, (-3.0, 3.0)))],
    "log_sigmoid": [Case({}, _normal(3, 4))],
    "softsign": [Case({}, _normal(3, 4))],
    "celu": [Case({"alpha": 0.7}, _normal(3, 4, kinks=(0.0,)))],
    "glu": [Case({"dim": 1}, _normal(2, 4, 3)), Case({}, _normal(3, 6))],
    "linear": [Case({"in_features": 4, "out_features": 3}, _normal(2, 5, 4)),
               Case({"in_features": 4, "out_features": 2, "bias": False}, _normal(3, 4))],
    "identity": [Case({}, _normal(2, 3))],
    "dropout": [Case({"p": 0.4}, _normal(4, 5), seeded=True)],
    "flatten": [Case({}, _normal(2, 3, 4))],
    "unflatten": [Case({"dim": 1, "unflattened_size": (2, -1)}, _normal(3, 4))],
    "reshape": [Case({"shape": (2, 2)}, _normal(3, 4))],
    "embedding": [Case({"num_embeddings": 5, "embedding_dim": 3}, lambda rng: np.array([[0, 1, 2, 2], [4, 0, 1, 3]])),
                  # the padding row gets no gradient by design (torch's rule), so here it is not looked up
                  Case({"num_embeddings": 5, "embedding_dim": 3, "padding_idx": 1},
                       lambda rng: np.array([[0, 4, 2, 2], [4, 0, 3, 3]]))],
    "learned_positional_embedding": [Case({"num_positions": 7, "embedding_dim": 4}, _normal(2, 3, 4),
                                          options=lambda layer, x: {"offset": 2})],
    "sinusoidal_positional_embedding": [Case({"num_positions": 7, "embedding_dim": 4}, _normal(2, 3, 4),
                                             options=lambda layer, x: {"rows": layer._rows(x, 1, 3)})],
    "rotary_embedding": [Case({"dim": 4, "max_position": 8}, _normal(2, 3, 4),
                              options=lambda layer, x: dict(zip(("cos", "sin"), layer.tables(2, 3))))],
    "layer_norm": [Case({"normalized_shape": (3, 4)}, _normal(2, 3, 4)),
                   Case({"normalized_shape": 4, "bias": False}, _normal(3, 4))],
    "rms_norm": [Case({"normalized_shape": 4, "eps": 1e-6}, _normal(2, 3, 4))],
    "group_norm": [Case({"num_groups": 2, "num_channels": 4}, _normal(2, 4, 3))],
    "batch_norm1d": [Case({"num_features": 3}, _normal(4, 3, 2)),
                     Case({"num_features": 3}, _normal(4, 3), training=False)],
    "batch_norm2d": [Case({"num_features": 2}, _normal(3, 2, 2, 2)),
                     Case({"num_features": 2, "affine": False}, _normal(3, 2, 2, 2))],
    "conv1d": [Case({"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "groups": 2},
                    _normal(2, 2, 7)),
               Case({"in_channels": 2, "out_channels": 3, "kernel_size": 2, "dilation": 2}, _normal(2, 2, 6)),
               Case({"in_channels": 2, "out_channels": 2, "kernel_size": 3, "padding": 3,
                     "padding_mode": "circular"}, _normal(2, 2, 4))],
    "conv2d": [Case({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}, _normal(2, 2, 4, 5)),
               Case({"in_channels": 4, "out_channels": 2, "kernel_size": (2, 3), "stride": 2, "groups": 2,
                     "bias": False}, _normal(2, 4, 5, 6)),
               Case({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 2,
                     "padding_mode": "reflect"}, _normal(2, 2, 5, 4)),
               Case({"in_channels": 2, "out_channels": 2, "kernel_size": (2, 3), "padding": "same",
                     "padding_mode": "replicate"}, _normal(1, 2, 4, 5))],
    "conv_transpose2d": [Case({"in_channels": 4, "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1,
                               "output_padding": 1, "groups": 2}, _normal(2, 4, 3, 3))],
    "max_pool1d": [Case({"kernel_size": 3, "stride": 2, "padding": 1}, lambda rng: _distinct((2, 2, 7), rng))],
    "max_pool2d": [Case({"kernel_size": 2}, lambda rng: _distinct((2, 2, 4, 4), rng)),
                   Case({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                        lambda rng: _distinct((1, 2, 5, 6), rng))],
    "avg_pool2d": [Case({"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
                        _normal(2, 2, 5, 5))],
    "adaptive_avg_pool2d": [Case({"output_size": (2, 3)}, _normal(2, 2, 5, 7)),
                            Case({"output_size": 2}, _normal(1, 2, 4, 4))],
    "avg_pool1d": [Case({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
                        _normal(2, 2, 8))],
    "adaptive_max_pool1d": [Case({"output_size": 3}, lambda rng: _distinct((2, 2, 7), rng))],
    "adaptive_max_pool2d": [Case({"output_size": (2, 3)}, lambda rng: _distinct((2, 2, 5, 7), rng)),
                            Case({"output_size": (4, 5)}, lambda rng: _distinct((1, 2, 3, 4), rng))],
    "instance_norm1d": [Case({"num_features": 3, "affine": True}, _normal(2, 3, 5)),
                        Case({"num_features": 3, "affine": True, "track_running_stats": True}, _normal(2, 3, 5),
                             training=False)],
    "instance_norm2d": [Case({"num_features": 2}, _normal(2, 2, 3, 3)),
                        Case({"num_features": 2, "affine": True}, _normal(2, 3, 3))],
}


def _target(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if kind == "ids":
        return rng.standard_normal((6, 4)), np.array([0, 3, -100, 1, 1, 2])
    if kind == "probs":
        t = rng.uniform(size=(5, 4))
        return rng.standard_normal((5, 4)), t / t.sum(axis=1, keepdims=True)
    if kind == "logp":
        x = rng.standard_normal((6, 4))
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True)), np.array([0, 3, -100, 1, 1, 2])
    if kind == "unit":
        return rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(size=(3, 4))
    if kind == "l1":
        x = _distinct((3, 4), rng)
        return x, x + _away_from_kinks(rng.standard_normal((3, 4)))
    return rng.standard_normal((3, 4)), rng.standard_normal((3, 4))


LOSS_CASES: dict[str, list[tuple[dict[str, Any], str]]] = {
    "cross_entropy": [({}, "ids"), ({"weight": [1.0, 2.0, 0.5, 1.5], "label_smoothing": 0.1}, "ids"),
                      ({"label_smoothing": 0.2, "weight": [1.0, 2.0, 0.5, 1.5]}, "probs")],
    "sequence_cross_entropy": [({}, "ids"), ({"weight": [1.0, 2.0, 0.5, 1.5], "label_smoothing": 0.1}, "ids")],
    "nll": [({"weight": [1.0, 2.0, 0.5, 1.5]}, "logp")],
    "bce": [({"weight": [1.0, 2.0, 0.5, 1.5]}, "unit")],
    "bce_with_logits": [({"weight": [1.0, 2.0, 0.5, 1.5], "pos_weight": [0.5, 1.0, 2.0, 3.0]}, "unit"), ({}, "normal")],
    "mse": [({}, "normal")],
    "l1": [({}, "l1")],
    "huber": [({"delta": 0.7}, "l1")],
    "smooth_l1": [({"beta": 0.7}, "l1"), ({"beta": 0.0}, "l1")],
    "kl_div": [({}, "probs"), ({"log_target": True, "reduction": "batchmean"}, "normal")],
}


def _pair_inputs(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two predictions and a +-1 target; ranking hinges kept away from their kink."""
    if name == "cosine_embedding":
        return rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), np.array([1.0, -1.0, -1.0, 1.0, -1.0])
    x1, y = rng.standard_normal(6), np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    return x1, x1 + _away_from_kinks(rng.standard_normal(6), (-0.3, 0.3)), y


# two-input losses: backward returns (dx1, dx2), each checked
PAIR_LOSS_CASES: dict[str, list[dict[str, Any]]] = {
    "cosine_embedding": [{}, {"margin": -0.2}],
    "margin_ranking": [{"margin": 0.3}],
}


def _first_party(table: Any) -> list[str]:
    return [n for n in table.names() if table.get(n).__module__.startswith("plait.layers.")]


def _compare(what: str, analytic: Any, numeric: np.ndarray) -> None:
    np.testing.assert_allclose(np.asarray(analytic), numeric, rtol=1e-5, atol=1e-6, err_msg=what)


def pair_gradcheck(fwd: Callable, bwd: Callable, x: np.ndarray, params: list[Any], options: dict[str, Any], *,
                   seeded: bool = False, target: Any = None) -> None:
    """Central differences of f = sum(y * R) w.r.t. x (when float) and every parameter, against the pair."""
    inputs = (x,) if target is None else (x, target)

    def run() -> Any:
        if seeded:
            manual_seed(0)
        return fwd(*inputs, *params, **options)

    out = run()
    y, ctx = out[0], out[-1]
    r = np.random.default_rng(1).standard_normal(np.shape(y))
    grads = bwd(r.copy(), ctx, *params, need_dx=True)
    assert len(grads) == 1 + len(params), f"{bwd.__name__} must return (dx, *param_grads)"

    def f() -> float:
        return float((run()[0] * r).sum())

    checked = [("dx", x, grads[0])] if x.dtype.kind == "f" else []
    checked += [(f"param {k}", p, g) for k, (p, g) in enumerate(zip(params, grads[1:])) if p is not None]
    for what, array, analytic in checked:
        assert analytic is not None, f"{bwd.__name__}: no gradient for {what}"
        numeric = numerical_gradient(f, array, list(np.ndindex(array.shape)), 1e-6)
        _compare(f"{fwd.__name__} {what}", np.asarray(analytic).reshape(-1), numeric)


def _op_of(fwd: Callable, bwd: Callable) -> str:
    assert fwd.__name__.endswith("_forward") and bwd.__name__.endswith("_backward"), (fwd.__name__, bwd.__name__)
    op = fwd.__name__[: -len("_forward")]
    assert bwd.__name__ == f"{op}_backward", f"pair names differ: {fwd.__name__} / {bwd.__name__}"
    assert MATHS_MODULE.match(fwd.__module__) and fwd.__module__ == bwd.__module__, fwd.__module__
    return op


def test_every_first_party_leaf_layer_names_a_checked_pair():
    names = _first_party(registry.layers)
    assert len(names) >= 40
    for name in names:
        cls = registry.layers.get(name)
        if name in COMPOSITES:
            assert cls.maths is None, f"{name} is a composite: it writes its own backward"
            continue
        assert cls.maths is not None, f"{name}: a leaf layer must name its maths pair"
        assert "backward" not in cls.__dict__ and "forward_maths" not in cls.__dict__, name
        _op_of(*cls.maths)
        assert name in LAYER_CASES, f"{name}: no finite-difference case for its pair"
    assert set(LAYER_CASES) | COMPOSITES == set(names)


def test_every_first_party_loss_names_a_checked_pair():
    names = _first_party(registry.losses)
    for name in names:
        cls = registry.losses.get(name)
        _op_of(*cls.maths)
        assert "backward" not in cls.__dict__, name
        assert name in LOSS_CASES or name in PAIR_LOSS_CASES, f"{name}: no finite-difference case for its pair"


def _build64(cls: type, kwargs: dict[str, Any], rng: np.random.Generator) -> Any:
    layer = cls(**kwargs).astype(np.float64)
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return layer


@pytest.mark.parametrize("name,k", [(n, k) for n, cases in LAYER_CASES.items() for k in range(len(cases))])
def test_layer_pair_against_finite_differences(name, k):
    case = LAYER_CASES[name][k]
    rng = np.random.default_rng(k)
    cls = registry.layers.get(name)
    layer = _build64(cls, case.kwargs, rng).train(case.training)
    x = layer.check_input(case.x(rng))
    options = case.options(layer, x) if case.options else layer.options(x)
    params = [None if (p := layer.__dict__["_params"].get(n)) is None else p.data for n in cls.maths_params]
    pair_gradcheck(*cls.maths, x, params, options, seeded=case.seeded)


@pytest.mark.parametrize("name,k", [(n, k) for n, cases in LOSS_CASES.items() for k in range(len(cases))])
def test_loss_pair_against_finite_differences(name, k):
    kwargs, kind = LOSS_CASES[name][k]
    loss = registry.losses.get(name)(**kwargs)
    x, target = _target(kind, np.random.default_rng(k))
    fwd, bwd = loss.maths

    def losses_fwd(x, target, **options):
        losses, _, ctx = fwd(x, target, **options)
        return losses, ctx

    losses_fwd.__name__ = fwd.__name__
    pair_gradcheck(losses_fwd, bwd, x, [], loss.options(x), target=target)


@pytest.mark.parametrize("name,k", [(n, k) for n, cases in PAIR_LOSS_CASES.items() for k in range(len(cases))])
def test_pair_loss_pair_against_finite_differences(name, k):
    loss = registry.losses.get(name)(**PAIR_LOSS_CASES[name][k])
    x1, x2, y = _pair_inputs(name, np.random.default_rng(k))
    fwd, bwd = loss.maths
    _op_of(fwd, bwd)
    options = loss.options(x1)
    r = np.random.default_rng(1).standard_normal(fwd(x1, x2, y, **options)[0].shape)
    grads = bwd(r.copy(), fwd(x1, x2, y, **options)[2])
    assert len(grads) == 2, f"{bwd.__name__} must return (dx1, dx2)"

    def f() -> float:
        return float((fwd(x1, x2, y, **options)[0] * r).sum())

    for what, array, analytic in (("dx1", x1, grads[0]), ("dx2", x2, grads[1])):
        numeric = numerical_gradient(f, array, list(np.ndindex(array.shape)), 1e-6)
        _compare(f"{fwd.__name__} {what}", np.asarray(analytic).reshape(-1), numeric)


CELLS = {"rnn": ({"nonlinearity": "tanh"}, 1), "lstm": ({}, 2), "gru": ({}, 1)}


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_recurrent_cell_pair_against_finite_differences(name, reverse):
    """Each recurrent layer owns its cell pair; x, the initial state and all four weights."""
    cls = registry.layers.get(name)
    fwd, bwd = cls.cell
    assert _op_of(fwd, bwd) == name
    options, n_states = CELLS[name]
    rng = np.random.default_rng(3)
    T, B, F, H = 4, 2, 3, 2
    gates = cls.gates
    x = rng.standard_normal((T, B, F))
    params = [rng.standard_normal(s) * 0.7 for s in ((gates * H, F), (gates * H, H), (gates * H,), (gates * H,))]
    state = tuple(rng.standard_normal((B, H)) for _ in range(n_states))
    rh = rng.standard_normal((T, B, H))
    rf = tuple(rng.standard_normal((B, H)) for _ in range(n_states))

    def f() -> float:
        (hs, finals), _ = fwd(x, *params, state=state, reverse=reverse, **options)
        return float((hs * rh).sum() + sum((a * b).sum() for a, b in zip(finals, rf)))

    (_, _), ctx = fwd(x, *params, state=state, reverse=reverse, **options)
    (dx, dstate), *dparams = bwd((rh, rf), ctx, *params)
    for what, array, analytic in [("dx", x, dx), *[(f"dstate{i}", s, d) for i, (s, d) in enumerate(zip(state, dstate))],
                                  *[(f"dparam{i}", p, d) for i, (p, d) in enumerate(zip(params, dparams))]]:
        numeric = numerical_gradient(f, array, list(np.ndindex(array.shape)), 1e-6)
        _compare(f"{name} {what}", np.asarray(analytic).reshape(-1), numeric)


def _arrays_in(obj: Any, seen: set[int] | None = None) -> list[np.ndarray]:
    """Every NumPy array reachable from ``obj`` through dicts, lists, tuples and Params."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _arrays_in(v, seen)]
    if isinstance(obj, (list, tuple)):
        return [a for v in obj for a in _arrays_in(v, seen)]
    if hasattr(obj, "__slots__") and hasattr(obj, "data"):  # a Param: its data only (its grad is checked)
        return _arrays_in(obj.data, seen)
    return []


@pytest.mark.parametrize("name,k", [(n, k) for n, cases in LAYER_CASES.items() for k in range(len(cases))
                                    if registry.layers.get(n).maths_params])
def test_parameter_gradients_kept_without_a_copy_alias_nothing(name, k):
    """``Module.backward`` hands each pair's parameter gradients to ``Param.accumulate`` as owned
    (kept without a copy when fresh). Over two steps, every ``grad`` must equal the pair's
    result and share memory with nothing else: not dy, x, y or dx, not a parameter, another
    gradient or anything the layer holds."""
    case = LAYER_CASES[name][k]
    rng = np.random.default_rng(k)
    cls = registry.layers.get(name)
    layer = _build64(cls, case.kwargs, rng).train(case.training)
    x = layer.check_input(case.x(rng))
    for step in range(2):
        layer.zero_grad()
        if case.seeded:
            manual_seed(0)
        with enable_grad():  # eval-mode cases keep their cache too
            y = layer(x)
        dy = np.random.default_rng(step).standard_normal(np.shape(y))
        dx = layer.backward(dy)
        options = layer.options(x)  # what the module's forward used
        params = [None if (p := layer.__dict__["_params"].get(n)) is None else p.data for n in cls.maths_params]
        if case.seeded:
            manual_seed(0)
        want = cls.maths[1](dy.copy(), cls.maths[0](x, *params, **options)[1], *params, need_dx=True)[1:]
        found = [layer.__dict__["_params"].get(n) for n in cls.maths_params]
        grads = [p.grad for p in found if p is not None and p.requires_grad]
        for p, w in zip(found, want):
            if p is not None and p.requires_grad:
                np.testing.assert_allclose(p.grad, w, rtol=1e-12, atol=1e-12, err_msg=f"{name} {p.name}")
        others = [x, y, dy, *([dx] if isinstance(dx, np.ndarray) else []), *_arrays_in(layer.__dict__)]
        for i, g in enumerate(grads):
            assert not any(np.shares_memory(g, a) for a in others), f"{name}: a gradient aliases a live array"
            assert not any(np.shares_memory(g, h) for h in grads[i + 1:]), f"{name}: two gradients share memory"
