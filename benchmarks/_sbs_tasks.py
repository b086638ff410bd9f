"""The side-by-side tasks: data, the Plait model, its PyTorch twin and the shared recipe.

Every task builds the Plait model first (seeded), then the torch twin with Plait's initial
weights copied in (:func:`_torch_models.copy_weights`), so both frameworks start from the
same network, see the same batches in the same order and use the same optimizer settings
and schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TASKS", "Recipe", "Task"]


@dataclass(frozen=True)
class Recipe:
    """The training recipe both frameworks follow.

    ``kind`` "classifier": ``epochs`` passes over shuffled training data, evaluated after
    each epoch. ``kind`` "lm": ``steps`` batches of random windows, evaluated every
    ``eval_every`` steps. AdamW(lr, betas (0.9, 0.999), eps 1e-8, weight_decay), cosine
    decay of the rate to 0 over the planned steps (stepped per batch), optional clipping of
    the global gradient norm.
    """

    kind: str
    batch_size: int
    lr: float
    weight_decay: float
    epochs: int = 0
    steps: int = 0
    eval_every: int = 0
    context: int = 0
    clip: float | None = None


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    recipe: Recipe
    data: Callable[[dict[str, Any]], dict[str, Any]]  # options -> arrays
    plait_model: Callable[[dict[str, Any]], Any]  # data -> plait Module (seeded)
    torch_model: Callable[[dict[str, Any]], Any]  # data -> torch nn.Module (weights copied afterwards)
    metric: str  # "accuracy" or "loss" (the curve plotted)


def _seeded_zoo(name: str, **args: Any) -> Any:
    import plait.zoo as zoo
    from plait.core import manual_seed

    manual_seed(0)
    return zoo.create(name, **args)


# -- MLP on scikit-learn digits -----------------------------------------------------------------
def _digits(_: dict[str, Any]) -> dict[str, Any]:
    from plait.train.datasets import load_digits

    x, y = load_digits(flatten=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    return {"x_train": x[:split], "y_train": y[:split], "x_test": x[split:], "y_test": y[split:]}


def _torch_mlp(_: dict[str, Any]) -> Any:
    from _torch_models import torch_mlp

    return torch_mlp([64, 128, 10])


# -- LeNet-5 (and ResNet-8) on Fashion-MNIST ---------------------------------------------------------
def _fashion(options: dict[str, Any]) -> dict[str, Any]:
    from plait.train.datasets import load_fashion_mnist

    (x_tr, y_tr), (x_te, y_te) = load_fashion_mnist(download=False)
    limit = options.get("train_limit")
    if limit:
        x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    mean, std = x_tr.mean(), x_tr.std()
    return {"x_train": ((x_tr - mean) / std)[:, None], "y_train": y_tr,
            "x_test": ((x_te - mean) / std)[:, None], "y_test": y_te}


def _torch_lenet5(_: dict[str, Any]) -> Any:
    """The zoo's ``lenet5``: conv 5x5 pad 2 (6) - ReLU - max pool - conv 5x5 (16) - ReLU - max pool - 120 - 84 - 10."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def _torch_resnet8(_: dict[str, Any]) -> Any:
    """The zoo's ``resnet8-mnist``: stem conv 3x3 + BN + ReLU, basic blocks 16-32-64, average pool, linear."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                             if stride != 1 or c_in != c_out else None)

        def forward(self, x: Any) -> Any:
            y = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
            return (y + (x if self.shortcut is None else self.shortcut(x))).relu()

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )


# -- a character GPT on tinyshakespeare ----------------------------------------------------------------
GPT_ARGS = {"context_length": 128, "d_model": 64, "num_layers": 2, "num_heads": 4, "ffn_dim": 256,
            "positional": "rope", "dropout": 0.0, "tie_embeddings": True}


def _shakespeare(options: dict[str, Any]) -> dict[str, Any]:
    path = Path(options["text"])
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path} (pass --text path/to/tinyshakespeare.txt)")
    text = path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    table = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((table[c] for c in text), dtype=np.int64, count=len(text))
    split = int(0.9 * len(ids))
    return {"train_ids": ids[:split], "val_ids": ids[split:], "vocab_size": len(chars)}


def _plait_gpt(d: dict[str, Any]) -> Any:
    return _seeded_zoo("gpt", vocab_size=d["vocab_size"], **GPT_ARGS)


def _torch_gpt(d: dict[str, Any]) -> Any:
    from _torch_models import TorchGPT

    a = GPT_ARGS
    return TorchGPT(d["vocab_size"], a["context_length"], a["d_model"], a["num_layers"], a["num_heads"],
                    a["ffn_dim"], None, a["tie_embeddings"], a["positional"], True)


TASKS: dict[str, Task] = {
    "mlp-digits": Task(
        "mlp-digits", "MLP 64-128-10 on scikit-learn digits (1,437 train / 360 test)",
        Recipe("classifier", batch_size=32, lr=1e-3, weight_decay=1e-4, epochs=30),
        _digits, lambda d: _seeded_zoo("mlp", sizes=[64, 128, 10], activation="relu"), _torch_mlp, "accuracy"),
    "lenet5-fashion": Task(
        "lenet5-fashion", "lenet5 on Fashion-MNIST (60,000 train / 10,000 test)",
        Recipe("classifier", batch_size=64, lr=2e-3, weight_decay=1e-4, epochs=5),
        _fashion, lambda d: _seeded_zoo("lenet5"), _torch_lenet5, "accuracy"),
    "resnet8-fashion": Task(
        "resnet8-fashion", "resnet8-mnist on Fashion-MNIST (10,000 test images)",
        Recipe("classifier", batch_size=64, lr=2e-3, weight_decay=1e-4, epochs=2),
        _fashion, lambda d: _seeded_zoo("resnet8-mnist"), _torch_resnet8, "accuracy"),
    "gpt-shakespeare": Task(
        "gpt-shakespeare", "character GPT (gpt-nano: 2 layers, d 64, RoPE) on tinyshakespeare",
        Recipe("lm", batch_size=16, lr=2e-3, weight_decay=0.01, steps=600, eval_every=50, context=128, clip=1.0),
        _shakespeare, _plait_gpt, _torch_gpt, "loss"),
}
