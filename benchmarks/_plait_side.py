"""The Plait side of each benchmark row: model, loss, optimizer and one timed call.

Imports only NumPy and Plait, so that a memory-measuring child process for the Plait side
never loads torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["gpt_generation", "lm_training", "classifier_epoch", "classifier_steps"]


def _optimizer(name: str) -> type:
    try:
        import plait.optim as optim

        return getattr(optim, name)
    except (ImportError, AttributeError):  # the package's public namespace may not export it yet
        from plait.optim import adam, sgd

        return getattr(sgd if name == "SGD" else adam, name)


def _cross_entropy() -> Any:
    from plait.layers import CrossEntropyLoss

    return CrossEntropyLoss()


def _data_input(model: Any) -> Any:
    """The model's input is data: no input gradient (what ``Trainer.fit`` declares, and what
    PyTorch infers from ``requires_grad=False``). Older cores without the switch are left as is."""
    switch = getattr(model, "requires_input_grad", None)
    if switch is not None:
        switch(False)
    return model


def _train_step(model: Any, loss_fn: Any, opt: Any, x: Any, y: Any, clip: Callable[[], Any] | None = None) -> float:
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    if clip is not None:
        clip()
    opt.step()
    opt.zero_grad()
    return loss


def _eval_loss(model: Any, loss_fn: Any, x: Any, y: Any) -> float:
    from plait.core import no_grad

    with no_grad():
        return float(loss_fn(model(x), y))


def classifier_steps(model: Any, x: np.ndarray, y: np.ndarray, lr: float, steps: int) -> tuple[Callable[[], Any], Callable[[], float]]:
    """``steps`` SGD steps on one batch (x, y); returns (timed call, loss of the initial model)."""
    _data_input(model)
    loss_fn, opt = _cross_entropy(), _optimizer("SGD")(model.parameters(), lr=lr)

    def run() -> None:
        for _ in range(steps):
            _train_step(model, loss_fn, opt, x, y)

    return run, lambda: _eval_loss(model, loss_fn, x, y)


def classifier_epoch(model: Any, x: np.ndarray, y: np.ndarray, batch: int, lr: float) -> tuple[Callable[[], Any], Callable[[], float]]:
    """One SGD epoch over (x, y) in order, ``batch`` rows at a time (contiguous slices)."""
    _data_input(model)
    loss_fn, opt = _cross_entropy(), _optimizer("SGD")(model.parameters(), lr=lr)
    n = x.shape[0]

    def run() -> None:
        for i in range(0, n, batch):
            _train_step(model, loss_fn, opt, x[i:i + batch], y[i:i + batch])

    return run, lambda: _eval_loss(model, loss_fn, x[:batch], y[:batch])


class _FlatLM:
    """Adapts an LM (ids (B, T) -> logits (B, T, V)) to (B*T, V) rows for the loss."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._shape: tuple[int, ...] = ()

    def __call__(self, ids: Any) -> Any:
        logits = self.model(ids)
        self._shape = logits.shape
        return logits.reshape(-1, logits.shape[-1])

    def backward(self, dflat: Any) -> Any:
        return self.model.backward(dflat.reshape(self._shape))


def lm_training(model: Any, ids: np.ndarray, optimizer: str, steps: int, clip: float | None = None,
                **opt_args: Any) -> tuple[Callable[[], Any], Callable[[], float]]:
    """``steps`` next-token training steps on ids (B, T+1), the gradient norm clipped to ``clip``
    when given; returns (timed call, initial loss)."""
    from plait.core import get_array_module

    xp = get_array_module(ids)  # the ids may be on the GPU (benchmarks/bench_gpu.py)
    x, y = xp.ascontiguousarray(ids[:, :-1]), xp.ascontiguousarray(ids[:, 1:]).reshape(-1)
    flat, loss_fn = _FlatLM(_data_input(model)), _cross_entropy()
    params = list(model.parameters())
    opt = _optimizer(optimizer)(params, **opt_args)
    clip_norm = None
    if clip is not None:
        from plait.optim import clip_grad_norm_

        def clip_norm() -> None:
            clip_grad_norm_(params, clip)

    def run() -> None:
        for _ in range(steps):
            _train_step(flat, loss_fn, opt, x, y, clip_norm)

    return run, lambda: _eval_loss(flat, loss_fn, x, y)


def gpt_generation(model: Any, prompt: np.ndarray, new_tokens: int) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Greedy KV-cached generation of ``new_tokens`` after ``prompt`` (B, T); returns (timed call, ids)."""
    from plait.zoo.generation import generate

    def run() -> Any:
        return generate(model, prompt, new_tokens, temperature=0.0, use_cache=True)

    return run, run
