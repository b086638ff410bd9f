"""Fully connected layers: ``Linear`` and ``Identity``.

Maths (x: (..., in), W: (out, in), b: (out,))::

    y  = x W^T + b
    dx = dy W
    dW = dy^T x        (summed over every leading dimension)
    db = sum(dy)
"""

from __future__ import annotations

import math
from typing import Any

from plait.core import Module, Param, ShapeError, check_array, get_rng
from plait.core.initializers import KaimingUniform, Uniform

__all__ = ["Identity", "Linear", "linear_backward", "linear_forward"]


# -- maths ----------------------------------------------------------------------------------
def linear_forward(x2d: Any, weight: Any, bias: Any | None) -> Any:
    """(N, in) @ (in, out) + (out,) -> (N, out)."""
    y = x2d @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(dy2d: Any, x2d: Any, weight: Any, need_dx: bool = True) -> tuple[Any, Any, Any]:
    """Returns (dx (N, in) or None, dW (out, in), db (out,))."""
    return (dy2d @ weight if need_dx else None), dy2d.T @ x2d, dy2d.sum(axis=0)


# -- layer ------------------------------------------------------------------------------------
class Linear(Module):
    """y = x W^T + b over any leading dimensions; x: (..., in_features) -> (..., out_features).

    Initialised like ``torch.nn.Linear``: W, b ~ U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: str = "float32") -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        rng = get_rng()
        shape = (self.out_features, self.in_features)
        self.weight = Param(KaimingUniform(a=math.sqrt(5))(shape, self.in_features, self.out_features, rng, dtype))
        if bias:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            self.bias = Param(Uniform(-bound, bound)((self.out_features,), self.in_features, self.out_features, rng, dtype))
        else:
            self.bias = None

    def forward(self, x: Any) -> Any:
        x = check_array(x, "Linear", ndim_min=1, last_dim=self.in_features)
        lead = x.shape[:-1]
        x2d = x.reshape(-1, self.in_features)
        w = self.weight.data
        if x2d.dtype != w.dtype:
            x2d = x2d.astype(w.dtype)
        self.save_for_backward((x2d, lead))
        b = self.bias.data if self.bias is not None else None
        return linear_forward(x2d, w, b).reshape(*lead, self.out_features)

    def backward(self, dy: Any) -> Any:
        x2d, lead = self.saved()
        dy = check_array(dy, "Linear.backward", what="output gradient", last_dim=self.out_features)
        if tuple(dy.shape[:-1]) != tuple(lead):
            raise ShapeError(f"Linear.backward: expected output gradient of shape {(*lead, self.out_features)}, "
                             f"got {tuple(dy.shape)}")
        dy2d = dy.reshape(-1, self.out_features).astype(x2d.dtype, copy=False)
        dx, dw, db = linear_backward(dy2d, x2d, self.weight.data, need_dx=self.needs_input_grad)
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return None if dx is None else dx.reshape(*lead, self.in_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x (a placeholder, as ``torch.nn.Identity``); any input is handed through unchanged."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        self.save_for_backward(tuple(getattr(x, "shape", ())))
        return x

    def backward(self, dy: Any) -> Any:
        shape = self.saved()
        if tuple(getattr(dy, "shape", ())) != shape:
            raise ShapeError(f"Identity.backward: expected output gradient of shape {shape}, "
                             f"got {tuple(getattr(dy, 'shape', ()))}")
        return dy


LAYERS: dict[str, type] = {"linear": Linear, "identity": Identity}

