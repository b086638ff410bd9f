"""The benchmark rows of issue 8: data, the two models, one timed call per side.

Every row builds the Plait model first (seeded), then the torch twin with Plait's initial
weights copied in, so both start from the same network; the first losses (or the greedy
tokens, for generation) are compared as a sanity check that both compute the same thing.
Data are synthetic (seeded NumPy), float32 inputs, int64 ids/labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ROWS", "Row", "row_by_key"]

Setup = Callable[[dict[str, Any], Any], tuple[Any, Callable[[], Any], Callable[[], Any]]]


@dataclass(frozen=True)
class Row:
    """One line of the table. ``units``: what one timed call performs (steps, epochs, tokens)."""

    number: int
    key: str
    title: str
    target: tuple[float, float] | None  # ratio to meet at 1 thread, at 2 or more threads (issue 19)
    unit: str  # display unit of the time per unit: "s", "ms"
    units: int
    per: str  # "epoch", "step", "token"
    data: Callable[[], dict[str, Any]]
    plait: Setup  # (data, None) -> (model, timed call, check)
    torch: Setup  # (data, plait model or None) -> (model, timed call, check)
    note: str = ""

    def target_at(self, threads: int) -> float | None:
        """The target ratio at ``threads`` threads (None: no target)."""
        return None if self.target is None else self.target[0 if threads <= 1 else 1]


def _seed_plait(seed: int = 0) -> None:
    from plait.core import manual_seed

    manual_seed(seed)


def _twin(plait_model: Any, torch_model: Any) -> Any:

    from _torch_models import copy_weights

    if plait_model is not None:
        copy_weights(plait_model, torch_model)
    return torch_model.float().train()


def _plait_zoo(name: str, **args: Any) -> Any:
    import plait.zoo as zoo

    _seed_plait()
    return zoo.create(name, **args).train()


# -- 1. MLP 784-128-10, one epoch --------------------------------------------------------------
MNIST_N, MNIST_BATCH = 60_000, 64


def _mnist_like(n: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        rng = np.random.default_rng(0)
        return {"x": rng.random((n, 784), dtype=np.float32), "y": rng.integers(0, 10, n).astype(np.int64)}

    return make


def _mlp_epoch_plait(d: dict[str, Any], _: Any) -> tuple[Any, Any, Any]:
    import _plait_side as ps

    model = _plait_zoo("mlp", sizes=[784, 128, 10], activation="relu")
    return (model, *ps.classifier_epoch(model, d["x"], d["y"], MNIST_BATCH, lr=0.01))


def _mlp_epoch_torch(d: dict[str, Any], pm: Any) -> tuple[Any, Any, Any]:
    import _torch_side as ts
    from _torch_models import torch_mlp

    model = _twin(pm, torch_mlp([784, 128, 10]))
    return (model, *ts.classifier_epoch(model, d["x"], d["y"], MNIST_BATCH, lr=0.01))


# -- 2. MLP 784-512-512-10, batch 256 ------------------------------------------------------------
MLP_STEPS = 10


def _mlp_step_plait(d: dict[str, Any], _: Any) -> tuple[Any, Any, Any]:
    import _plait_side as ps

    model = _plait_zoo("mlp", sizes=[784, 512, 512, 10], activation="relu")
    return (model, *ps.classifier_steps(model, d["x"], d["y"], lr=0.01, steps=MLP_STEPS))


def _mlp_step_torch(d: dict[str, Any], pm: Any) -> tuple[Any, Any, Any]:
    import _torch_side as ts
    from _torch_models import torch_mlp

    model = _twin(pm, torch_mlp([784, 512, 512, 10]))
    return (model, *ts.classifier_steps(model, d["x"], d["y"], lr=0.01, steps=MLP_STEPS))


# -- 3. CNN, batch 64 -----------------------------------------------------------------------------
CNN_STEPS = 4


def _images() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {"x": rng.random((64, 1, 28, 28), dtype=np.float32), "y": rng.integers(0, 10, 64).astype(np.int64)}


def _cnn_plait(d: dict[str, Any], _: Any) -> tuple[Any, Any, Any]:
    import _plait_side as ps

    model = _plait_zoo("cnn", in_channels=1, num_classes=10, image_size=28, channels=[32, 64], kernel_size=3,
                       padding=1, hidden=[], activation="relu", pool="max_pool2d")
    return (model, *ps.classifier_steps(model, d["x"], d["y"], lr=0.01, steps=CNN_STEPS))


def _cnn_torch(d: dict[str, Any], pm: Any) -> tuple[Any, Any, Any]:
    import _torch_side as ts
    from _torch_models import torch_cnn

    model = _twin(pm, torch_cnn())
    return (model, *ts.classifier_steps(model, d["x"], d["y"], lr=0.01, steps=CNN_STEPS))


# -- 4. GPT training step with AdamW ----------------------------------------------------------------
GPT_ARGS = {"vocab_size": 512, "context_length": 128, "d_model": 256, "num_layers": 2, "num_heads": 4}
GPT_STEPS = 2
ADAMW = {"lr": 3e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}


def _token_batch(vocab: int, batch: int, length: int) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        return {"ids": np.random.default_rng(0).integers(0, vocab, (batch, length)).astype(np.int64)}

    return make


def _gpt_plait(d: dict[str, Any], _: Any) -> tuple[Any, Any, Any]:
    import _plait_side as ps

    model = _plait_zoo("gpt", **GPT_ARGS)
    return (model, *ps.lm_training(model, d["ids"], "AdamW", GPT_STEPS, **ADAMW))


def _torch_gpt_like(config: dict[str, Any]) -> Any:
    from _torch_models import TorchGPT

    expected = {"activation": "gelu", "norm": "layer_norm", "dropout": 0.0}
    odd = {k: config.get(k) for k, v in expected.items() if config.get(k, v) != v}
    if odd:
        raise ValueError(f"the torch GPT twin does not implement these gpt options: {odd}")
    return TorchGPT(config["vocab_size"], config["context_length"], config["d_model"], config["num_layers"],
                    config["num_heads"], config.get("ffn_dim"), config.get("num_kv_heads"),
                    config.get("tie_embeddings", True), config.get("positional", "rope"), config.get("bias", True))


def _gpt_torch(d: dict[str, Any], pm: Any) -> tuple[Any, Any, Any]:
    import _torch_side as ts

    model = _twin(pm, _torch_gpt_like({**GPT_ARGS, "ffn_dim": None}))
    return (model, *ts.lm_training(model, d["ids"], "AdamW", GPT_STEPS, **ADAMW))


# -- 5. LSTM language model -----------------------------------------------------------------------
LSTM_ARGS = {"vocab_size": 65, "embed_dim": 64, "hidden_size": 256, "num_layers": 2}
LSTM_STEPS = 2


def _lstm_plait(d: dict[str, Any], _: Any) -> tuple[Any, Any, Any]:
    import _plait_side as ps

    model = _plait_zoo("rnn_lm", cell="lstm", **LSTM_ARGS)
    return (model, *ps.lm_training(model, d["ids"], "SGD", LSTM_STEPS, lr=0.1))


def _lstm_torch(d: dict[str, Any], pm: Any) -> tuple[Any, Any, Any]:
    import _torch_side as ts
    from _torch_models import TorchLSTMLM

    model = _twin(pm, TorchLSTMLM(**LSTM_ARGS))
    return (model, *ts.lm_training(model, d["ids"], "SGD", LSTM_STEPS, lr=0.1))


# -- 6. KV-cached generation with gpt-mini ------------------------------------------------------------
GEN_TOKENS, GEN_PROMPT = 256, 16


def _gen_prompt() -> dict[str, Any]:
    return {"prompt": np.random.default_rng(0).integers(0, 64, (1, GEN_PROMPT)).astype(np.int64)}


def _gen_plait(d: dict[str, Any], _: Any) -> tuple[Any, Any, Any]:
    import _plait_side as ps

    import plait.zoo as zoo

    # RoPE has no weights: a longer rotary table lets prompt + 256 new tokens fit without cropping
    context = max(int(zoo.model_config("gpt-mini")["model_args"]["context_length"]), GEN_PROMPT + GEN_TOKENS)
    model = _plait_zoo("gpt-mini", dropout=0.0, context_length=context)
    return (model, *ps.gpt_generation(model, d["prompt"], GEN_TOKENS))


def _gen_torch(d: dict[str, Any], pm: Any) -> tuple[Any, Any, Any]:
    import _torch_side as ts

    if pm is None:
        raise ValueError("the torch twin of gpt-mini is built from the Plait model's config")
    model = _twin(pm, _torch_gpt_like(pm.config())).eval()
    return (model, *ts.gpt_generation(model, d["prompt"], GEN_TOKENS))


# -- 8. A small GPT step: where the work around the GEMMs shows most ----------------------------------
SMALL_GPT_ARGS = {"vocab_size": 65, "context_length": 48, "d_model": 96, "num_layers": 3, "num_heads": 3,
                  "positional": "learned", "bias": False}
SMALL_GPT_STEPS, SMALL_GPT_CLIP = 4, 1.0


def _small_gpt_plait(d: dict[str, Any], _: Any) -> tuple[Any, Any, Any]:
    import _plait_side as ps

    model = _plait_zoo("gpt", **SMALL_GPT_ARGS)
    return (model, *ps.lm_training(model, d["ids"], "AdamW", SMALL_GPT_STEPS, clip=SMALL_GPT_CLIP, **ADAMW))


def _small_gpt_torch(d: dict[str, Any], pm: Any) -> tuple[Any, Any, Any]:
    import _torch_side as ts

    model = _twin(pm, _torch_gpt_like({**SMALL_GPT_ARGS, "ffn_dim": None}))
    return (model, *ts.lm_training(model, d["ids"], "AdamW", SMALL_GPT_STEPS, clip=SMALL_GPT_CLIP, **ADAMW))


EVERY_ROW = (1.1, 1.3)  # issue 19: every row <= 1.1 at 1 thread, <= 1.3 at 2 threads

ROWS: list[Row] = [
    Row(1, "mlp_epoch", "MLP 784-128-10 SGD b64, 1 epoch of 60k", (0.8, 0.8), "s", 1, "epoch",
        _mnist_like(MNIST_N), _mlp_epoch_plait, _mlp_epoch_torch,
        "synthetic MNIST-shaped data (60,000 x 784 float32 in [0, 1), 10 classes), batches in order, "
        "938 SGD steps (lr 0.01) incl. the short last batch"),
    Row(2, "mlp_step", "MLP 784-512-512-10 SGD b256, 1 step", EVERY_ROW, "ms", MLP_STEPS, "step",
        _mnist_like(256), _mlp_step_plait, _mlp_step_torch),
    Row(3, "cnn_step", "CNN 2xconv3x3(32,64)+pool, 28x28 b64, 1 step", EVERY_ROW, "ms", CNN_STEPS, "step",
        _images, _cnn_plait, _cnn_torch, "SGD lr 0.01"),
    Row(4, "gpt_step", "GPT 2L d256 4h T128 b8 V512 AdamW, 1 step", EVERY_ROW, "ms", GPT_STEPS, "step",
        _token_batch(512, 8, 129), _gpt_plait, _gpt_torch,
        "zoo gpt (RoPE, GELU, LayerNorm, tied head); torch twin uses F.scaled_dot_product_attention"),
    Row(5, "lstm_step", "LSTM LM 2L h256 T64 b32 V65, 1 step", EVERY_ROW, "ms", LSTM_STEPS, "step",
        _token_batch(65, 32, 65), _lstm_plait, _lstm_torch, "embed 64, SGD lr 0.1"),
    Row(6, "gpt_generate", "gpt-mini KV-cached greedy generation, 256 tokens", None, "ms", GEN_TOKENS, "token",
        _gen_prompt, _gen_plait, _gen_torch,
        "batch 1, 16-token prompt (a preset context_length below 272 would be raised: RoPE table only); "
        "time per generated token (prefill included); torch twin with a preallocated KV cache"),
    Row(8, "small_gpt_step", "GPT 3L d96 3h T48 b16 V65 AdamW+clip, 1 step", EVERY_ROW, "ms", SMALL_GPT_STEPS, "step",
        _token_batch(65, 16, 49), _small_gpt_plait, _small_gpt_torch,
        "zoo gpt with learned positions, bias=False, exact GELU, LayerNorm, tied head; "
        "clip_grad_norm_(1.0) before every AdamW step"),
]


def row_by_key(key: str) -> Row:
    for row in ROWS:
        if key in (row.key, str(row.number)):
            return row
    raise KeyError(f"no benchmark row {key!r}; rows: {', '.join(r.key for r in ROWS)}")
