"""Fully connected layers: ``Linear`` and ``Identity`` (maths in :mod:`._linear_maths`)."""

from __future__ import annotations

import math
from typing import Any

from plait.core import Module, Param, check_array, check_parameter_count, check_size, get_rng
from plait.core.initializers import KaimingUniform, Uniform

from ._init_args import InitSpec, chosen_initializer, draw
from ._linear_maths import identity_backward, identity_forward, linear_backward, linear_forward

__all__ = ["Identity", "Linear", "linear_backward", "linear_forward"]


class Linear(Module):
    """y = x W^T + b over any leading dimensions; x: (..., in_features) -> (..., out_features).

    Initialised like ``torch.nn.Linear``: W, b ~ U(-1/sqrt(in), 1/sqrt(in)), unless ``init`` /
    ``bias_init`` name another rule (a registered initializer name such as ``"xavier_uniform"``,
    a ``{"type": name, **args}`` dict or an initializer; recorded in ``config()``). The input
    is cast to the weight's dtype.

    Args:
        in_features: size of the last input axis: an int >= 1 with the default ``init`` (0 only with
            an explicit ``init``; torch accepts 0 with its default).
        out_features: size of the last output axis, an int >= 0.
        bias: learn an additive bias ``b`` of shape (out_features,); default True.
        dtype: dtype of the weight and bias, default ``"float32"`` (torch: the global default dtype).
        init: initializer of ``weight`` (out_features, in_features); default None keeps torch's
            ``kaiming_uniform_(a=sqrt(5))``, i.e. U(-1/sqrt(in_features), 1/sqrt(in_features)).
        bias_init: initializer of ``bias``; default None keeps U(-1/sqrt(in_features), 1/sqrt(in_features)).

    Shapes:
        ``forward(x)``: x (..., in_features) -> y (..., out_features), in the weight's dtype.
        ``backward(dy)``: dy of y's shape -> dx of x's shape (None after ``requires_input_grad(False)``);
        adds dW (out_features, in_features) and db (out_features,) to the gradients.

    Raises:
        ConfigError: ``in_features``/``out_features`` not an integer >= 0, ``in_features`` 0 with the
            default ``init``, more parameters than ``PLAIT_MAX_PARAMETERS``, or an ``init``/``bias_init``
            that names no initializer.
        ShapeError: an input whose last axis is not ``in_features``, or a ``dy`` of another shape than y.
        DTypeError: a non-floating input or ``dy``.
        PlaitError: ``backward`` without a matching ``forward``.
    """

    maths = (linear_forward, linear_backward)
    maths_params = ("weight", "bias")

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: str = "float32", *,
                 init: InitSpec = None, bias_init: InitSpec = None) -> None:
        super().__init__()
        self.in_features = check_size(in_features, "Linear", "in_features", minimum=0)
        self.out_features = check_size(out_features, "Linear", "out_features", minimum=0)
        check_parameter_count((self.in_features + 1) * self.out_features, "Linear")
        w_init = chosen_initializer(self, "init", init, "Linear")
        b_init = chosen_initializer(self, "bias_init", bias_init, "Linear")
        rng = get_rng()
        shape = (self.out_features, self.in_features)
        if w_init is None:
            self.weight = Param(KaimingUniform(a=math.sqrt(5))(shape, self.in_features, self.out_features, rng, dtype))
        else:
            self.weight = Param(draw(w_init, shape, dtype))
        if not bias:
            self.bias = None
        elif b_init is None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            self.bias = Param(Uniform(-bound, bound)((self.out_features,), self.in_features, self.out_features, rng, dtype))
        else:
            self.bias = Param(draw(b_init, (self.out_features,), dtype))

    def check_input(self, x: Any) -> Any:
        x = check_array(x, "Linear", ndim_min=1, last_dim=self.in_features)
        dtype = self.weight.data.dtype
        return x if x.dtype == dtype else x.astype(dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x (a placeholder, as ``torch.nn.Identity``); any input is handed through unchanged.

    Takes no arguments (torch's ``Identity(*args, **kwargs)`` ignores any it is given; here any raises
    ``TypeError``). Shapes: ``forward(x)`` returns x itself; ``backward(dy)`` returns dy itself.
    """

    maths = (identity_forward, identity_backward)

    def check_input(self, x: Any) -> Any:
        return x


LAYERS: dict[str, type] = {"linear": Linear, "identity": Identity}

