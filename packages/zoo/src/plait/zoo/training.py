"""What ``plait train MODEL --data ...`` runs (imports plait-train and plait-optim; only the CLI loads it).

* a text file: a language model (``rnn_lm`` or ``gpt``) over characters (``vocab_size`` set to
  the text's alphabet) or over the tokens of ``--tokenizer FILE`` (a plait-tokenizers file,
  saved beside the model), windows of ``--seq-len``, the last 10% held out;
* a ``.npz`` with ``x_train``/``y_train`` (and optionally ``x_test``/``y_test``) or ``x``/``y``:
  a classifier (``mlp``, ``cnn``, ``resnet``, ``rnn_classifier``) with accuracy.

The trained model is saved with :func:`plait.zoo.save` (a text model keeps its alphabet in
``config.json``'s metadata, which ``plait generate`` uses).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from plait.core import ConfigError, Module, SerializationError, default_device, manual_seed
from plait.layers import CrossEntropyLoss

from .catalog import create, model_config
from .serialization import save
from .text import CharCodec

__all__ = ["SequenceCrossEntropy", "train_text_model"]

_LANGUAGE_MODELS = ("rnn_lm", "gpt")


class SequenceCrossEntropy:
    """Cross entropy of next-token logits (B, T, V) against ids (B, T), averaged over B*T."""

    def __init__(self) -> None:
        self._ce = CrossEntropyLoss()
        self._shape: tuple[int, ...] = ()

    def forward(self, logits: Any, target: Any) -> float:
        self._shape = tuple(logits.shape)
        return self._ce(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    __call__ = forward

    def backward(self) -> Any:
        return self._ce.backward().reshape(self._shape)


def _optimizer(model: Module, lr: float) -> Any:
    from plait.optim import AdamW  # noqa: PLC0415 - only the CLI needs plait-optim

    return AdamW(model.parameters(), lr=lr, weight_decay=0.0)


def _text_run(args: argparse.Namespace, path: Path) -> tuple[Module, Any, Any, Any, dict[str, Any]]:
    from plait.train import TextWindowDataset  # noqa: PLC0415

    architecture = model_config(args.model)["architecture"]
    if architecture not in _LANGUAGE_MODELS:
        raise ConfigError(f"plait train: a text file trains a language model ({', '.join(_LANGUAGE_MODELS)}); "
                          f"{args.model!r} is a {architecture!r}")
    text = path.read_text(encoding="utf-8")
    if args.tokenizer:
        from plait.tokenizers import load_tokenizer  # noqa: PLC0415 - only when a tokenizer is asked for

        codec = load_tokenizer(args.tokenizer)
        ids = np.asarray(codec.encode(text), dtype=np.int64)
    else:
        codec = CharCodec.from_text(text)
        ids = codec.encode_array(text)
    split = int(0.9 * len(ids))
    if split < args.seq_len + 1 or len(ids) - split < args.seq_len + 1:
        raise ConfigError(f"plait train: {path} is too short for --seq-len {args.seq_len}")
    model = create(args.model, vocab_size=codec.vocab_size)
    train = TextWindowDataset(ids[:split], args.seq_len, stride=args.seq_len)
    val = TextWindowDataset(ids[split:], args.seq_len, stride=args.seq_len)
    extra = {"tokenizer": codec} if args.tokenizer else {"chars": codec.chars}
    return model, SequenceCrossEntropy(), train, val, extra


def _array_run(args: argparse.Namespace, path: Path) -> tuple[Module, Any, Any, Any, dict[str, Any]]:
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz)
    if "x_train" in arrays:
        x, y = arrays["x_train"], arrays["y_train"]
        val = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    elif "x" in arrays and "y" in arrays:
        x, y, val = arrays["x"], arrays["y"], None
    else:
        raise SerializationError(f"{path}: expected arrays x_train/y_train (and x_test/y_test) or x/y, "
                                 f"found {', '.join(sorted(arrays)) or 'none'}")
    if x.dtype.kind == "f":
        x = x.astype(np.float32)
    return create(args.model), CrossEntropyLoss(), (x, y), val, {}


def train_text_model(args: argparse.Namespace) -> Path:
    """Train ``args.model`` on ``args.data`` for ``args.epochs`` epochs and save it; returns the folder."""
    from plait.train import Trainer  # noqa: PLC0415

    path = Path(args.data)
    if not path.is_file():
        raise SerializationError(f"plait train: no data file at {path}")
    manual_seed(args.seed)
    run = _array_run if path.suffix == ".npz" else _text_run
    model, loss, train, val, metadata = run(args, path)
    model.to(getattr(args, "device", None) or default_device())  # the Trainer moves each batch there
    metrics = [] if isinstance(loss, SequenceCrossEntropy) else ["accuracy"]
    trainer = Trainer(model, loss, _optimizer(model, args.lr), metrics=metrics, clip_grad_norm=1.0, seed=args.seed)
    history = trainer.fit(train, val=val, epochs=args.epochs, batch_size=args.batch_size)
    last = {k: float(v[-1]) for k, v in history.history.items() if v and math.isfinite(v[-1])}
    out = Path(args.out) if args.out else Path("runs") / args.model
    tokenizer = metadata.pop("tokenizer", None)
    save(model, out, metadata={**metadata, "trained_on": path.name, "epochs": args.epochs, "final": last},
         tokenizer=tokenizer)
    print(f"saved {args.model} to {out}")
    return out
