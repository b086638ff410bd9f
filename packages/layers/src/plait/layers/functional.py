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

from plait.core import ConfigError, Module, ShapeError, check_array, get_array_module, no_grad

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
    """One stateless instance per (class, options): built (and its options validated) once."""
    return cls(**dict(options))


def _activation(cls: type, x: Any, **options: Any) -> Any:
    try:
        layer = _layer(cls, *sorted(options.items()))
    except TypeError as exc:  # an unhashable option: not a value this function takes
        raise ConfigError(f"F.{cls.__name__}: options must be numbers or strings, got {options!r}") from exc
    x = layer.check_input(x)
    return layer.maths[0](x, **layer.options(x))[0]


def relu(x: Any) -> Any:
    """max(x, 0)."""
    return _activation(act.ReLU, x)


def relu6(x: Any) -> Any:
    """min(max(x, 0), 6)."""
    return _activation(act.ReLU6, x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """x if x > 0 else negative_slope * x."""
    return _activation(act.LeakyReLU, x, negative_slope=negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """x if x > 0 else alpha (exp(x) - 1)."""
    return _activation(act.ELU, x, alpha=alpha)


def selu(x: Any) -> Any:
    """scale * elu(x, alpha) with the self-normalising constants."""
    return _activation(act.SELU, x)


def celu(x: Any, alpha: float = 1.0) -> Any:
    """max(x, 0) + min(0, alpha (exp(x / alpha) - 1))."""
    return _activation(act.CELU, x, alpha=alpha)


def gelu(x: Any, approximate: str = "none") -> Any:
    """x Phi(x); ``approximate="tanh"`` for the tanh form."""
    return _activation(act.GELU, x, approximate=approximate)


def silu(x: Any) -> Any:
    """x * sigmoid(x)."""
    return _activation(act.SiLU, x)


def mish(x: Any) -> Any:
    """x * tanh(softplus(x))."""
    return _activation(act.Mish, x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)), stable for any x."""
    return _activation(act.Sigmoid, x)


def tanh(x: Any) -> Any:
    """tanh(x)."""
    return _activation(act.Tanh, x)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    """log(1 + exp(beta x)) / beta; x itself where beta x > threshold."""
    return _activation(act.Softplus, x, beta=beta, threshold=threshold)


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    """clip(x, min_val, max_val)."""
    return _activation(act.Hardtanh, x, min_val=min_val, max_val=max_val)


def hardsigmoid(x: Any) -> Any:
    """min(max(x + 3, 0), 6) / 6."""
    return _activation(act.Hardsigmoid, x)


def hardswish(x: Any) -> Any:
    """x min(max(x + 3, 0), 6) / 6."""
    return _activation(act.Hardswish, x)


def logsigmoid(x: Any) -> Any:
    """log(sigmoid(x)) = -softplus(-x)."""
    return _activation(act.LogSigmoid, x)


def softsign(x: Any) -> Any:
    """x / (1 + |x|)."""
    return _activation(act.Softsign, x)


def softmax(x: Any, dim: int = -1) -> Any:
    """exp(x) / sum(exp(x)) along ``dim``."""
    return _activation(act.Softmax, x, dim=dim)


def log_softmax(x: Any, dim: int = -1) -> Any:
    """x - logsumexp(x) along ``dim``."""
    return _activation(act.LogSoftmax, x, dim=dim)


def glu(x: Any, dim: int = -1) -> Any:
    """a * sigmoid(b) with x split in halves [a, b] along ``dim``."""
    return _activation(act.GLU, x, dim=dim)


def prelu(x: Any, weight: Any) -> Any:
    """max(x, 0) + weight_c min(x, 0); weight: (1,) or (C,) for x of shape (N, C, ...)."""
    x = check_array(x, "F.prelu")
    w = check_array(weight, "F.prelu", what="weight", ndim=1)
    if w.size != 1 and (x.ndim < 2 or x.shape[1] != w.size):
        raise ShapeError(f"F.prelu: a weight of {w.size} slopes needs input of shape (N, {w.size}, ...), "
                         f"got {tuple(x.shape)}")
    return prelu_forward(x, w.astype(x.dtype, copy=False))[0]


# -- dense and dropout ------------------------------------------------------------------------------
def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """x (..., in) @ weight.T (weight: (out, in)) + bias (out,) -> (..., out)."""
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
    the identity otherwise. The mask comes from ``rng`` (default: ``plait.core.get_rng()``)."""
    p = act.finite_number(p, "F.dropout", "p")
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
    """Softmax cross entropy of logits (N, C, ...) against class ids (N, ...) or probabilities."""
    return _loss(ls.CrossEntropyLoss(weight, ignore_index, reduction, label_smoothing), input, target)


def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> Any:
    """-logp[target] of log-probabilities (N, C, ...) at class ids (N, ...)."""
    return _loss(ls.NLLLoss(weight, ignore_index, reduction), input, target)


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """(input - target)^2."""
    return _loss(le.MSELoss(reduction), input, target)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Any:
    """|input - target|."""
    return _loss(le.L1Loss(reduction), input, target)


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Any:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta)."""
    return _loss(le.HuberLoss(reduction, delta), input, target)


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Any:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (L1 at beta = 0)."""
    return _loss(le.SmoothL1Loss(reduction, beta), input, target)


def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Any:
    """-w [t log p + (1 - t) log(1 - p)] on probabilities p = input."""
    return _loss(le.BCELoss(weight, reduction), input, target)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Any:
    """Sigmoid + binary cross entropy on logits, in one stable formula."""
    return _loss(le.BCEWithLogitsLoss(weight, reduction, pos_weight), input, target)


def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Any:
    """target (log target - input) pointwise, input = log-probabilities; "batchmean" for the KL per sample."""
    return _loss(le.KLDivLoss(reduction, log_target), input, target)


def cosine_embedding_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: str = "mean") -> Any:
    """1 - cos(x1, x2) where target = 1, max(0, cos(x1, x2) - margin) where target = -1."""
    return _loss(lp.CosineEmbeddingLoss(margin, reduction), input1, input2, target)


def margin_ranking_loss(input1: Any, input2: Any, target: Any, margin: float = 0.0, reduction: str = "mean") -> Any:
    """max(0, -target (input1 - input2) + margin)."""
    return _loss(lp.MarginRankingLoss(margin, reduction), input1, input2, target)
