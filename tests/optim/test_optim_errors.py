"""Bad optimizer arguments raise ConfigError naming the optimizer, the option and the value."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Module, Param, registry
from plait.core.errors import ConfigError, ShapeError
from plait.optim import SGD, Adagrad, Adam, AdamW, Lion, RMSprop


def _p(n=3):
    return Param(np.ones(n))


SHARED = _p()

BAD = [
    (lambda: SGD([_p()], lr=-0.1), r"SGD: lr must be a finite number >= 0, got -0.1"),
    (lambda: Adam([_p()], lr=float("nan")), r"Adam: lr must be a finite number >= 0, got nan"),
    (lambda: AdamW([_p()], lr="0.1"), r"AdamW: lr must be a finite number >= 0, got '0.1'"),
    (lambda: Adam([_p()], betas=(1.0, 0.999)), r"Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
    (lambda: AdamW([_p()], betas=(0.9, -0.1)), r"AdamW: betas\[1\] must be in \[0, 1\), got -0.1"),
    (lambda: Lion([_p()], betas=(0.9,)), r"Lion: betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
    (lambda: Adam([_p()], eps=-1e-8), r"Adam: eps must be a finite number >= 0, got -1e-08"),
    (lambda: RMSprop([_p()], eps=-1.0), r"RMSprop: eps must be"),
    (lambda: Adagrad([_p()], eps=-1.0), r"Adagrad: eps must be"),
    (lambda: SGD([_p()], weight_decay=-0.01), r"SGD: weight_decay must be a finite number >= 0, got -0.01"),
    (lambda: Lion([_p()], weight_decay=-1), r"Lion: weight_decay must be"),
    (lambda: Adam([_p()], l1=-1.0), r"Adam: l1 must be"),
    (lambda: SGD([_p()], l2=-1.0), r"SGD: l2 must be"),
    (lambda: SGD([_p()], momentum=-0.9), r"SGD: momentum must be"),
    (lambda: SGD([_p()], momentum=0.9, dampening=1.5), r"SGD: dampening must be a finite number in \[0, 1\]"),
    (lambda: SGD([_p()], nesterov=True), r"SGD: nesterov=True needs momentum > 0 and dampening == 0, got momentum=0.0"),
    (lambda: SGD([_p()], momentum=0.9, dampening=0.1, nesterov=True), r"SGD: nesterov=True needs .* dampening=0.1"),
    (lambda: RMSprop([_p()], alpha=1.5), r"RMSprop: alpha must be a finite number in \[0, 1\]"),
    (lambda: Adagrad([_p()], lr_decay=-0.1), r"Adagrad: lr_decay must be"),
    (lambda: Adagrad([_p()], initial_accumulator_value=-1.0), r"Adagrad: initial_accumulator_value must be"),
    (lambda: Adam([_p()], amsgrad="yes"), r"Adam: amsgrad must be True or False, got 'yes'"),
    (lambda: Adam([]), r"Adam: got an empty parameter list"),
    (lambda: SGD([{"params": []}]), r"SGD: got an empty parameter list"),
    (lambda: AdamW(iter([])), r"AdamW: got an empty parameter list"),
    (lambda: SGD([SHARED, SHARED]), r"SGD: Param\(shape=\(3,\), dtype=float64\) appears more than once"),
    (lambda: Adam([{"params": [SHARED]}, {"params": [_p(), SHARED]}]), r"Adam: .* appears more than once .*\(parameter group 1\)"),
    (lambda: Adam([np.ones(3)]), r"Adam: item 0 is a ndarray, expected a plait.core.Param"),
    (lambda: Adam([{"params": [_p(), "w"]}]), r"Adam: item 1 is a str, expected a plait.core.Param \(parameter group 0\)"),
    (lambda: SGD(_p()), r"SGD: expected an iterable of Params .* got a single Param; wrap it in a list"),
    (lambda: SGD(Module()), r"SGD: expected an iterable of Params \(e.g. model.parameters\(\)\).* got Module"),
    (lambda: SGD([{"params": [_p()]}, _p()]), r"SGD: .* got a mix of Params and dicts"),
    (lambda: SGD([{"lr": 0.1}]), r"SGD: a parameter group must be a dict with a 'params' entry"),
    (lambda: SGD([{"params": {_p()}}]), r"SGD: parameters must come in an ordered sequence, not a set"),
    (lambda: SGD([{"params": [_p()], "lr": -1.0}], lr=0.1), r"SGD: lr must be .* got -1.0 \(parameter group 0\)"),
]


@pytest.mark.parametrize("make, match", BAD, ids=[m for _, m in BAD])
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_bad_group_added_later():
    opt = SGD([_p()], lr=0.1)
    with pytest.raises(ConfigError, match=r"appears more than once"):
        opt.add_param_group({"params": opt.param_groups[0]["params"]})
    with pytest.raises(ConfigError, match=r"SGD: momentum must be .* \(parameter group 1\)"):
        opt.add_param_group({"params": [_p()], "momentum": -1})
    assert len(opt.param_groups) == 1


def test_gradient_of_the_wrong_shape():
    p = _p(3)
    p.grad = np.ones(4)
    with pytest.raises(ShapeError, match=r"Adam: the gradient of Param\(shape=\(3,\), dtype=float64\) has shape \(4,\), expected \(3,\)"):
        Adam([p]).step()


def test_registry_build_with_bad_config():
    with pytest.raises(ConfigError, match="cannot build optimizer 'sgd'"):
        registry.build({"type": "sgd", "params": [_p()], "learning_rate": 0.1}, kind="optimizers")
    with pytest.raises(ConfigError, match="Lion: lr must be"):
        registry.build({"type": "lion", "params": [_p()], "lr": -3e-4}, kind="optimizers")
