"""Every registered layer, driven from the registry, against bad and unusual input.

For each name in ``registry.layers`` (first-party and the example plugin) the table CASES
says how to build it and what to feed it; a registered name without an entry FAILS
``test_every_registered_layer_has_a_case``, so a new layer cannot slip past these checks.

Per layer: config() round trip through registry.build (same output with the same
weights); wrong rank, wrong feature size, wrong dtype (int, bool, complex, object, str),
empty batch, non-contiguous and read-only inputs, mis-shaped output gradients, and
backward without forward. Each either raises ShapeError/DTypeError naming the layer or
gives the correct result (compared with the contiguous float input) — never a numpy
traceback, never silent broadcasting, never a modified input.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from plait.core import Param, device_of, manual_seed, registry, to_device, to_numpy
from plait.core.errors import DTypeError, PlaitError, ShapeError


@dataclass
class Case:
    args: dict[str, Any]
    shape: tuple[int, ...]  # the input's shape
    feature_axis: int | None = None  # an axis whose size the layer fixes (None: any size)
    batch_independent: bool = True  # leading axis: f(x[:k]) == f(x)[:k]
    rank_free: bool = False  # any rank is a valid input (reshapes)
    ints: bool = False  # integer ids instead of floats (Embedding)
    any_dtype: bool = False  # reshapes: integer inputs are reshaped, not rejected
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra forward arguments (arrays built by name)
    names: tuple[str, ...] = ()  # names its errors may carry (default: the class name); containers name the child
    elementwise: bool = False  # each output element depends on one input element: any shape is valid
    passthrough: bool = False  # returns its input unchanged, whatever it is (Identity)


def _acts(**extra: Any) -> Case:
    return Case(extra, (3, 4), elementwise=True)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# whole-input references for layers whose result on an unusual rank is still defined
REFERENCES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "softmax": _softmax,
    "log_softmax": lambda x: np.log(_softmax(x.astype(np.float64))),
    "glu": lambda x: np.split(x, 2, axis=-1)[0] / (1 + np.exp(-np.split(x, 2, axis=-1)[1])),
}


CASES: dict[str, Case] = {
    "adaptive_avg_pool2d": Case({"output_size": 2}, (2, 3, 5, 5)),
    "adaptive_max_pool1d": Case({"output_size": 2}, (2, 3, 5)),
    "adaptive_max_pool2d": Case({"output_size": 2}, (2, 3, 5, 5)),
    "avg_pool1d": Case({"kernel_size": 2}, (2, 3, 6)),
    "avg_pool2d": Case({"kernel_size": 2}, (2, 3, 4, 4)),
    "batch_norm1d": Case({"num_features": 3}, (4, 3, 5), feature_axis=1, batch_independent=False),
    "batch_norm2d": Case({"num_features": 3}, (4, 3, 2, 2), feature_axis=1, batch_independent=False),
    "conv1d": Case({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}, (2, 2, 6), feature_axis=1),
    "conv2d": Case({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}, (2, 2, 5, 5), feature_axis=1),
    "conv_transpose2d": Case({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2}, (2, 2, 3, 3),
                             feature_axis=1),
    "dropout": _acts(p=0.5),
    "elu": _acts(),
    "celu": _acts(alpha=0.5),
    "embedding": Case({"num_embeddings": 7, "embedding_dim": 4}, (2, 3), ints=True, elementwise=True),
    "example_scale": Case({"features": 4}, (3, 4), feature_axis=-1, names=("Scale",)),
    "feed_forward": Case({"embed_dim": 4, "hidden_dim": 8}, (2, 3, 4), feature_axis=-1, names=("FeedForward", "Linear")),
    "flatten": Case({}, (2, 3, 4), rank_free=True, any_dtype=True),
    "gelu": _acts(),
    "glu": Case({"dim": -1}, (3, 4)),
    "group_norm": Case({"num_groups": 2, "num_channels": 4}, (2, 4, 3), feature_axis=1),
    "gru": Case({"input_size": 3, "hidden_size": 4, "batch_first": True}, (2, 5, 3), feature_axis=-1),
    "hardsigmoid": _acts(),
    "hardswish": _acts(),
    "hardtanh": _acts(),
    "identity": Case({}, (3, 4), rank_free=True, passthrough=True),
    "instance_norm1d": Case({"num_features": 3, "affine": True}, (2, 3, 5), feature_axis=1),
    "instance_norm2d": Case({"num_features": 3, "affine": True}, (2, 3, 4, 4), feature_axis=1),
    "layer_norm": Case({"normalized_shape": 4}, (2, 3, 4), feature_axis=-1),
    "leaky_relu": _acts(negative_slope=0.1),
    "linear": Case({"in_features": 4, "out_features": 3}, (2, 3, 4), feature_axis=-1),
    "learned_positional_embedding": Case({"num_positions": 8, "embedding_dim": 4}, (2, 5, 4), feature_axis=-1),
    "log_sigmoid": _acts(),
    "log_softmax": Case({"dim": -1}, (3, 4)),
    "lstm": Case({"input_size": 3, "hidden_size": 4, "batch_first": True}, (2, 5, 3), feature_axis=-1),
    "max_pool1d": Case({"kernel_size": 2}, (2, 3, 6)),
    "max_pool2d": Case({"kernel_size": 2}, (2, 3, 4, 4)),
    "mish": _acts(),
    "grouped_query_attention": Case({"embed_dim": 8, "num_heads": 2}, (2, 5, 8), feature_axis=-1),
    "multi_head_attention": Case({"embed_dim": 8, "num_heads": 2}, (2, 5, 8), feature_axis=-1,
                                 names=("GroupedQueryAttention",)),
    "multihead_attention": Case({"embed_dim": 8, "num_heads": 2, "batch_first": True}, (2, 5, 8), feature_axis=-1,
                                kwargs={"key": (2, 3, 8), "value": (2, 3, 8)}),
    "prelu": Case({"num_parameters": 3, "init": 0.1}, (2, 3, 4), feature_axis=1),
    "relu": _acts(),
    "relu6": _acts(),
    "reshape": Case({"shape": [2, 2]}, (3, 4), rank_free=True, any_dtype=True),
    "residual": Case({"module": {"type": "linear", "in_features": 4, "out_features": 4}}, (3, 4), feature_axis=-1,
                     names=("Residual", "Linear")),
    "rms_norm": Case({"normalized_shape": 4}, (2, 3, 4), feature_axis=-1),
    "rnn": Case({"input_size": 3, "hidden_size": 4, "batch_first": True}, (2, 5, 3), feature_axis=-1),
    "rotary_embedding": Case({"dim": 4}, (2, 5, 4), feature_axis=-1),
    "selu": _acts(),
    "sequential": Case({"layers": [{"type": "linear", "in_features": 4, "out_features": 5}, {"type": "relu"}]},
                       (3, 4), feature_axis=-1, names=("Sequential", "Linear", "ReLU")),
    "sigmoid": _acts(),
    "silu": _acts(),
    "sinusoidal_positional_embedding": Case({"num_positions": 8, "embedding_dim": 4}, (2, 5, 4), feature_axis=-1),
    "softmax": Case({"dim": -1}, (3, 4)),
    "softplus": _acts(),
    "softsign": _acts(),
    "tanh": _acts(),
    "transformer_decoder": Case({"decoder_layer": {"type": "transformer_decoder_layer", "d_model": 8, "nhead": 2,
                                                   "dim_feedforward": 16, "dropout": 0.0, "batch_first": True},
                                 "num_layers": 2}, (2, 5, 8), feature_axis=-1, kwargs={"memory": (2, 3, 8)},
                                names=("TransformerDecoderLayer",)),
    "transformer_decoder_layer": Case({"d_model": 8, "nhead": 2, "dim_feedforward": 16, "dropout": 0.0,
                                       "batch_first": True}, (2, 5, 8), feature_axis=-1, kwargs={"memory": (2, 3, 8)}),
    "transformer_encoder": Case({"encoder_layer": {"type": "transformer_encoder_layer", "d_model": 8, "nhead": 2,
                                                   "dim_feedforward": 16, "dropout": 0.0, "batch_first": True},
                                 "num_layers": 2}, (2, 5, 8), feature_axis=-1, names=("TransformerEncoderLayer",)),
    "transformer_encoder_layer": Case({"d_model": 8, "nhead": 2, "dim_feedforward": 16, "dropout": 0.0,
                                       "batch_first": True}, (2, 5, 8), feature_axis=-1),
    "unflatten": Case({"dim": 1, "unflattened_size": [2, 2]}, (3, 4, 5), feature_axis=1, rank_free=True, any_dtype=True),
}


#: registered names kept for configs written before a rename: they build the renamed class
ALIASES = {"multi_head_attention": "grouped_query_attention"}


def _first_party(table: Any) -> list[str]:
    return [n for n in table.names() if table.origin(n).startswith("plait-")]


def test_every_registered_layer_has_a_case():
    missing = sorted(set(_first_party(registry.layers)) - set(CASES))
    assert not missing, f"registered layers without a robustness case in {__file__}: {missing}"


NAMES = sorted(n for n in CASES if n in registry.layers)


# -- helpers ------------------------------------------------------------------------------
def _build(name: str) -> Any:
    return registry.build({"type": name, **CASES[name].args})


def _names(name: str, layer: Any) -> tuple[str, ...]:
    return CASES[name].names or (type(layer).__name__,)


def _input(case: Case, shape: tuple[int, ...] | None = None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = case.shape if shape is None else shape
    if case.ints:
        return rng.integers(0, case.args["num_embeddings"], size=shape)
    return rng.standard_normal(shape).astype(np.float32)


def _kwargs(case: Case) -> dict[str, Any]:
    return {k: np.random.default_rng(1).standard_normal(v).astype(np.float32) for k, v in case.kwargs.items()}


def _main(out: Any) -> Any:
    """The primary output array (RNNs return ``out, state``)."""
    return out[0] if isinstance(out, tuple) else out


def _forward(layer: Any, case: Case, x: Any) -> Any:
    manual_seed(0)  # dropout draws the same mask every time
    return _main(layer(x, **_kwargs(case)))


def _backward(layer: Any, dy: Any) -> Any:
    grads = layer.backward(dy)
    return grads[0] if isinstance(grads, tuple) else grads


def _run(layer: Any, case: Case, x: Any) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
    """(output, input gradient, parameter gradients) for a fixed output gradient."""
    layer.zero_grad(set_to_none=True)
    y = _forward(layer, case, x)
    dy = np.random.default_rng(2).standard_normal(np.shape(y)).astype(y.dtype)
    dx = _backward(layer, dy)
    grads = {n: p.grad.copy() for n, p in layer.named_parameters() if p.grad is not None}
    return y, dx, grads


def _assert_clear(err: PlaitError, names: tuple[str, ...]) -> None:
    assert any(n in str(err) for n in names), f"the error does not name {' or '.join(names)}: {err}"


def _expect_error_or(name: str, layer: Any, x: Any, check: Callable[[np.ndarray], None], errors=(ShapeError,),
                     mention: str = "") -> None:
    """Forward raises one of ``errors`` naming the layer (and ``mention``), or its output passes ``check``."""
    case = CASES[name]
    snapshot = np.array(x, copy=True) if isinstance(x, np.ndarray) and x.dtype != object else None
    try:
        y = _forward(layer, case, x)
    except errors as err:
        _assert_clear(err, _names(name, layer))
        assert mention in str(err), f"the error does not mention {mention!r}: {err}"
        return
    except PlaitError as err:
        pytest.fail(f"{name}: expected {errors}, got {type(err).__name__}: {err}")
    if snapshot is not None:
        assert np.array_equal(snapshot, x), f"{name} modified its input"
    if case.passthrough:
        assert y is x, f"{name} should hand its input through unchanged"
        return
    check(y)


# -- config round trip ------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    layer = _build(name)
    cfg = layer.config()
    assert cfg["type"] == ALIASES.get(name, name)
    rebuilt = registry.build(cfg)
    assert type(rebuilt) is type(layer) and rebuilt.config() == cfg
    rebuilt.load_state_dict(layer.state_dict())
    x = _input(CASES[name])
    np.testing.assert_array_equal(_forward(rebuilt, CASES[name], x), _forward(layer, CASES[name], x))


# -- rank, feature size -------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("change", ["add leading axis", "drop leading axis", "flatten"])
def test_wrong_rank(name, change):
    case, layer = CASES[name], _build(name)
    x = _input(case)
    ref = _forward(layer, case, x)
    bad = {"add leading axis": x[None], "drop leading axis": x[0], "flatten": x.reshape(-1)}[change]

    def check(y: np.ndarray) -> None:
        if case.rank_free:
            return
        if name in REFERENCES:
            np.testing.assert_allclose(y, REFERENCES[name](bad), rtol=1e-5, atol=1e-6)
        elif case.elementwise and change == "flatten":
            np.testing.assert_allclose(y, ref.reshape(y.shape), rtol=1e-5, atol=1e-6)
        elif change == "add leading axis" and case.batch_independent:
            np.testing.assert_allclose(y, ref[None], rtol=1e-5, atol=1e-6)
        elif change == "drop leading axis" and case.batch_independent:
            np.testing.assert_allclose(y, ref[0], rtol=1e-5, atol=1e-6)
        else:
            pytest.fail(f"{name} accepted an input of shape {bad.shape} (expects {x.shape}) and gave {y.shape}")

    _expect_error_or(name, layer, bad, check, mention=str(bad.shape))


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].feature_axis is not None])
@pytest.mark.parametrize("delta", [1, -1])
def test_wrong_feature_size_raises(name, delta):
    case, layer = CASES[name], _build(name)
    shape = list(case.shape)
    shape[case.feature_axis] += delta
    with pytest.raises(ShapeError) as err:
        _forward(layer, case, _input(case, tuple(shape)))
    _assert_clear(err.value, _names(name, layer))
    message = str(err.value)  # names what was expected and what was given
    assert str(tuple(shape)) in message, f"the error does not give the shape {tuple(shape)}: {message}"
    expected = [str(case.shape[case.feature_axis]), str(tuple(case.args.get("unflattened_size", ())))]
    assert any(e in message for e in expected), f"the error does not give the expected size: {message}"


# -- dtypes -------------------------------------------------------------------------------
BAD_DTYPES = {
    "int32": lambda x: np.round(x * 3).astype(np.int32),
    "int64": lambda x: np.round(x * 3).astype(np.int64),
    "uint8": lambda x: np.abs(np.round(x * 3)).astype(np.uint8),
    "bool": lambda x: x > 0,
    "float16": lambda x: x.astype(np.float16),
    "complex64": lambda x: x.astype(np.complex64),
    "object": lambda x: x.astype(object),
    "str": lambda x: x.astype(str),
    "list": lambda x: x.tolist(),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", list(BAD_DTYPES))
def test_wrong_dtype(name, dtype):
    case, layer = CASES[name], _build(name)
    x = _input(case)
    if case.ints:  # Embedding: the ids are the input; other integer types are fine, anything else is wrong
        bad = x.astype(dtype) if dtype in ("int32", "int64", "uint8") else BAD_DTYPES[dtype](x.astype(np.float32) + 0.25)
    else:
        bad = BAD_DTYPES[dtype](x)

    def check(y: np.ndarray) -> None:
        arr = np.asarray(bad)
        if dtype == "list" and not case.ints:
            ok = arr.dtype.kind == "f"
        else:
            ok = (case.any_dtype and arr.dtype.kind in "biuf") or (case.ints and arr.dtype.kind in "iu")
        ok = ok or (dtype == "float16" and not case.ints)
        if not ok:
            pytest.fail(f"{name} accepted a {dtype} input and returned dtype {np.asarray(y).dtype}")
        if arr.dtype.kind != "f":
            ref = _forward(layer, case, arr.astype(np.float64) if not case.ints else arr)
            np.testing.assert_allclose(np.asarray(y, dtype=np.float64), np.asarray(ref, dtype=np.float64), rtol=1e-6)

    _expect_error_or(name, layer, bad, check, errors=(DTypeError,), mention=str(np.asarray(bad).dtype))


# -- empty batch, non-contiguous and read-only inputs -------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name):
    case, layer = CASES[name], _build(name)
    shape = (0, *case.shape[1:])
    kwargs = {k: (0, *v[1:]) for k, v in case.kwargs.items()}
    empty = _input(case, shape)
    full = _forward(_build(name), case, _input(case))
    try:
        manual_seed(0)
        y = _main(layer(empty, **{k: np.zeros(v, np.float32) for k, v in kwargs.items()}))
    except ShapeError as err:
        _assert_clear(err, _names(name, layer))
        return
    assert y.shape[0] == 0 and y.shape[1:] == full.shape[1:], f"{name}: empty batch gave shape {y.shape}"
    dx = _backward(layer, np.zeros_like(y))
    if dx is not None:
        assert np.shape(dx) == empty.shape
    for pname, p in layer.named_parameters():
        assert p.grad is None or np.all(p.grad == 0), f"{name}: {pname} got a gradient from an empty batch"


def _non_contiguous(x: np.ndarray, how: str) -> np.ndarray:
    if how == "strided":
        wide = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype)
        wide[..., ::2] = x
        view = wide[..., ::2]
    elif how == "fortran":
        view = np.asfortranarray(x)
    else:  # negative strides on the last axis
        view = np.ascontiguousarray(x[..., ::-1])[..., ::-1]
        assert view.strides[-1] < 0
    assert np.array_equal(view, x)
    return view


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("how", ["strided", "fortran", "negative", "read-only"])
def test_unusual_memory_layouts_give_the_same_result(name, how):
    case, layer = CASES[name], _build(name)
    x = _input(case)
    if how == "read-only":
        odd = x.copy()
        odd.setflags(write=False)
    else:
        odd = _non_contiguous(x, how)
        assert not odd.flags.c_contiguous or x.ndim < 2
    y0, dx0, g0 = _run(layer, case, x)
    y1, dx1, g1 = _run(layer, case, odd)
    np.testing.assert_allclose(y1, y0, rtol=1e-6, atol=1e-6)
    if dx0 is not None:
        np.testing.assert_allclose(dx1, dx0, rtol=1e-6, atol=1e-6)
    assert g1.keys() == g0.keys()
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-5, atol=1e-6)
    assert np.array_equal(odd, x), f"{name} modified its input"


# -- backward misuse ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward_raises(name):
    case, layer = CASES[name], _build(name)
    y = _forward(_build(name), case, _input(case))
    with pytest.raises(PlaitError, match=r"without a matching forward|before forward|no forward"):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("name", NAMES)
def test_backward_twice_raises(name):
    case, layer = CASES[name], _build(name)
    y = _forward(layer, case, _input(case))
    layer.backward(np.ones_like(y))
    with pytest.raises(PlaitError):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize(("name", "change"),
                         list(itertools.product(NAMES, ["batch of one (broadcastable)", "last axis longer",
                                                        "extra axis"])))
def test_misshaped_output_gradient_raises(name, change):
    case, layer = CASES[name], _build(name)
    y = _forward(layer, case, _input(case))
    if change == "batch of one (broadcastable)":
        dy = np.ones((1, *y.shape[1:]), y.dtype)
    elif change == "last axis longer":
        dy = np.ones((*y.shape[:-1], y.shape[-1] + 1), y.dtype)
    else:
        dy = np.ones((1, *y.shape), y.dtype)
    with pytest.raises(ShapeError) as err:
        layer.backward(dy)
    _assert_clear(err.value, _names(name, layer))


def test_param_refuses_a_broadcastable_gradient():
    """The last line of defence for every layer, first-party or plugin: Param.accumulate."""
    p = Param(np.zeros((3, 4), np.float32), name="weight")
    for bad in (np.ones((1, 4)), np.ones(4), np.ones((3, 1)), 1.0):
        with pytest.raises(ShapeError, match=r"Param\(weight.*cannot accumulate a gradient of shape"):
            p.accumulate(bad)
    assert p.grad is None
    p.accumulate(np.ones((3, 4)))
    assert np.all(p.grad == 1)


JUNK_ARGS = ["abc", -3, 0, None, 2.5, 2**40, [1, 2], {"type": "no_such_layer"}, True, float("nan")]


@pytest.mark.parametrize("name", NAMES)
def test_hostile_constructor_arguments_through_the_registry(name):
    """Config-driven construction (what a config.json does): a PlaitError, or a Module."""
    from plait.core import Module

    for key in CASES[name].args:
        for junk in JUNK_ARGS:
            try:
                built = registry.build({"type": name, **CASES[name].args, key: junk})
            except PlaitError:
                continue
            assert isinstance(built, Module), f"{name}({key}={junk!r}) built {built!r}"


def test_registry_build_refuses_a_nesting_bomb():
    config: dict = {"type": "identity"}
    for _ in range(5000):
        config = {"type": "residual", "module": config}
    with pytest.raises(PlaitError, match="nested too deeply"):
        registry.build(config)


# -- the same layers on the device ----------------------------------------------------------
def _run_on_device(layer: Any, case: Case, x: np.ndarray) -> tuple[Any, Any, dict[str, Any]]:
    """Like ``_run`` with the input, extra arguments and output gradient on the device."""
    layer.zero_grad(set_to_none=True)
    manual_seed(0)
    kwargs = {k: to_device(v, "cuda") for k, v in _kwargs(case).items()}
    y = _main(layer(to_device(x, "cuda"), **kwargs))
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(y.dtype)
    dx = _backward(layer, to_device(dy, "cuda"))
    return y, dx, {n: p.grad for n, p in layer.named_parameters() if p.grad is not None}


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_device_path_layer_matches_the_cpu(name):
    """Output, input gradient and every parameter gradient: on the device, of the device, equal to the CPU's.

    Device-path test: on a machine with CuPy and a GPU it compares the GPU with NumPy (numeric
    parity); everywhere else it runs on the strict CuPy stand-in of tests/_device, whose maths is
    NumPy's on both sides, so it proves the device code path (no host arrays, no implicit host
    syncs), not the numbers. Named ``test_device_path_*`` to be counted apart from the numeric
    parity tests.
    """
    case = CASES[name]
    host = _build(name)
    device = copy.deepcopy(host).to("cuda")
    assert all(device_of(p.data) == "cuda" for p in device.parameters())
    x = _input(case)
    y, dx, grads = _run(host, case, x)
    y_d, dx_d, grads_d = _run_on_device(device, case, x)
    for what, value in [("output", y_d), ("input gradient", dx_d), *grads_d.items()]:
        assert value is None or device_of(value) == "cuda", f"{name}: {what} left the device"
    if name == "dropout":  # the device draws its own mask: check y = x m and dx = dy m for that mask
        mask = to_numpy(y_d) / x
        assert set(np.unique(np.round(mask, 5))) <= {0.0, 2.0}
        dy = np.random.default_rng(2).standard_normal(y.shape).astype(y.dtype)
        np.testing.assert_allclose(to_numpy(dx_d), dy * mask, rtol=1e-5, atol=1e-6)
        return
    np.testing.assert_allclose(to_numpy(y_d), y, rtol=1e-4, atol=1e-5, err_msg=f"{name} output")
    if dx is not None:
        np.testing.assert_allclose(to_numpy(dx_d), dx, rtol=1e-4, atol=1e-5, err_msg=f"{name} input gradient")
    assert sorted(grads_d) == sorted(grads)
    for pname, g in grads.items():
        np.testing.assert_allclose(to_numpy(grads_d[pname]), g, rtol=1e-4, atol=1e-5, err_msg=f"{name}.{pname}")


def test_predict_calls_in_eval_mode_keep_memory_flat():
    """A model in eval() mode used for predictions without no_grad(): 200 calls, no growth."""
    import tracemalloc

    from plait.layers import GELU, LayerNorm, Linear, Sequential

    model = Sequential(Linear(64, 256), GELU(), LayerNorm(256), Linear(256, 10)).eval()
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    for _ in range(5):
        model(x)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(200):
            model(x)
        grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert grown < 256 * 1024, f"200 predict calls grew memory by {grown} bytes"  # one call's activations: ~100 KB
    assert all(not m.__dict__["_saved_stack"] for m in model.modules())


# -- 0-d inputs and empty sequences ---------------------------------------------------------------------
ELEMENTWISE = sorted(n for n in NAMES if CASES[n].elementwise and not CASES[n].ints)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_dim_input_gives_the_one_element_result_or_a_shape_error(name):
    """A 0-d array (as torch allows): the same value and gradient as the 1-element array, 0-d again."""
    x = np.array(0.7)
    try:
        y = _build(name)(x)
    except ShapeError as err:
        _assert_clear(err, _names(name, _build(name)))
        return
    layer = _build(name)
    manual_seed(0)  # dropout: the same draw for both
    y = layer(x)
    assert np.shape(y) == (), f"{name}: 0-d input gave shape {np.shape(y)}"
    dx = layer.backward(np.array(2.0))
    ref = _build(name)
    manual_seed(0)
    np.testing.assert_allclose(np.reshape(y, 1), ref(x.reshape(1)), rtol=1e-12)
    np.testing.assert_allclose(np.reshape(dx, 1), ref.backward(np.array([2.0])), rtol=1e-12)
    assert np.shape(dx) == ()


LOSS_NAMES = sorted(n for n in registry.losses.names() if registry.losses.get(n).__module__.startswith("plait."))


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_zero_dim_loss_input_gives_the_one_element_result_or_a_shape_error(name, reduction):
    loss = registry.losses.get(name)(reduction=reduction)
    # two-input losses (Siamese, ranking) take a second prediction and a +-1 target
    args = (np.array(0.6), np.array(0.3)) if loss.num_inputs == 1 else (np.array(0.6), np.array(0.3), np.array(-1.0))
    try:
        value = loss(*args)
    except (ShapeError, DTypeError) as err:
        assert type(loss).__name__ in str(err)
        return
    grads = loss.backward()
    ref = registry.losses.get(name)(reduction=reduction)
    ref_value = ref(*(a.reshape(1) for a in args))
    ref_grads = ref.backward()
    if loss.num_inputs == 1:
        grads, ref_grads = (grads,), (ref_grads,)
    np.testing.assert_allclose(np.reshape(value, -1), np.reshape(ref_value, -1), rtol=1e-12)
    assert np.shape(value) == () and len(grads) == loss.num_inputs
    for dx, ref_dx in zip(grads, ref_grads):
        np.testing.assert_allclose(np.reshape(dx, 1), ref_dx, rtol=1e-12)
        assert np.shape(dx) == ()


def test_empty_sequences_in_positions_and_attention():
    """Learned positions: an empty sequence is a valid (empty) input; attention over no keys is a ShapeError."""
    from plait.layers import GroupedQueryAttention, LearnedPositionalEmbedding, TransformerEncoderLayer

    for shape in [(2, 0, 4), (0, 4), (0, 3, 4)]:
        layer = LearnedPositionalEmbedding(5, 4)
        y = layer(np.zeros(shape, np.float32), offset=1)
        assert y.shape == shape
        assert layer.backward(np.zeros(shape, np.float32)).shape == shape
        assert not layer.weight.grad.any()
    for layer in (GroupedQueryAttention(4, 2), GroupedQueryAttention(4, 2, causal=True),
                  TransformerEncoderLayer(4, 2, dim_feedforward=8, batch_first=True)):
        with pytest.raises(ShapeError, match="empty key sequence"):
            layer(np.zeros((2, 0, 4), np.float32))
    attn = GroupedQueryAttention(4, 2)
    with pytest.raises(ShapeError, match="empty key sequence"):
        attn(np.zeros((2, 3, 4), np.float32), context=np.zeros((2, 0, 4), np.float32))
    y = attn(np.zeros((2, 0, 4), np.float32), context=np.ones((2, 3, 4), np.float32))  # no queries: empty output
    assert y.shape == (2, 0, 4)


# -- constructor sizes ------------------------------------------------------------------------------------
SIZE_ARGS = {
    "linear": ("in_features", {"in_features": 4, "out_features": 3}),
    "embedding": ("num_embeddings", {"num_embeddings": 5, "embedding_dim": 3}),
    "learned_positional_embedding": ("num_positions", {"num_positions": 5, "embedding_dim": 4}),
    "sinusoidal_positional_embedding": ("embedding_dim", {"num_positions": 5, "embedding_dim": 4}),
    "rotary_embedding": ("dim", {"dim": 4}),
    "layer_norm": ("normalized_shape", {"normalized_shape": 4}),
    "rms_norm": ("normalized_shape", {"normalized_shape": 4}),
    "group_norm": ("num_channels", {"num_groups": 2, "num_channels": 4}),
    "batch_norm1d": ("num_features", {"num_features": 4}),
    "batch_norm2d": ("num_features", {"num_features": 4}),
    "instance_norm1d": ("num_features", {"num_features": 4}),
    "conv1d": ("in_channels", {"in_channels": 2, "out_channels": 2, "kernel_size": 3}),
    "conv2d": ("out_channels", {"in_channels": 2, "out_channels": 2, "kernel_size": 3}),
    "conv_transpose2d": ("in_channels", {"in_channels": 2, "out_channels": 2, "kernel_size": 3}),
    "rnn": ("hidden_size", {"input_size": 3, "hidden_size": 4}),
    "lstm": ("num_layers", {"input_size": 3, "hidden_size": 4}),
    "gru": ("input_size", {"input_size": 3, "hidden_size": 4}),
    "multi_head_attention": ("embed_dim", {"embed_dim": 8, "num_heads": 2}),
    "multihead_attention": ("kdim", {"embed_dim": 8, "num_heads": 2}),
}


@pytest.mark.parametrize("bad", [4.5, "4", True, -2, 4.0])
@pytest.mark.parametrize("name", sorted(SIZE_ARGS))
def test_constructor_refuses_non_integer_sizes(name, bad):
    """Called directly (not through the registry): a ConfigError naming the layer and the argument."""
    from plait.core import ConfigError

    arg, kwargs = SIZE_ARGS[name]
    cls = registry.layers.get(name)
    with pytest.raises(ConfigError, match=rf"{cls.__name__}.*{arg}"):
        cls(**{**kwargs, arg: bad})


@pytest.mark.parametrize("make", [
    lambda layers: layers.LSTM(4, 4, num_layers=10**15),
    lambda layers: layers.Linear(2**20, 2**20),
    lambda layers: layers.Embedding(10**12, 8),
    lambda layers: layers.Conv2d(2**12, 2**12, 2**6),
], ids=["lstm_layers", "linear", "embedding", "conv2d"])
def test_absurd_sizes_are_refused_before_allocating(make):
    import time

    import plait.layers as layers
    from plait.core import ConfigError

    start = time.perf_counter()
    with pytest.raises(ConfigError, match="PLAIT_MAX_PARAMETERS"):
        make(layers)
    assert time.perf_counter() - start < 1.0


def test_the_parameter_limit_is_overridable(monkeypatch):
    from plait.core import ConfigError
    from plait.layers import Linear

    monkeypatch.setenv("PLAIT_MAX_PARAMETERS", "100")
    with pytest.raises(ConfigError, match="Linear"):
        Linear(10, 10)
    assert Linear(9, 9).num_parameters() == 90
