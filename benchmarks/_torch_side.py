"""The PyTorch side of each benchmark row: the idiomatic eager training loop.

``zero_grad`` (to None, torch's default), forward, ``F.cross_entropy``, ``backward``,
``step``; torch's default optimizer implementation for CPU tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _torch_models import torch_generate

__all__ = ["DEVICE", "gpt_generation", "lm_training", "classifier_epoch", "classifier_steps"]

DEVICE = "cpu"
"""Where the data tensors go (``benchmarks/bench_gpu.py`` sets "cuda" and moves the models)."""


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).to(DEVICE)


def _step(model: Any, opt: Any, x: torch.Tensor, y: torch.Tensor, clip: float | None = None) -> None:
    opt.zero_grad()
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


def _eval_loss(model: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        logits = model(x)
        return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y))


def classifier_steps(model: Any, x: np.ndarray, y: np.ndarray, lr: float, steps: int) -> tuple[Callable[[], Any], Callable[[], float]]:
    tx, ty = _tensor(x), _tensor(y.astype(np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def run() -> None:
        for _ in range(steps):
            _step(model, opt, tx, ty)

    return run, lambda: _eval_loss(model, tx, ty)


def classifier_epoch(model: Any, x: np.ndarray, y: np.ndarray, batch: int, lr: float) -> tuple[Callable[[], Any], Callable[[], float]]:
    tx, ty = _tensor(x), _tensor(y.astype(np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = tx.shape[0]

    def run() -> None:
        for i in range(0, n, batch):
            _step(model, opt, tx[i:i + batch], ty[i:i + batch])

    return run, lambda: _eval_loss(model, tx[:batch], ty[:batch])


def lm_training(model: Any, ids: np.ndarray, optimizer: str, steps: int, clip: float | None = None,
                **opt_args: Any) -> tuple[Callable[[], Any], Callable[[], float]]:
    t = _tensor(ids.astype(np.int64))
    x, y = t[:, :-1].contiguous(), t[:, 1:].reshape(-1)
    opt = getattr(torch.optim, optimizer)(model.parameters(), **opt_args)

    def run() -> None:
        for _ in range(steps):
            _step(model, opt, x, y, clip)

    return run, lambda: _eval_loss(model, x, y)


def gpt_generation(model: Any, prompt: np.ndarray, new_tokens: int) -> tuple[Callable[[], Any], Callable[[], Any]]:
    def run() -> Any:
        return torch_generate(model, prompt, new_tokens)

    return run, run
