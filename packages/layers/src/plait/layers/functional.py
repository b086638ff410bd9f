"""``plait.layers.functional``: the stateless maths of ``torch.nn.functional``, imported as ``F``::

    import plait.layers.functional as F
    y = F.gelu(x, approximate="tanh")
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)

**Forward only.** Plait has no autograd: an ``F.*`` call returns the forward value and keeps
nothing for a backward pass. Gradients come from a module's ``backward`` (``GELU()``,
``CrossEntropyLoss()``) or, for a hand-written model, from the pure pairs the modules are
built on (``plait.layers._activation_maths.gelu_forward`` / ``gelu_backward``, and so on).
Every function here runs those same pairs after the same input checks as its module, so an
``F.*`` value equals the module's forward exactly; names, arguments and defaults are torch's.

Shapes: activations take any ``(...)`` float array and return the same shape (``glu`` halves
``dim``); losses take what their ``*Loss`` class takes and return a float ("mean", "sum",
KLDivLoss's "batchmean") or the per-element array ("none").
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from plait.core import ConfigError, Module, ShapeError, check_array, check_number, get_array_module, no_grad

from . import activations as act
from . import losses as ls
from . import losses_elementwise as le
from . import losses_pairwise as lp
from ._dropout_maths import dropout_mask
from ._linear_maths import linear_forward
from ._pointwise_maths import prelu_forward
from ._special import erfc

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "celu", "cosine_embedding_loss", "cross_entropy",
    "dropout", "elu", "erfc", "gelu", "glu", "hardsigmoid", "hardswish", "hardtanh", "huber_loss", "kl_div", "l1_loss",
    "leaky_relu", "linear", "log_softmax", "logsigmoid", "margin_ranking_loss", "mish", "mse_loss", "nll_loss",
    "prelu", "relu", "relu6", "selu", "sigmoid", "silu", "smooth_l1_loss", "softmax", "softplus", "softsign", "tanh",
]


# -- activations: the module's checks, then its forward function; nothing is cached ----------------
@lru_cache(maxsize=128)
def _layer(cls: type, *options: tuple[str, Any]) -> Module:
    """One stateless instance per (class, options): built (and its options validated) once.

    Built from the class itself, not by name through ``registry.build``: ``F.gelu`` is always
    Plait's GELU, whatever a plugin registers under "gelu"."""
    return cls(**dict(options))


def _activation(cls: type, x: Any, **options: Any) -> Any:
    try:
        layer = _layer(cls, *sorted(options.items()))
    except TypeError as exc:  # an unhashable option: not a value this function takes
        raise ConfigError(f"F.{cls.__name__}: options must be numbers or strings, got {options!r}") from exc
    x = layer.check_input(x)
    return layer.maths[0](x, **layer.options(x))[0]


def relu(x: Any) -> Any:
    """max(x, 0).

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.ReLU, x)


def relu6(x: Any) -> Any:
    """min(max(x, 0), 6).

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.ReLU6, x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """x if x > 0 else negative_slope * x.

    Args:
        x: the input (...), float.
        negative_slope: slope for x <= 0, default 0.01 (as torch).

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.LeakyReLU, x, negative_slope=negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """x if x > 0 else alpha (exp(x) - 1).

    Args:
        x: the input (...), float.
        alpha: scale of the negative branch, default 1.0 (as torch).

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.ELU, x, alpha=alpha)


def selu(x: Any) -> Any:
    """scale * elu(x, alpha) with the self-normalising constants.

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.SELU, x)


def celu(x: Any, alpha: float = 1.0) -> Any:
    """max(x, 0) + min(0, alpha (exp(x / alpha) - 1)).

    Args:
        x: the input (...), float.
        alpha: the CELU scale, a finite non-zero number; default 1.0 (as torch).

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
        ConfigError: ``alpha`` zero or not a finite number.
    """
    return _activation(act.CELU, x, alpha=alpha)


def gelu(x: Any, approximate: str = "none") -> Any:
    """x Phi(x); ``approximate="tanh"`` for the tanh form.

    Args:
        x: the input (...), float.
        approximate: ``"none"`` (default, exact) or ``"tanh"``, as torch.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
        ConfigError: ``approximate`` neither ``"none"`` nor ``"tanh"``.
    """
    return _activation(act.GELU, x, approximate=approximate)


def silu(x: Any) -> Any:
    """x * sigmoid(x).

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.SiLU, x)


def mish(x: Any) -> Any:
    """x * tanh(softplus(x)).

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.Mish, x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)), stable for any x.

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.Sigmoid, x)


def tanh(x: Any) -> Any:
    """tanh(x).

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.Tanh, x)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """log(1 + exp(beta x)) / beta; x itself where beta x > threshold.

    Args:
        x: the input (...), float.
        beta: sharpness, default 1.0 (as torch).
        threshold: above ``beta * x`` > threshold the output is x; default 20.0 (as torch).

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.Softplus, x, beta=beta, threshold=threshold)


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    """clip(x, min_val, max_val).

    Args:
        x: the input (...), float.
        min_val: lower clip value, default -1.0 (as torch).
        max_val: upper clip value, above ``min_val``; default 1.0 (as torch).

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
        ConfigError: ``min_val`` not below ``max_val``.
    """
    return _activation(act.Hardtanh, x, min_val=min_val, max_val=max_val)


def hardsigmoid(x: Any) -> Any:
    """min(max(x + 3, 0), 6) / 6.

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.Hardsigmoid, x)


def hardswish(x: Any) -> Any:
    """x min(max(x + 3, 0), 6) / 6.

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.Hardswish, x)


def logsigmoid(x: Any) -> Any:
    """log(sigmoid(x)) = -softplus(-x).

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.LogSigmoid, x)


def softsign(x: Any) -> Any:
    """x / (1 + |x|).

    Args:
        x: the input (...), float.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
    """
    return _activation(act.Softsign, x)


def softmax(x: Any, dim: int = -1) -> Any:
    """exp(x) / sum(exp(x)) along ``dim``.

    Args:
        x: the input (...), float, at least one axis.
        dim: the axis, default -1 (torch's ``dim=None`` picks one by rank with a warning; here the
            last axis is the default). Torch's ``dtype`` argument is not accepted.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
        ShapeError: ``dim`` out of range for x.
    """
    return _activation(act.Softmax, x, dim=dim)


def log_softmax(x: Any, dim: int = -1) -> Any:
    """x - logsumexp(x) along ``dim``.

    Args:
        x: the input (...), float, at least one axis.
        dim: the axis, default -1 (torch's ``dim=None`` picks one by rank with a warning; here the
            last axis is the default). Torch's ``dtype`` argument is not accepted.

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x.
        ShapeError: ``dim`` out of range for x.
    """
    return _activation(act.LogSoftmax, x, dim=dim)


def glu(x: Any, dim: int = -1) -> Any:
    """a * sigmoid(b) with x split in halves [a, b] along ``dim``.

    Args:
        x: the input (..., 2H, ...), float.
        dim: the axis that is halved, default -1 (as torch).

    Returns:
        y (..., H, ...), x's dtype.

    Raises:
        DTypeError: a non-floating x.
        ShapeError: ``dim`` out of range for x, or an odd size along it.
    """
    return _activation(act.GLU, x, dim=dim)


def prelu(x: Any, weight: Any) -> Any:
    """max(x, 0) + weight_c min(x, 0); weight: (1,) or (C,) for x of shape (N, C, ...).

    Args:
        x: the input (...), or (N, C, ...) when weight has C > 1 slopes; float.
        weight: the slopes, 1-D: (1,) or (C,) (required, as torch).

    Returns:
        y of x's shape and dtype.

    Raises:
        DTypeError: a non-floating x or weight.
        ShapeError: weight not 1-D, or C > 1 slopes and x's axis 1 not C.
    """
    x = check_array(x, "F.prelu")
    w = check_array(weight, "F.prelu", what="weight", ndim=1)
    if w.size != 1 and (x.ndim < 2 or x.shape[1] != w.size):
        raise ShapeError(f"F.prelu: a weight of {w.size} slopes needs input of shape (N, {w.size}, ...), "
                         f"got {tuple(x.shape)}")
    return prelu_forward(x, w.astype(x.dtype, copy=False))[0]


# -- dense and dropout ------------------------------------------------------------------------------
def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """x (..., in) @ weight.T (weight: (out, in)) + bias (out,) -> (..., out).

    Args:
        x: the input (..., in), float.
        weight: W (out, in), cast to x's dtype.
        bias: b (out,), or None (default) for no bias.

    Returns:
        y (..., out) in x's dtype.

    Raises:
        DTypeError: a non-floating x, weight or bias.
        ShapeError: weight not 2-D, x's last axis not ``in``, or bias not (out,).
    """
    w = check_array(weight, "F.linear", what="weight", ndim=2)
    x = check_array(x, "F.linear", ndim_min=1, last_dim=w.shape[1])
    b = None
    if bias is not None:
        b = check_array(bias, "F.linear", what="bias", ndim=1)
        if b.shape[0] != w.shape[0]:
            raise ShapeError(f"F.linear: bias of shape {tuple(b.shape)} for a weight of shape {tuple(w.shape)}")
        b = b.astype(x.dtype, copy=False)
    return linear_forward(x, w.astype(x.dtype, copy=False), b)[0]


def dropout(x: Any, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Any:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) when ``training``;
    the identity otherwise. The mask comes from ``rng`` (default: ``plait.core.get_rng()``).

    Args:
        x: the input (...), float.
        p: the drop probability, in [0, 1]; default 0.5 (as torch).
        training: apply dropout; default True (as torch's functional form, unlike the module's
            ``training`` flag). Torch's ``inplace`` is not accepted.
        rng: a ``numpy.random.Generator`` for the mask; default None means ``plait.core.get_rng()``.

    Returns:
        y of x's shape (x itself when not training or p = 0).

    Raises:
        ConfigError: ``p`` not a finite number in [0, 1], or ``rng`` not a Generator.
        DTypeError: a non-floating x.
    """
    p = check_number(p, "F.dropout", "p")
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"F.dropout: p must be a probability in [0, 1], got {p}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ConfigError(f"F.dropout: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    x = check_array(x, "F.dropout")
    if not training or p == 0.0:
        return x
    return x * dropout_mask(x.shape, p, x.dtype, get_array_module(x), rng=rng)


# -- losses: the loss class's checks and pair, with nothing cached for a backward ------------------
def _loss(fn: ls.Loss, *arrays: Any) -> Any:
    with no_grad():
        return fn(*arrays)


def cross_entropy(input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Any:
    """Softmax cross entropy of logits (N, C, ...) against class ids (N, ...) or probabilities.

    Args:
        input: logits (N, C), (N, C, d1, ...) or (C,).
        target: class ids (N,), (N, d1, ...) or (), or float probabilities of input's shape.
        weight: per-class weights (C,), default None; see ``CrossEntropyLoss``.
        ignore_index: id target value that is ignored, default -100 (as torch).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).
        label_smoothing: in [0, 1], default 0.0 (as torch).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(ls.CrossEntropyLoss(weight, ignore_index, reduction, label_smoothing), input, target)


def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> Any:
    """-logp[target] of log-probabilities (N, C, ...) at class ids (N, ...).

    Args:
        input: log-probabilities (N, C), (N, C, d1, ...) or (C,).
        target: class ids (N,), (N, d1, ...) or ().
        weight: per-class weights (C,), default None.
        ignore_index: target value that is ignored, default -100 (as torch).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(ls.NLLLoss(weight, ignore_index, reduction), input, target)


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """(input - target)^2.

    Args:
        input: the prediction (any shape), float.
        target: input's shape, float.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(le.MSELoss(reduction), input, target)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """|input - target|.

    Args:
        input: the prediction (any shape), float.
        target: input's shape, float.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(le.L1Loss(reduction), input, target)


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Any:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta).

    Args:
        input: the prediction (any shape), float.
        target: input's shape, float.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).
        delta: the quadratic-to-linear threshold, > 0; default 1.0 (as torch).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(le.HuberLoss(reduction, delta), input, target)


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Any:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (L1 at beta = 0).

    Args:
        input: the prediction (any shape), float.
        target: input's shape, float.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).
        beta: the quadratic-to-linear threshold, a finite number >= 0; default 1.0 (as torch).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(le.SmoothL1Loss(reduction, beta), input, target)


def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Any:
    """-w [t log p + (1 - t) log(1 - p)] on probabilities p = input.

    Args:
        input: probabilities in [0, 1] (any shape).
        target: input's shape, float.
        weight: rescaling weight broadcast against input, default None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(le.BCELoss(weight, reduction), input, target)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Any:
    """Sigmoid + binary cross entropy on logits, in one stable formula.

    Args:
        input: logits (any shape).
        target: input's shape, float.
        weight: rescaling weight broadcast against input, default None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).
        pos_weight: weight of the positive term broadcast against input (usually (C,)), default None.

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(le.BCEWithLogitsLoss(weight, reduction, pos_weight), input, target)


def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Any:
    """target (log target - input) pointwise, input = log-probabilities; "batchmean" for the KL per sample.

    Args:
        input: log-probabilities (any shape, e.g. (N, C)).
        target: probabilities (log-probabilities with ``log_target``), input's shape.
        reduction: ``"mean"`` (default, as torch: over every element), ``"batchmean"`` (over N), ``"sum"`` or ``"none"``.
        log_target: the target holds log-probabilities; default False (as torch).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(le.KLDivLoss(reduction, log_target), input, target)


def cosine_embedding_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: str = "mean") -> Any:
    """1 - cos(x1, x2) where target = 1, max(0, cos(x1, x2) - margin) where target = -1.

    Args:
        input1: (N, D) or (D,), float.
        input2: input1's shape.
        target: +1 or -1 per pair, (N,) or ().
        margin: a finite number, default 0.0 (as torch).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(lp.CosineEmbeddingLoss(margin, reduction), input1, input2, target)


def margin_ranking_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: str = "mean") -> Any:
    """max(0, -target (input1 - input2) + margin).

    Args:
        input1: (N,) or (), float.
        input2: input1's shape.
        target: +1 or -1 per element, input1's shape.
        margin: a finite number, default 0.0 (as torch).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``, as torch (the deprecated ``size_average``/``reduce`` are not accepted).

    Returns:
        A Python float for ``"mean"``/``"sum"``, or the per-element losses for ``"none"``.

    Raises:
        ConfigError: an invalid argument (as the class constructor).
        ShapeError: shapes that do not match (as the class).
        DTypeError: a non-floating input or a target of the wrong kind.
    """
    return _loss(lp.MarginRankingLoss(margin, reduction), input1, input2, target)
