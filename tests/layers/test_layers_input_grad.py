"""requires_input_grad(False): first layers skip dx; parameter gradients are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import plait.zoo as zoo
from plait.layers import Conv1d, Conv2d, Flatten, Linear, ReLU, Sequential


def _grads_and_dx(model, x, flag: bool):
    model.zero_grad(set_to_none=True)
    model.requires_input_grad(flag)
    y = model(x)
    dx = model.backward(np.linspace(-1, 1, y.size).reshape(y.shape).astype(y.dtype))
    return {n: p.grad.copy() for n, p in model.named_parameters()}, dx


@pytest.mark.parametrize(
    "build,shape",
    [
        (lambda: Linear(6, 3), (4, 6)),
        (lambda: Sequential(Flatten(), Linear(12, 5), ReLU(), Linear(5, 2)), (3, 3, 4)),
        (lambda: Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)),
        (lambda: Conv2d(2, 4, 3, stride=2, groups=2), (2, 2, 7, 7)),
        (lambda: Conv1d(2, 3, 3), (2, 2, 8)),
        (lambda: zoo.create("mlp", sizes=[12, 8, 3]), (2, 12)),
        (lambda: zoo.create("cnn-digits"), (2, 1, 8, 8)),
    ],
)
def test_skipping_the_input_gradient_keeps_parameter_gradients(build, shape):
    model = build().astype(np.float64)
    x = np.random.default_rng(0).standard_normal(shape)
    full, dx = _grads_and_dx(model, x, True)
    skipped, none = _grads_and_dx(model, x, False)
    assert dx is not None and dx.shape == shape and none is None
    assert full.keys() == skipped.keys()
    for name in full:
        np.testing.assert_array_equal(skipped[name], full[name], err_msg=name)
    _, again = _grads_and_dx(model, x, True)
    np.testing.assert_array_equal(again, dx)


def test_only_the_layers_that_see_the_input_are_told():
    model = Sequential(Flatten(), Linear(4, 4), ReLU(), Linear(4, 2)).requires_input_grad(False)
    assert [m.needs_input_grad for m in model] == [False, False, True, True]


def test_trainer_restores_the_flag_after_fit():
    from plait.layers import MSELoss
    from plait.optim import SGD
    from plait.train import Trainer

    model = Sequential(Linear(3, 2))
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.1)).fit((x, y), epochs=1, verbose=False)
    assert model.needs_input_grad and model[0].needs_input_grad
