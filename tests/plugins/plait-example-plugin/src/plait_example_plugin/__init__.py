"""A third-party plugin, as a user would write one: a Scale layer and a SignSGD optimizer."""

from __future__ import annotations

import numpy as np

from plait.core import Module, Param, ShapeError, check_array, hookimpl


class Scale(Module):
    """y = x * w, one learnable factor per feature; x: (..., features)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.features = features
        self.weight = Param(np.ones(features, dtype=np.float32))

    def forward(self, x):
        x = check_array(x, "Scale", last_dim=self.features)
        self.save_for_backward(x)
        return x * self.weight.data

    def backward(self, dy):
        x = self.saved()
        dy = check_array(dy, "Scale.backward", what="output gradient")
        if dy.shape != x.shape:  # never let a broadcastable gradient through
            raise ShapeError(f"Scale.backward: expected output gradient of shape {x.shape}, got {dy.shape}")
        self.weight.accumulate((dy * x).reshape(-1, self.features).sum(axis=0))
        return dy * self.weight.data


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
