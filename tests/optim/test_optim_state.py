"""State dicts (resume exactly, also through JSON), in-place updates, registry building, helpers."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from plait.core import Module, Param, registry
from plait.core.errors import SerializationError
from plait.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Lion,
    RMSprop,
    merge_state_dict,
    param_groups_no_decay,
    split_state_dict,
)

SHAPES = [(4, 3), (5,)]

CONFIGS = [
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1, "maximize": True, "l1": 0.01}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "l2": 0.1}),
    (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "l1": 0.01}),
    (AdamW, {"lr": 0.01, "betas": (0.8, 0.9), "amsgrad": True, "maximize": True}),
    (RMSprop, {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "l2": 0.1}),
    (Lion, {"lr": 1e-2, "weight_decay": 0.1, "l1": 0.01}),
]
IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(CONFIGS)]


def _grads(seed: int, steps: int, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]


def _groups(params, kwargs):
    return [{"params": params[:1], "lr": kwargs["lr"] / 2}, {"params": params[1:]}]


def _run(opt, params, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.copy()
        opt.step()


def _json_round_trip(state_dict):
    """What a checkpoint does: arrays aside (safetensors), the rest through JSON."""
    meta, arrays = split_state_dict(state_dict)
    return merge_state_dict(json.loads(json.dumps(meta)), {k: v.copy() for k, v in arrays.items()})


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=IDS)
@pytest.mark.parametrize("through_json", [False, True], ids=["direct", "json"])
def test_resume_from_state_dict_equals_uninterrupted_run(cls, kwargs, through_json):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = _grads(1, 25)

    full = [Param(x.copy()) for x in init]
    _run(cls(_groups(full, kwargs), **kwargs), full, grads)

    first = [Param(x.copy()) for x in init]
    opt = cls(_groups(first, kwargs), **kwargs)
    _run(opt, first, grads[:12])
    saved = opt.state_dict()
    at_step_12 = [p.data.copy() for p in first]
    _run(opt, first, grads[12:14])  # the saved copy must not follow the live optimizer
    if through_json:
        saved = _json_round_trip(saved)

    resumed = [Param(x) for x in at_step_12]
    fresh = cls(_groups(resumed, {**kwargs, "lr": 123.0}), **{**kwargs, "lr": 123.0})  # ... a new optimizer
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"] / 2  # options come back from the state dict
    _run(fresh, resumed, grads[12:])
    for a, b in zip(resumed, full):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_layout_is_torch_like():
    params = [Param(np.ones(s)) for s in SHAPES]
    opt = Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], lr=0.1)
    _run(opt, params, _grads(2, 1))
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(sd["state"]) == {0, 1}
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["step"] == 1 and isinstance(sd["state"][0]["step"], int)
    assert sd["state"][1]["exp_avg"].shape == SHAPES[1]
    meta, arrays = split_state_dict(sd)
    json.dumps(meta)
    assert sorted(arrays) == ["state.0.exp_avg", "state.0.exp_avg_sq", "state.1.exp_avg", "state.1.exp_avg_sq"]


def test_load_state_dict_rejects_mismatches():
    params = [Param(np.ones(s)) for s in SHAPES]
    opt = SGD(params, lr=0.1, momentum=0.9)
    _run(opt, params, _grads(3, 2))
    sd = opt.state_dict()
    with pytest.raises(SerializationError, match="SGD: the state dict has 1 parameter groups, this optimizer has 2"):
        SGD([{"params": [Param(np.ones(s))]} for s in SHAPES], lr=0.1).load_state_dict(sd)
    with pytest.raises(SerializationError, match="group 0 of the state dict has 2 parameters"):
        SGD([Param(np.ones((4, 3)))], lr=0.1).load_state_dict(sd)
    with pytest.raises(SerializationError, match=r"momentum_buffer.*shape \(4, 3\), expected \(3, 4\)"):
        SGD([Param(np.ones((3, 4))), Param(np.ones(5))], lr=0.1).load_state_dict(sd)
    with pytest.raises(SerializationError, match="needs 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


# -- in place: no parameter-sized allocation after the first step ------------------------
@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=IDS)
def test_step_allocates_no_parameter_sized_arrays(cls, kwargs):
    n = 20_000  # 160 kB per float64 array
    params = [Param(np.random.default_rng(0).standard_normal(n)), Param(np.ones((100, n // 100)))]
    for p in params:
        p.accumulate(np.random.default_rng(1).standard_normal(p.shape))
    opt = cls(params, **kwargs)
    opt.step()  # allocates the state and scratch buffers
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(3):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < params[0].data.nbytes // 4, f"a step allocated {peak - before} bytes"


def test_tracemalloc_sees_a_parameter_sized_temporary():
    """The allocation test can fail: an out-of-place update of the same size is caught."""
    p = Param(np.ones(20_000))
    p.accumulate(np.ones(20_000))
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        p.data -= 0.1 * p.grad
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before >= p.data.nbytes


def test_scratch_is_shared_between_parameters_of_one_shape():
    params = [Param(np.ones((8, 8))) for _ in range(5)]
    for p in params:
        p.accumulate(np.ones((8, 8)))
    opt = Adam(params, lr=0.1, weight_decay=0.1, l1=0.1)
    opt.step()
    assert len(opt._scratch) == 2  # one "grad" and one "tmp" buffer for all five


def test_zero_grad():
    params = [Param(np.ones(3)), Param(np.ones(2))]
    params[0].accumulate(np.ones(3))
    opt = SGD(params, lr=0.1)
    grad = params[0].grad
    opt.zero_grad()
    assert params[0].grad is grad and not grad.any() and params[1].grad is None
    opt.zero_grad(set_to_none=True)
    assert params[0].grad is None


def test_add_param_group_and_repr():
    opt = SGD([Param(np.ones(2))], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": Param(np.ones(3)), "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9
    assert "Parameter Group 1" in repr(opt) and "momentum: 0.9" in repr(opt)


# -- registry ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("sgd", SGD), ("adam", Adam), ("adamw", AdamW), ("rmsprop", RMSprop), ("adagrad", Adagrad), ("lion", Lion)])
def test_every_optimizer_builds_from_a_config(name, cls):
    params = [Param(np.ones(3)), Param(np.ones(2))]
    opt = registry.build({"type": name, "params": params, "lr": 0.05}, kind="optimizers")
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.05
    assert registry.optimizers.origin(name) == "plait-optim"


def test_config_with_groups_and_json_betas():
    a, b = Param(np.ones(3)), Param(np.ones(2))
    config = json.loads('{"type": "adamw", "lr": 0.001, "betas": [0.9, 0.95], "params": [{"weight_decay": 0.0}]}')
    config["params"][0]["params"] = [a]
    config["params"].append({"params": [b]})
    opt = registry.build(config, kind="optimizers")
    assert opt.param_groups[0]["betas"] == (0.9, 0.95) and opt.param_groups[0]["weight_decay"] == 0.0
    assert opt.param_groups[1]["weight_decay"] == 0.01


# -- no-decay groups --------------------------------------------------------------------------
class _Block(Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = Param(np.ones((4, 3)))
        self.bias = Param(np.ones(4))
        self.norm_weight = Param(np.ones(4))
        self.embedding = Param(np.ones((10, 4)))
        self.kernel = Param(np.ones((2, 1, 3, 3)))


def test_param_groups_no_decay_splits_biases_and_norm_weights():
    model = _Block()
    decay, no_decay = param_groups_no_decay(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["params"] == [model.weight, model.embedding, model.kernel]
    assert no_decay["params"] == [model.bias, model.norm_weight]
    opt = AdamW([decay, no_decay], lr=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    named = list(model.named_parameters())
    assert param_groups_no_decay(named, 0.1)[1]["params"] == [model.bias, model.norm_weight]


def test_param_groups_no_decay_treats_2d_bias_by_name():
    weird = Param(np.ones((2, 2)))
    _, no_decay = param_groups_no_decay([("head.bias", weird)], 0.1)
    assert no_decay["params"] == [weird]


def test_load_state_dict_fills_options_missing_from_an_older_state_dict():
    params = [Param(np.ones(3))]
    opt = SGD(params, lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    del sd["param_groups"][0]["l1"]
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["l1"] == 0.0


def test_a_minimal_subclass_and_the_core_protocols():
    """A third-party optimizer needs only ``_update``; ours satisfy core's protocols."""
    from plait.core import OptimizerProtocol, SchedulerProtocol
    from plait.optim import Optimizer, StepLR

    class SignDescent(Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        def _update(self, p, d, state, group):
            p.data -= group["lr"] * np.sign(d)

    p = Param(np.zeros(2))
    p.grad = np.array([2.0, -3.0])
    opt = SignDescent([p])
    opt.step()
    np.testing.assert_array_equal(p.data, [-0.1, 0.1])
    assert isinstance(opt, OptimizerProtocol) and isinstance(Adam([p]), OptimizerProtocol)
    assert isinstance(StepLR(opt, 2), SchedulerProtocol)
