"""Scheduler state dicts: cross-field and nested checks that the registry-wide fuzzer cannot reach.

The fuzzer (tests/robustness/test_robust_state_dicts.py) replaces one top-level field at a
time; here a bad value sits inside a child's state, or is legal alone but not with this
optimizer, or a legal saved value drives the schedule far.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from plait.core import Param, SerializationError
from plait.optim import (
    SGD,
    Adam,
    ConstantLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LinearWarmup,
    PolynomialLR,
    SequentialLR,
    StepLR,
)


def _params():
    rng = np.random.default_rng(0)
    return [Param(rng.standard_normal((3, 4))), Param(rng.standard_normal(4))]


def _sgd():
    return SGD(_params(), lr=0.1, momentum=0.9)


def _sequential(opt):
    return SequentialLR(opt, [ConstantLR(opt, 0.5, 2), ExponentialLR(opt, 0.9)], milestones=[2])


def _frozen(sched):
    return json.dumps(sched.state_dict(), sort_keys=True), [g["lr"] for g in sched.optimizer.param_groups]


@pytest.mark.parametrize(
    ("child", "key", "value", "match"),
    [
        (1, "gamma", -0.5, r"'_schedulers\[1\]'.*'gamma' must be a number >= 0"),
        (1, "last_epoch", "3", r"'_schedulers\[1\]'.*'last_epoch'"),
        (0, "factor", 0.0, r"'_schedulers\[0\]'.*'factor' must be a number > 0"),
        (0, "evil", 1, r"'_schedulers\[0\]'.*unknown state dict keys \['evil'\]"),
    ],
)
def test_sequential_lr_refuses_a_bad_child_state_and_changes_no_child(child, key, value, match):
    source = _sequential(_sgd())
    for _ in range(3):
        source.step()
    saved = source.state_dict()
    saved["_schedulers"][child][key] = value
    target = _sequential(_sgd())
    target.step()
    before = _frozen(target)
    with pytest.raises(SerializationError, match=f"SequentialLR: .*{match}"):
        target.load_state_dict(saved)
    assert _frozen(target) == before


@pytest.mark.parametrize("milestones", [[-1], [0.5], [1, 2], "2", None])
def test_sequential_lr_refuses_bad_milestones(milestones):
    sched = _sequential(_sgd())
    with pytest.raises(SerializationError, match="SequentialLR: .*'_milestones"):
        sched.load_state_dict({**sched.state_dict(), "_milestones": milestones})


def test_sequential_lr_milestones_must_be_sorted():
    opt = _sgd()
    sched = SequentialLR(opt, [StepLR(opt, 2), StepLR(opt, 3), StepLR(opt, 4)], milestones=[2, 5])
    with pytest.raises(SerializationError, match="'_milestones' must be a sorted list"):
        sched.load_state_dict({**sched.state_dict(), "_milestones": [5, 2]})


def test_linear_warmup_checks_the_after_state_through_after():
    def build():
        opt = _sgd()
        return LinearWarmup(opt, 2, after=CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2))

    source = build()
    for _ in range(4):
        source.step()
    saved = json.loads(json.dumps(source.state_dict()))
    target = build()
    before = _frozen(target)
    bad = json.loads(json.dumps(saved))
    bad["after"]["T_i"] = 0
    with pytest.raises(SerializationError, match=r"LinearWarmup: .*'after'.*CosineAnnealingWarmRestarts: .*'T_i'"):
        target.load_state_dict(bad)
    assert _frozen(target) == before
    target.load_state_dict(saved)  # the good one still loads, children included
    target.optimizer.load_state_dict(source.optimizer.state_dict())
    for _ in range(3):
        source.step()
        target.step()
        assert target.get_last_lr() == source.get_last_lr()


@pytest.mark.parametrize(("make", "use_beta1"), [(_sgd, True), (lambda: Adam(_params(), lr=0.1), False)])
def test_cyclic_lr_refuses_momentum_fields_that_do_not_fit_the_optimizer(make, use_beta1):
    sched = CyclicLR(make(), 0.01, 0.1, step_size_up=2)
    before = _frozen(sched)
    with pytest.raises(SerializationError, match="CyclicLR: state dict field 'use_beta1'"):
        sched.load_state_dict({**sched.state_dict(), "use_beta1": use_beta1})
    assert _frozen(sched) == before


@pytest.mark.parametrize(("key", "value"), [("step_ratio", 0.0), ("step_ratio", 1.0), ("total_size", 0.0),
                                            ("max_lrs", [-0.1, 0.1]), ("base_momentums", [0.8, -1.0])])
def test_cyclic_lr_refuses_a_degenerate_cycle(key, value):
    sched = CyclicLR(_sgd(), 0.01, 0.1, step_size_up=2)
    with pytest.raises(SerializationError, match=f"CyclicLR: state dict field '{key}"):
        sched.load_state_dict({**sched.state_dict(), key: value})


def test_cyclic_lr_triangular2_far_into_training_decays_to_base_without_overflow():
    sched = CyclicLR(_sgd(), 0.01, 0.1, step_size_up=2, mode="triangular2", cycle_momentum=False)
    sched.load_state_dict({**sched.state_dict(), "last_epoch": 2**53 - 8})
    for _ in range(3):
        sched.step()
        assert sched.get_last_lr() == [0.01]


@pytest.mark.parametrize(("key", "value"), [("T_0", 0), ("T_i", 0), ("T_mult", 0), ("T_cur", -1.5), ("T_cur", math.inf)])
def test_cosine_warm_restarts_refuses_zero_periods(key, value):
    sched = CosineAnnealingWarmRestarts(_sgd(), T_0=2, T_mult=2)
    with pytest.raises(SerializationError, match=f"CosineAnnealingWarmRestarts: state dict field '{key}'"):
        sched.load_state_dict({**sched.state_dict(), key: value})


def test_cosine_warm_restarts_fractional_epoch_state_round_trips():
    """After step(epoch) with a fraction, T_cur is a float; an int T_cur also loads into such a scheduler."""
    source = CosineAnnealingWarmRestarts(_sgd(), T_0=3, T_mult=2)
    source.step(4.5)
    saved = json.loads(json.dumps(source.state_dict()))
    assert isinstance(saved["T_cur"], float)
    target = CosineAnnealingWarmRestarts(_sgd(), T_0=3, T_mult=2)
    target.load_state_dict(saved)
    for _ in range(4):
        source.step()
        target.step()
        assert target.get_last_lr() == source.get_last_lr()
    source.load_state_dict({**source.state_dict(), "T_cur": 1})


@pytest.mark.parametrize("power", [-1.0, -0.5])
def test_polynomial_lr_refuses_a_negative_power(power):
    sched = PolynomialLR(_sgd(), total_iters=4, power=2.0)
    with pytest.raises(SerializationError, match="PolynomialLR: state dict field 'power' must be a number >= 0"):
        sched.load_state_dict({**sched.state_dict(), "power": power})
