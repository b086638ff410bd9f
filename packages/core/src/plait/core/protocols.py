"""Runtime-checkable protocols: what a component must offer to plug into Plait.

They are structural (``isinstance(obj, OptimizerProtocol)`` needs no inheritance) and they
are what the registry checks: a class or object registered in a table must define every
public method of that table's protocol (:data:`PROTOCOLS`), or registering it is a
``PluginError`` naming the missing methods. The ``*Protocol`` names say what they are: the
concrete base classes keep the plain names in their packages (``plait.layers.Loss``,
``plait.optim.Optimizer``, ``plait.core.Module``).

There is no Tensor type: every array is a ``numpy.ndarray`` or ``cupy.ndarray``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .param import Param

__all__ = [
    "PROTOCOLS",
    "Array",
    "CallbackProtocol",
    "InitializerProtocol",
    "LayerProtocol",
    "LossProtocol",
    "MetricProtocol",
    "OptimizerProtocol",
    "SchedulerProtocol",
    "TokenizerProtocol",
    "required_methods",
]

Array = Any  # numpy.ndarray or cupy.ndarray


@runtime_checkable
class LayerProtocol(Protocol):
    """``forward`` caches, ``backward`` accumulates param grads and returns input grads."""

    training: bool

    def forward(self, x: Array, *args: Any, **kwargs: Any) -> Array: ...
    def backward(self, dy: Array) -> Array | tuple[Array, ...]: ...
    def parameters(self) -> Iterable[Param]: ...


@runtime_checkable
class LossProtocol(Protocol):
    """``forward(*predictions, target)`` -> a float (or per-element losses for ``reduction="none"``);
    ``backward(grad_output=None)`` -> d loss / d prediction (a tuple for a two-input loss)."""

    def forward(self, *inputs: Array) -> Any: ...
    def backward(self, grad_output: Any = None) -> Array | tuple[Array, ...]: ...


@runtime_checkable
class OptimizerProtocol(Protocol):
    """Updates the params it was given, in place."""

    def step(self) -> None: ...
    def zero_grad(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class InitializerProtocol(Protocol):
    """``init(shape, fan_in, fan_out, rng, dtype) -> array``."""

    def __call__(
        self, shape: Sequence[int], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any
    ) -> np.ndarray: ...


@runtime_checkable
class SchedulerProtocol(Protocol):
    def step(self, *args: Any) -> None: ...
    def get_last_lr(self) -> list[float]: ...
    def state_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class MetricProtocol(Protocol):
    name: str

    def reset(self) -> None: ...
    def update(self, pred: Array, target: Array) -> None: ...
    def compute(self) -> float: ...


@runtime_checkable
class TokenizerProtocol(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...


@runtime_checkable
class CallbackProtocol(Protocol):
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...


#: Registry table -> the protocol its entries must satisfy ("models" holds factories: unchecked).
PROTOCOLS: dict[str, type] = {
    "layers": LayerProtocol,
    "losses": LossProtocol,
    "initializers": InitializerProtocol,
    "optimizers": OptimizerProtocol,
    "schedulers": SchedulerProtocol,
    "metrics": MetricProtocol,
    "callbacks": CallbackProtocol,
    "tokenizers": TokenizerProtocol,
}


def required_methods(protocol: type) -> tuple[str, ...]:
    """The public methods a protocol declares, in order (data members such as ``training`` are
    instance state, so a registered class is not asked for them)."""
    return tuple(name for name, value in vars(protocol).items() if not name.startswith("_") and callable(value))
