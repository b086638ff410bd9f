"""Hostile optimizer and scheduler state dicts, for every first-party registered component.

A state dict read back from a checkpoint may be damaged or written by an attacker. For
each optimizer and scheduler in the registry (a newly registered one is covered
automatically; the coverage tests fail if it has no constructor arguments here), every
hostile field raises a PlaitError naming the component and the field, and the object is
left exactly as it was. A valid state dict, also through JSON, resumes bit-exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from plait.core import Param, registry
from plait.core.errors import PlaitError, SerializationError
from plait.optim import merge_state_dict, split_state_dict

FIRST_PARTY = {"plait-core", "plait-layers", "plait-optim", "plait-tokenizers", "plait-train", "plait-zoo"}


def _first_party(table: Any) -> list[str]:
    return sorted(n for n in table.names() if table.origin(n) in FIRST_PARTY)


# constructor arguments that make each optimizer keep every buffer it has
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adagrad": {"lr": 0.1},
    "adam": {"lr": 0.1, "amsgrad": True},
    "adamw": {"lr": 0.1, "weight_decay": 0.1},
    "lion": {"lr": 0.01},
    "rmsprop": {"lr": 0.01, "momentum": 0.9, "centered": True},
    "sgd": {"lr": 0.1, "momentum": 0.9},
}
OPT_NAMES = _first_party(registry.optimizers)

SCHEDULERS: dict[str, dict[str, Any]] = {
    "cosine_annealing_lr": {"T_max": 10},
    "exponential_lr": {"gamma": 0.9},
    "lambda_lr": {"lr_lambda": lambda epoch: 0.95**epoch},
    "linear_warmup": {"warmup_steps": 3},
    "multi_step_lr": {"milestones": [2, 4]},
    "one_cycle_lr": {"max_lr": 0.5, "total_steps": 20},
    "reduce_lr_on_plateau": {"patience": 1},
    "step_lr": {"step_size": 2},
}
SCHED_NAMES = _first_party(registry.schedulers)


def test_every_first_party_optimizer_and_scheduler_has_a_case():
    assert not set(OPT_NAMES) - set(OPTIMIZERS), "optimizers without arguments here"
    assert not set(SCHED_NAMES) - set(SCHEDULERS), "schedulers without arguments here"


def _params() -> list[Param]:
    rng = np.random.default_rng(0)
    return [Param(rng.standard_normal((3, 4)).astype(np.float32)), Param(rng.standard_normal(4).astype(np.float32))]


def _stepped(name: str, steps: int = 2) -> tuple[Any, list[Param]]:
    params = _params()
    opt = registry.optimizers.get(name)(params, **OPTIMIZERS[name])
    for step in range(steps):
        rng = np.random.default_rng(10 + step)
        for p in params:
            p.grad = rng.standard_normal(p.shape).astype(np.float32)
        opt.step()
    return opt, params


def _snapshot(opt: Any) -> str:
    """Everything an optimizer holds, as comparable text."""
    sd = opt.state_dict()
    meta, arrays = split_state_dict(sd)
    return json.dumps(meta, sort_keys=True, default=str) + repr({k: v.tobytes() for k, v in sorted(arrays.items())})


def _array_buffer(sd: dict[str, Any]) -> str:
    return next(k for k, v in sd["state"][0].items() if hasattr(v, "shape") and v.ndim)


_HOSTILE_STEP = [-1, 10**400, math.inf, -math.inf, math.nan, 2.5, "3", True, 1 + 2j, None, [1], {"a": 1}, np.complex64(3)]


def _hostile_optimizer_cases(name: str) -> dict[str, Any]:
    opt, _ = _stepped(name)
    sd = opt.state_dict()
    buf = _array_buffer(sd)
    shape = sd["state"][0][buf].shape
    cases: dict[str, Any] = {}
    if "step" in sd["state"][0]:
        for i, bad in enumerate(_HOSTILE_STEP):
            cases[f"step={bad!r}"[:30] + f"#{i}"] = ("state", 0, "step", bad)
    cases.update({
        "complex buffer": ("state", 0, buf, np.full(shape, 1 + 1j, np.complex64)),
        "complex buffer, zero imaginary part": ("state", 0, buf, np.ones(shape, np.complex128)),
        "buffer of the wrong shape": ("state", 0, buf, np.ones((4, 3), np.float32)),
        "buffer of strings": ("state", 0, buf, np.full(shape, "x")),
        "buffer of objects": ("state", 0, buf, np.full(shape, None, dtype=object)),
        "buffer of bools": ("state", 0, buf, np.ones(shape, bool)),
        "buffer with NaN": ("state", 0, buf, np.full(shape, np.nan, np.float32)),
        "buffer with infinity": ("state", 0, buf, np.full(shape, np.inf, np.float32)),
        "buffer a ragged list": ("state", 0, buf, [[1.0], [2.0, 3.0]]),
        "buffer a string": ("state", 0, buf, "zeros"),
        "unknown buffer": ("state", 0, "evil", np.ones(shape, np.float32)),
        "unknown top-level entry": ("top", None, "extra", 1),
        "unknown group option": ("group", 0, "evil", 1.0),
        "lr 10**400": ("group", 0, "lr", 10**400),
        "lr infinite": ("group", 0, "lr", math.inf),
        "lr a string": ("group", 0, "lr", "0.1"),
        "scheduler key infinite": ("group", 0, "initial_lr", math.inf),
        "params index a string": ("group", 0, "params", ["abc"]),
        "params index negative": ("group", 0, "params", [-1]),
        "params index fractional": ("group", 0, "params", [0.5]),
        "params index a bool": ("group", 0, "params", [True]),
        "params index repeated": ("groups", None, "params", [[0, 0]]),
        "state for an unlisted parameter": ("state", 7, None, {}),
        "state not a mapping": ("top", None, "state", [1, 2]),
        "param_groups not a list": ("top", None, "param_groups", {"a": 1}),
        "group not a mapping": ("top", None, "param_groups", [1]),
        "state entry not a mapping": ("state", 0, None, [1, 2]),
    })
    if sd["state"][0].get("exp_avg_sq") is not None:
        cases["negative second moment"] = ("state", 0, "exp_avg_sq", -np.ones(shape, np.float32))
    return cases


def _apply(sd: dict[str, Any], case: tuple) -> dict[str, Any]:
    where, index, key, value = case
    sd = {"state": {k: dict(v) for k, v in sd["state"].items()}, "param_groups": [dict(g) for g in sd["param_groups"]]}
    if where == "top":
        sd[key] = value
    elif where == "state" and key is None:
        sd["state"][index] = value
    elif where == "state":
        sd["state"][index][key] = value
    elif where == "group":
        sd["param_groups"][index][key] = value
    elif where == "groups":
        sd["param_groups"] = [{**g, "params": value[0]} for g in sd["param_groups"][:1]]
    return sd


OPT_CASES = [(n, c) for n in OPT_NAMES if n in OPTIMIZERS for c in _hostile_optimizer_cases(n)]


@pytest.mark.parametrize(("name", "case"), OPT_CASES, ids=[f"{n}-{c}" for n, c in OPT_CASES])
def test_hostile_optimizer_state_is_refused_and_changes_nothing(name, case):
    source, _ = _stepped(name)
    hostile = _apply(source.state_dict(), _hostile_optimizer_cases(name)[case])
    target, _ = _stepped(name, steps=1)
    before = _snapshot(target)
    with pytest.raises(PlaitError) as info:
        target.load_state_dict(hostile)
    assert type(target).__name__ in str(info.value)
    assert _snapshot(target) == before


@pytest.mark.parametrize("name", [n for n in OPT_NAMES if n in OPTIMIZERS])
def test_valid_optimizer_state_through_json_resumes_exactly(name):
    """The refusals above must not refuse the real thing: a resumed run equals the reference."""
    opt, params = _stepped(name, steps=3)
    meta, arrays = split_state_dict(opt.state_dict())
    meta = json.loads(json.dumps(meta))
    fresh_params = [Param(p.data.copy()) for p in params]
    fresh = registry.optimizers.get(name)(fresh_params, **OPTIMIZERS[name])
    fresh.load_state_dict(merge_state_dict(meta, {k: v.copy() for k, v in arrays.items()}))
    for step in range(3, 5):
        rng = np.random.default_rng(10 + step)
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        for ps in (params, fresh_params):
            for p, g in zip(ps, grads):
                p.grad = g.copy()
        opt.step()
        fresh.step()
    for a, b in zip(params, fresh_params):
        assert np.array_equal(a.data, b.data)


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ([1, 2], "expected exactly the entries"),
        ({"state": {}, "param_groups": [], "extra": 1}, "expected exactly the entries"),
        ({"state": [], "param_groups": []}, "'state' must be a mapping"),
        ({"state": {}, "param_groups": [1]}, "'param_groups' must be a list of mappings"),
        ({"state": {"x": {}}, "param_groups": []}, "not a parameter index"),
        ({"state": {"-1": {}}, "param_groups": []}, "not a parameter index"),
        ({"state": {"9" * 5000: {}}, "param_groups": []}, "not a parameter index"),
        ({"state": {"0": {}, 0: {}}, "param_groups": []}, "appears twice"),
        ({"state": {"0": [1]}, "param_groups": []}, "'state.0' must be a mapping"),
        ({"state": {"0": {"m": {"__array__": 5}}}, "param_groups": []}, "array reference"),
        ({"state": {"0": {"m": {"__array__": "x", "y": 1}}}, "param_groups": []}, "array reference"),
        ({"state": {"0": {"m": {"__array__": "nope"}}}, "param_groups": []}, "is missing"),
    ],
)
def test_merge_state_dict_refuses_hostile_metadata(meta, match):
    with pytest.raises(SerializationError, match=match) as info:
        merge_state_dict(meta, {"x": np.ones(2)}, source="optimizer.json")
    assert str(info.value).startswith("optimizer.json: ")


# -- schedulers --------------------------------------------------------------------------------
def _scheduler(name: str, steps: int = 3) -> Any:
    opt = registry.optimizers.get("sgd")(_params(), lr=0.1, momentum=0.9)
    sched = registry.schedulers.get(name)(opt, **SCHEDULERS[name])
    for _ in range(steps):
        sched.step(1.0) if name == "reduce_lr_on_plateau" else sched.step()
    return sched


_JUNK = [-2, -1, 0, 10**400, 2**64, math.inf, -math.inf, math.nan, 2.5, -0.5, "3", "", True, None, [], [1, 2, 3],
         {"a": 1}, 1 + 2j]


def _sched_cases() -> list[tuple[str, str, int]]:
    out = []
    for name in SCHED_NAMES:
        if name in SCHEDULERS:
            for key in _scheduler(name).state_dict():
                out += [(name, key, i) for i in range(len(_JUNK))]
    return out


SCHED_CASES = _sched_cases()


def _lrs(sched: Any) -> list[float]:
    return [g["lr"] for g in sched.optimizer.param_groups]


@pytest.mark.parametrize(("name", "key", "junk"), SCHED_CASES,
                         ids=[f"{n}-{k}-{_JUNK[j]!r}"[:60] + f"-{j}" for n, k, j in SCHED_CASES])
def test_scheduler_field_replaced_by_junk_is_refused_or_keeps_working(name, key, junk):
    """A PlaitError naming the field and nothing changed, or (a legal value) the schedule still steps
    to finite, non-negative rates."""
    saved = _scheduler(name).state_dict()
    saved[key] = _JUNK[junk]
    target = _scheduler(name, steps=1)
    before = (repr(target.state_dict()), _lrs(target))
    try:
        target.load_state_dict(saved)
    except PlaitError as exc:
        assert type(target).__name__ in str(exc)
        assert (repr(target.state_dict()), _lrs(target)) == before, "a refused load changed the scheduler"
        return
    for _ in range(3):
        target.step(1.0) if name == "reduce_lr_on_plateau" else target.step()
        lrs = target.get_last_lr()
        assert len(lrs) == 1 and all(math.isfinite(lr) and lr >= 0 for lr in lrs), lrs


@pytest.mark.parametrize("name", [n for n in SCHED_NAMES if n in SCHEDULERS])
def test_scheduler_refuses_unknown_keys_instead_of_setting_attributes(name):
    sched = _scheduler(name)
    saved = {**sched.state_dict(), "optimizer": None, "step": "pwned"}
    with pytest.raises(SerializationError, match="unknown state dict keys"):
        sched.load_state_dict(saved)
    assert sched.optimizer is not None and callable(sched.step)


@pytest.mark.parametrize("name", [n for n in SCHED_NAMES if n in SCHEDULERS])
def test_scheduler_state_through_json_resumes_exactly(name):
    reference = _scheduler(name, steps=3)
    saved = json.loads(json.dumps(reference.state_dict()))
    resumed = _scheduler(name, steps=0)
    resumed.optimizer.load_state_dict(reference.optimizer.state_dict())
    resumed.load_state_dict(saved)
    for _ in range(4):
        for s in (reference, resumed):
            s.step(1.0) if name == "reduce_lr_on_plateau" else s.step()
        assert resumed.get_last_lr() == reference.get_last_lr()
