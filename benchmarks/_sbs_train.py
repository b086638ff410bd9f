"""One training driver, two sides: the same batches, schedule and evaluations for Plait and PyTorch.

A side offers ``step(x, y)`` (one optimizer step, loss of the batch returned) and
``evaluate() -> (loss, accuracy or None)``. :func:`train` draws the batches from a seeded
generator (so both sides see identical data in identical order), times only the steps and
evaluates at the recipe's points; :class:`Run` lets two sides take turns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from _sbs_tasks import Recipe

__all__ = ["PlaitSide", "Run", "TorchSide", "planned_steps"]


def planned_steps(recipe: Recipe, data: dict[str, Any]) -> int:
    if recipe.kind == "lm":
        return recipe.steps
    return recipe.epochs * math.ceil(len(data["x_train"]) / recipe.batch_size)


def _batches(recipe: Recipe, data: dict[str, Any]) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """(x, y, evaluate after this step) for every planned step."""
    rng = np.random.default_rng(0)
    if recipe.kind == "classifier":
        x, y, b = data["x_train"], data["y_train"], recipe.batch_size
        for _ in range(recipe.epochs):
            order = rng.permutation(len(x))
            for i in range(0, len(order), b):
                idx = order[i:i + b]
                yield x[idx], y[idx], i + b >= len(order)
        return
    ids, t = data["train_ids"], recipe.context
    for step in range(1, recipe.steps + 1):
        starts = rng.integers(0, len(ids) - t - 1, recipe.batch_size)
        window = ids[starts[:, None] + np.arange(t + 1)]
        yield window[:, :-1], window[:, 1:], step % recipe.eval_every == 0 or step == recipe.steps


def validation_windows(recipe: Recipe, data: dict[str, Any], count: int = 64) -> tuple[np.ndarray, np.ndarray]:
    ids, t = data["val_ids"], recipe.context
    n = min(count, (len(ids) - 1) // t)
    window = ids[np.arange(n)[:, None] * t + np.arange(t + 1)]
    return window[:, :-1], window[:, 1:]


class Run:
    """Trains one side period by period (an evaluation ends each period), so that two runs can
    take turns and meet the same load from other processes on a shared machine.

    Stops after the planned steps, or after the first evaluation past ``budget`` training seconds.
    """

    def __init__(self, side: Any, recipe: Recipe, data: dict[str, Any], budget: float) -> None:
        self.side, self.recipe, self.budget = side, recipe, budget
        self.planned = planned_steps(recipe, data)
        self.per_epoch = math.ceil(len(data["x_train"]) / recipe.batch_size) if recipe.kind == "classifier" else None
        self.batches = _batches(recipe, data)
        self.seconds, self.step, self.stopped_by_budget, self.done = 0.0, 0, False, False
        loss, acc = side.evaluate()
        self.curve = [{"step": 0, "epoch": 0.0, "seconds": 0.0, "loss": loss, "accuracy": acc}]

    def advance(self) -> None:
        """Train up to the next evaluation point and evaluate there."""
        for x, y, evaluate in self.batches:
            start = time.perf_counter()
            self.side.step(x, y)
            self.seconds += time.perf_counter() - start
            self.step += 1
            if evaluate:
                break
        loss, acc = self.side.evaluate()
        self.curve.append({"step": self.step, "epoch": self.step / self.per_epoch if self.per_epoch else None,
                           "seconds": self.seconds, "loss": loss, "accuracy": acc})
        if self.step >= self.planned:
            self.done = True
        elif self.seconds >= self.budget:
            self.done = self.stopped_by_budget = True

    def summary(self) -> dict[str, Any]:
        return {"curve": self.curve, "steps": self.step, "train_seconds": self.seconds,
                "stopped_by_budget": self.stopped_by_budget, "seconds_per_step": self.seconds / max(self.step, 1)}


# -- Plait ---------------------------------------------------------------------------------------
class PlaitSide:
    def __init__(self, model: Any, recipe: Recipe, data: dict[str, Any]) -> None:
        from plait.layers import CrossEntropyLoss
        from plait.optim import AdamW, CosineAnnealingLR

        self.model, self.recipe, self.data = model.train(), recipe, data
        self.params = list(model.parameters())
        self.loss_fn = CrossEntropyLoss()
        self.optimizer = AdamW(self.params, lr=recipe.lr, betas=(0.9, 0.999), eps=1e-8,
                               weight_decay=recipe.weight_decay)
        self.scheduler = CosineAnnealingLR(self.optimizer, T_max=planned_steps(recipe, data))
        if recipe.kind == "classifier":
            model.requires_input_grad(False)  # as Trainer does: the data need no gradient

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        logits = self.model(x)
        value = self.loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.model.backward(self.loss_fn.backward().reshape(logits.shape))
        if self.recipe.clip is not None:
            from plait.optim import clip_grad_norm_

            clip_grad_norm_(self.params, self.recipe.clip)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.scheduler.step()
        return value

    def evaluate(self) -> tuple[float, float | None]:
        from plait.core import no_grad

        self.model.eval()
        try:
            with no_grad():
                return _evaluate(lambda x: np.asarray(self.model(x)), self.recipe, self.data)
        finally:
            self.model.train()


# -- PyTorch ---------------------------------------------------------------------------------------
class TorchSide:
    def __init__(self, model: Any, recipe: Recipe, data: dict[str, Any]) -> None:
        import torch

        self.torch, self.model, self.recipe, self.data = torch, model.float().train(), recipe, data
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.999), eps=1e-8,
                                           weight_decay=recipe.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=planned_steps(recipe, data))

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        import torch.nn.functional as F

        torch = self.torch
        self.optimizer.zero_grad()
        logits = self.model(torch.from_numpy(x))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        loss.backward()
        if self.recipe.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def evaluate(self) -> tuple[float, float | None]:
        torch = self.torch
        self.model.eval()
        try:
            with torch.no_grad():
                return _evaluate(lambda x: self.model(torch.from_numpy(x)).numpy(), self.recipe, self.data)
        finally:
            self.model.train()


def _evaluate(forward: Any, recipe: Recipe, data: dict[str, Any]) -> tuple[float, float | None]:
    """Mean cross entropy (and accuracy for classifiers) of ``forward`` over the held-out data."""
    if recipe.kind == "lm":
        x, y = validation_windows(recipe, data)
        chunks = [(x[i:i + 16], y[i:i + 16]) for i in range(0, len(x), 16)]
    else:
        x, y = data["x_test"], data["y_test"]
        chunks = [(x[i:i + 1000], y[i:i + 1000]) for i in range(0, len(x), 1000)]
    nll, correct, count = 0.0, 0, 0
    for xb, yb in chunks:
        logits = forward(xb).astype(np.float64)
        logits = logits.reshape(-1, logits.shape[-1])
        target = yb.reshape(-1)
        peak = logits.max(axis=1, keepdims=True)
        log_z = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
        nll += float((log_z - logits[np.arange(len(target)), target]).sum())
        correct += int((logits.argmax(axis=1) == target).sum())
        count += len(target)
    return nll / count, (correct / count if recipe.kind == "classifier" else None)

