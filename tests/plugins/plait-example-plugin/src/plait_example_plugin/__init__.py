"""A third-party plugin, as a user would write one: a Scale layer and a SignSGD optimizer."""

from __future__ import annotations

import numpy as np

from plait.core import Module, Param, ShapeError, check_array, hookimpl


# -- the maths: a pure pair (arrays in, arrays out; no Module, no Param) -----------------------
def scale_forward(x, weight):
    """y = x * w, w (features,) broadcast over the leading dims of x (..., features); ctx = x."""
    return x * weight, x


def scale_backward(dy, x, weight, need_dx=True):
    """(dx, dw): dx = dy * w; dw = sum of dy * x over every leading dim."""
    dweight = (dy * x).reshape(-1, weight.shape[0]).sum(axis=0)
    return (dy * weight if need_dx else None), dweight


# -- the layer: constructor, parameters, input check, the names of its pair ---------------------
class Scale(Module):
    """y = x * w, one learnable factor per feature; x: (..., features).

    Module does the bookkeeping: caching ctx, checking dy's shape, accumulating dw.
    """

    maths = (scale_forward, scale_backward)
    maths_params = ("weight",)

    def __init__(self, features: int) -> None:
        super().__init__()
        self.features = features
        self.weight = Param(np.ones(features, dtype=np.float32))

    def check_input(self, x):
        return check_array(x, "Scale", last_dim=self.features)


class SignSGD:
    """p -= lr * sign(grad)."""

    def __init__(self, params, lr: float = 0.01) -> None:
        self.params = list(params)
        self.lr = lr

    def step(self) -> None:
        for p in self.params:
            if p.grad is not None and p.grad.shape != p.data.shape:
                raise ShapeError(f"SignSGD: gradient of shape {p.grad.shape} for a parameter of shape {p.data.shape}")
        for p in self.params:
            if p.grad is not None:
                p.data -= self.lr * np.sign(p.grad)

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def state_dict(self):
        return {"lr": self.lr}

    def load_state_dict(self, state) -> None:
        self.lr = state["lr"]


@hookimpl
def register_layers(register):
    register("example_scale", Scale)


@hookimpl
def register_optimizers(register):
    register("example_sign_sgd", SignSGD)
