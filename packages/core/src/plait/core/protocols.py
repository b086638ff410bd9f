"""Runtime-checkable protocols: what a component must offer to plug into Plait.

There is no Tensor type: every array is a ``numpy.ndarray`` or ``cupy.ndarray``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .param import Param

__all__ = ["Array", "Callback", "Initializer", "Layer", "Loss", "Metric", "Optimizer", "Scheduler", "Tokenizer"]

Array = Any  # numpy.ndarray or cupy.ndarray


@runtime_checkable
class Layer(Protocol):
    """``forward`` caches, ``backward`` accumulates param grads and returns input grads."""

    training: bool

    def forward(self, x: Array, *args: Any, **kwargs: Any) -> Array: ...
    def backward(self, dy: Array) -> Array | tuple[Array, ...]: ...
    def parameters(self) -> Iterable[Param]: ...


@runtime_checkable
class Loss(Protocol):
    """``forward(pred, target) -> float``; ``backward() -> dpred``."""

    def forward(self, pred: Array, target: Array) -> float: ...
    def backward(self) -> Array: ...


@runtime_checkable
class Optimizer(Protocol):
    """Updates the params it was given, in place."""

    def step(self) -> None: ...
    def zero_grad(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Initializer(Protocol):
    """``init(shape, fan_in, fan_out, rng, dtype) -> array``."""

    def __call__(
        self, shape: Sequence[int], fan_in: int, fan_out: int, rng: np.random.Generator, dtype: Any
    ) -> np.ndarray: ...


@runtime_checkable
class Scheduler(Protocol):
    def step(self, *args: Any) -> None: ...
    def get_last_lr(self) -> list[float]: ...
    def state_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class Metric(Protocol):
    name: str

    def reset(self) -> None: ...
    def update(self, pred: Array, target: Array) -> None: ...
    def compute(self) -> float: ...


@runtime_checkable
class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...


@runtime_checkable
class Callback(Protocol):
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None: ...
