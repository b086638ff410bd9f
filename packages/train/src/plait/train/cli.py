"""``plait train MODEL --data FILE``: train any registered model from the command line.

Models, tokenizers, losses, optimizers and schedulers are all found by name in the
registry, so a model a plugin registers trains exactly like a zoo model:

* a text file trains a language model (an architecture taking ``vocab_size``) over its
  characters, or over the tokens of ``--tokenizer FILE``; windows of ``--seq-len``;
* an ``.npz`` with ``x_train``/``y_train`` (and optionally ``x_test``/``y_test``) or
  ``x``/``y`` trains a classifier; input size and class count are read from the arrays.

``--out DIR`` receives the trained model folder. While training, ``DIR/checkpoint`` holds
a resumable checkpoint (after every epoch, and at Ctrl-C: the current step finishes, the
checkpoint is written and the command says how to go on); ``plait train --resume DIR``
continues exactly where it stopped, with the arguments of the first run.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from plait.core import (
    ConfigError,
    SerializationError,
    default_device,
    manual_seed,
    read_json,
    read_text,
    registry,
    save_model,
)

from ._npz import NPZ_MAX_BYTES, read_npz

__all__ = ["add_commands"]

CHECKPOINT = "checkpoint"
_MAX_TEXT_BYTES = 1 << 30
_MAX_TOKENIZER_BYTES = 1 << 30
_MAX_NPZ_BYTES = NPZ_MAX_BYTES  # the file, and its members uncompressed together
_RUN_KEY = "RunRecord-0"
# Everything that decides a run; saved in the checkpoint so --resume rebuilds the same run.
_RUN_ARGS = ("model", "data", "epochs", "tokenizer", "batch_size", "seq_len", "lr", "seed", "model_arg", "dropout",
             "val_split", "max_steps", "optimizer", "weight_decay", "clip_grad_norm", "scheduler", "warmup")


def add_commands(cli: Any) -> None:
    p = cli.command("train", "train a registered model on a text file (language model) or an .npz of arrays "
                    "(classifier) (plait-train)")
    p.add_argument("model", metavar="MODEL", nargs="?", help="a registered model or preset, e.g. char-lstm "
                   "(omit with --resume)")
    p.add_argument("--data", help="a UTF-8 text file, or an .npz with x_train/y_train[/x_test/y_test] or x/y")
    p.add_argument("-o", "--out", default=None, help="folder for the trained model (default: runs/MODEL)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from RUN_DIR/checkpoint, with that run's arguments")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training data (>= 1)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    p.add_argument("--max-time", type=float, default=None, help="stop after this many seconds of training")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a model argument, VALUE as JSON (e.g. d_model=128, sizes=[784,64,10]); repeatable")
    p.add_argument("--dropout", type=float, default=None, help="the model's dropout argument (default: the model's)")
    p.add_argument("--tokenizer", default=None, help="a tokenizer file (e.g. BPE) for text data instead of characters")
    p.add_argument("--val-split", type=float, default=0.1,
                   help="fraction held out for validation (an .npz's x_test/y_test are used instead); 0: none")
    p.add_argument("--batch-size", type=int, default=32, help="samples (or text windows) per step")
    p.add_argument("--seq-len", type=int, default=64, help="text: tokens per training window")
    p.add_argument("--optimizer", default="adamw", help="a registered optimizer")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate")
    p.add_argument("--weight-decay", type=float, default=0.0, help="the optimizer's weight decay")
    p.add_argument("--clip-grad-norm", type=float, default=1.0, help="clip the global gradient norm; 0: off")
    p.add_argument("--scheduler", default="none", choices=("none", "cosine"),
                   help="learning-rate schedule over the optimizer steps")
    p.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, data order, dropout)")
    p.add_argument("--log-every", type=float, default=30.0,
                   help="when not on a terminal: seconds between progress lines (plus one per epoch)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: $PLAIT_DEVICE, else cpu)")
    p.set_defaults(handler=_cmd_train)


# -- arguments ------------------------------------------------------------------------------------
def _model_args(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--model-arg expects KEY=VALUE with KEY a name, got {pair!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw  # a bare word: a string (e.g. activation=gelu)
    return out


def _check_numbers(args: argparse.Namespace) -> None:
    checks = [("--epochs", args.epochs, args.epochs >= 1), ("--batch-size", args.batch_size, args.batch_size >= 1),
              ("--seq-len", args.seq_len, args.seq_len >= 1), ("--lr", args.lr, args.lr > 0 and math.isfinite(args.lr)),
              ("--val-split", args.val_split, 0.0 <= args.val_split < 1.0),
              ("--weight-decay", args.weight_decay, args.weight_decay >= 0), ("--warmup", args.warmup, args.warmup >= 0),
              ("--clip-grad-norm", args.clip_grad_norm, args.clip_grad_norm >= 0),
              ("--log-every", args.log_every, args.log_every > 0),
              ("--max-steps", args.max_steps, args.max_steps is None or args.max_steps >= 1),
              ("--max-time", args.max_time, args.max_time is None or args.max_time > 0),
              ("--dropout", args.dropout, args.dropout is None or 0.0 <= args.dropout < 1.0)]
    for flag, value, ok in checks:
        if not ok:
            raise ConfigError(f"{flag} {value} is out of range (see plait train --help)")


def _architecture(name: str) -> tuple[str, Any, dict[str, Any]]:
    """Follow presets (registry entries with ``architecture`` and ``args``) to the architecture."""
    factory, args, seen = registry.models.get(name), {}, [name]
    while hasattr(factory, "architecture") and isinstance(getattr(factory, "args", None), dict):
        args = {**factory.args, **args}
        name = factory.architecture
        if name in seen:
            raise ConfigError(f"preset cycle: {' -> '.join([*seen, name])}")
        seen.append(name)
        factory = registry.models.get(name)
    return name, factory, args


def _accepts(factory: Any) -> dict[str, Any]:
    """The architecture's arguments and their defaults (``inspect.Parameter.empty`` for none)."""
    import inspect  # noqa: PLC0415

    target = factory.__init__ if isinstance(factory, type) else factory
    return {n: p.default for n, p in inspect.signature(target).parameters.items() if n != "self"}


# -- data -------------------------------------------------------------------------------------------
def _load_tokenizer(path: str) -> Any:
    file = Path(path)
    fmt = read_json(file, component="--tokenizer", max_bytes=_MAX_TOKENIZER_BYTES).get("format")
    if not isinstance(fmt, str) or not fmt.startswith("plait.") or fmt[6:] not in registry.tokenizers:
        raise SerializationError(f"--tokenizer {file}: format {fmt!r} names no registered tokenizer "
                                 f"(known: {', '.join(registry.tokenizers.names())})")
    return registry.tokenizers.get(fmt[6:]).load(file)


def _text_data(args: argparse.Namespace, path: Path, accepts: set[str]) -> dict[str, Any]:
    from .data import TextWindowDataset  # noqa: PLC0415

    if "vocab_size" not in accepts:
        raise ConfigError(f"a text file trains a language model (an architecture with a vocab_size argument); "
                          f"{args.model!r} has none")
    text = read_text(path, component="--data", max_bytes=_MAX_TEXT_BYTES)
    tok = _load_tokenizer(args.tokenizer) if args.tokenizer else registry.tokenizers.get("char")().fit(text)
    ids = np.asarray(tok.encode(text), dtype=np.int64)
    split = len(ids) - int(args.val_split * len(ids))
    if split < args.seq_len + 1 or (args.val_split and len(ids) - split < args.seq_len + 1):
        raise ConfigError(f"--data {path} is too short for --seq-len {args.seq_len}")
    val = TextWindowDataset(ids[split:], args.seq_len, stride=args.seq_len) if args.val_split else None
    vocab = tok.get_vocab()
    meta = {} if args.tokenizer else {"chars": "".join(sorted(vocab, key=vocab.get))}
    return {"train": TextWindowDataset(ids[:split], args.seq_len, stride=args.seq_len), "val": val,
            "inferred": {"vocab_size": tok.vocab_size}, "loss": "sequence_cross_entropy", "metrics": [],
            "tokenizer": tok if args.tokenizer else None, "metadata": meta}


def _array_data(args: argparse.Namespace, path: Path, accepts: set[str]) -> dict[str, Any]:
    arrays = read_npz(path, component="--data", max_bytes=_MAX_NPZ_BYTES)
    if "x_train" in arrays and "y_train" in arrays:
        x, y = arrays["x_train"], arrays["y_train"]
        val = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays and "y_test" in arrays else None
    elif "x" in arrays and "y" in arrays:
        x, y, val = arrays["x"], arrays["y"], None
    else:
        raise SerializationError(f"--data {path}: expected arrays x_train/y_train (and x_test/y_test) or x/y, "
                                 f"found {', '.join(sorted(arrays)) or 'none'}")
    if x.dtype.kind not in "fiub" or y.dtype.kind not in "iu" or len(x) != len(y) or len(x) == 0 or y.ndim != 1:
        raise SerializationError(f"--data {path}: expected numeric x and integer class labels y of equal length, "
                                 f"got x {x.dtype}{x.shape} and y {y.dtype}{y.shape}")
    if val is None and args.val_split:
        cut = len(x) - max(1, int(args.val_split * len(x)))
        order = np.random.default_rng(args.seed).permutation(len(x))
        x, y, val = x[order[:cut]], y[order[:cut]], (x[order[cut:]], y[order[cut:]])
    x = x.astype(np.float32, copy=False)
    if val is not None:
        val = (val[0].astype(np.float32), val[1])
    classes = int(max(y.max(), val[1].max() if val is not None else 0)) + 1
    inferred: dict[str, Any] = {"num_classes": classes}
    if x.ndim == 2:
        inferred.update(input_size=x.shape[1], in_features=x.shape[1])
    if x.ndim == 4:
        inferred.update(in_channels=x.shape[1], image_size=x.shape[2])
    if x.ndim == 3 and "input_size" in accepts:
        inferred["input_size"] = x.shape[2]
    return {"train": (x, y), "val": val, "inferred": inferred, "loss": "cross_entropy", "metrics": ["accuracy"],
            "tokenizer": None, "metadata": {}, "sizes": (x.shape[1] if x.ndim == 2 else None, classes)}


# -- the run ----------------------------------------------------------------------------------------
def _build_model(args: argparse.Namespace, data: dict[str, Any], accepts: dict[str, Any],
                 preset: dict[str, Any]) -> Any:
    explicit = _model_args(args.model_arg)
    if args.dropout is not None:
        if "dropout" not in accepts:
            raise ConfigError(f"--dropout: model {args.model!r} has no dropout argument")
        explicit["dropout"] = args.dropout
    unknown = sorted(set(explicit) - set(accepts))
    if unknown:
        raise ConfigError(f"--model-arg: model {args.model!r} has no argument(s) {', '.join(unknown)}; "
                          f"it accepts: {', '.join(accepts)}")
    inferred = {k: v for k, v in data["inferred"].items() if k in accepts}
    sizes = data.get("sizes")
    if "sizes" in accepts and sizes is not None and sizes[0] is not None:  # an MLP: first and last width
        default = accepts["sizes"] if isinstance(accepts["sizes"], (list, tuple)) else []
        widths = list(explicit.get("sizes", preset.get("sizes", default)))
        if len(widths) >= 2:
            inferred["sizes"] = [sizes[0], *widths[1:-1], sizes[1]]
    args.resolved_model_args = {**preset, **inferred, **explicit}
    return registry.models.get(args.model)(**{**inferred, **explicit})


def _optimizer(args: argparse.Namespace, model: Any) -> Any:
    factory = registry.optimizers.get(args.optimizer)
    options: dict[str, Any] = {"lr": args.lr}
    if args.weight_decay:
        options["weight_decay"] = args.weight_decay
    elif "weight_decay" in _accepts(factory):
        options["weight_decay"] = 0.0  # AdamW's default is 0.01; the flag's default is 0
    try:
        return factory(model.parameters(), **options)
    except TypeError as exc:
        raise ConfigError(f"--optimizer {args.optimizer}: {exc}") from None


def _scheduler(args: argparse.Namespace, optimizer: Any, total_steps: int) -> Any:
    after = None
    if args.scheduler == "cosine":
        after = registry.schedulers.get("cosine_annealing_lr")(optimizer, T_max=max(1, total_steps - args.warmup))
    if args.warmup:
        return registry.schedulers.get("linear_warmup")(optimizer, warmup_steps=args.warmup, after=after)
    return after


def _callbacks(args: argparse.Namespace, out: Path, record: dict[str, Any]) -> tuple[list[Any], Any]:
    from .callbacks.base import Callback  # noqa: PLC0415

    class RunRecord(Callback):
        """Keeps the run's arguments in every checkpoint; saves one per epoch; stops on a limit or Ctrl-C."""

        def __init__(self) -> None:
            super().__init__()
            self.interrupted = False
            self.started = time.monotonic()
            self.last_line = self.started
            self.live = sys.stderr.isatty()

        def state_dict(self) -> dict[str, Any]:
            return {"args": record}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            pass

        def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            trainer, now = self.trainer, time.monotonic()
            if not self.live and now - self.last_line >= args.log_every:
                self.last_line = now
                print(f"epoch {trainer.epoch + 1}/{trainer.epochs} step {trainer.global_step} "
                      f"loss {float((logs or {}).get('loss', math.nan)):.4g} ({now - self.started:.0f}s)",
                      file=sys.stderr, flush=True)
            if self.interrupted:
                trainer.save_checkpoint(out / CHECKPOINT)
                trainer.stop_training, trainer.stop_reason = True, "interrupted"
            elif args.max_steps is not None and trainer.global_step >= args.max_steps:
                trainer.stop_training, trainer.stop_reason = True, f"--max-steps {args.max_steps}"
            elif args.max_time is not None and now - self.started >= args.max_time:
                trainer.stop_training, trainer.stop_reason = True, f"--max-time {args.max_time:g}"

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.trainer.save_checkpoint(out / CHECKPOINT)

    run = RunRecord()
    return [run], run


def _resume_args(args: argparse.Namespace) -> argparse.Namespace:
    from .checkpoint import load_checkpoint  # noqa: PLC0415

    folder = Path(args.resume)
    saved = load_checkpoint(folder / CHECKPOINT).trainer_state.get("callbacks", {}).get(_RUN_KEY, {}).get("args")
    if not isinstance(saved, dict) or set(saved) != set(_RUN_ARGS):
        raise ConfigError(f"--resume {folder}: {folder / CHECKPOINT} was not written by plait train")
    merged = argparse.Namespace(**{**vars(args), **saved})
    merged.out = args.out or str(folder)
    merged.resume_from = folder / CHECKPOINT
    return merged


def _save_model(model: Any, out: Path, arch: str, model_args: dict[str, Any], metadata: dict[str, Any],
                tokenizer: Any) -> None:
    found = registry.name_of(type(model))
    if found is not None and found[0] == "models":  # a registered class: its config() says how to rebuild it
        save_model(model, out, metadata=metadata, tokenizer=tokenizer)
    else:  # built by a registered function: name it and its arguments
        save_model(model, out, metadata=metadata, tokenizer=tokenizer, architecture=arch, model_args=model_args)


def _cmd_train(args: argparse.Namespace) -> int:
    import shutil  # noqa: PLC0415

    from .trainer import Trainer  # noqa: PLC0415

    if args.resume:
        args = _resume_args(args)
    elif args.model is None or args.data is None:
        raise ConfigError("MODEL and --data are required (or --resume RUN_DIR)")
    _check_numbers(args)
    out = Path(args.out) if args.out else Path("runs") / args.model
    resuming_here = bool(args.resume) and out.resolve() == Path(args.resume).resolve()
    if out.exists() and not resuming_here:
        if not args.overwrite:
            raise ConfigError(f"{out} exists; pass --overwrite to replace it, or --resume {out} to continue it")
        is_run = out.is_dir() and ((out / "config.json").is_file() or (out / CHECKPOINT).is_dir()
                                   or not any(out.iterdir()))
        if not is_run:
            raise ConfigError(f"{out} is not a model folder or plait train run; --overwrite replaces only those")
    path = Path(args.data)
    if not path.exists():  # anything else is read_text/read_npz's to refuse
        raise SerializationError(f"--data {path}: no such file")
    manual_seed(args.seed)
    arch, factory, preset = _architecture(args.model)
    accepts = _accepts(factory)
    data = (_array_data if path.suffix == ".npz" else _text_data)(args, path, set(accepts) | set(preset))
    model = _build_model(args, data, accepts, preset).to(args.device or default_device())
    optimizer = _optimizer(args, model)
    steps_per_epoch = math.ceil(len(data["train"][0] if isinstance(data["train"], tuple) else data["train"])
                                / args.batch_size)
    total = steps_per_epoch * args.epochs if args.max_steps is None else min(args.max_steps, steps_per_epoch * args.epochs)
    record = {k: getattr(args, k) for k in _RUN_ARGS}
    record["data"] = str(path.resolve())  # --resume may run from another folder
    if args.tokenizer:
        record["tokenizer"] = str(Path(args.tokenizer).resolve())
    callbacks, run = _callbacks(args, out, record)
    trainer = Trainer(model, registry.losses.get(data["loss"])(), optimizer, metrics=data["metrics"],
                      scheduler=_scheduler(args, optimizer, total), scheduler_interval="step",
                      clip_grad_norm=args.clip_grad_norm or None, callbacks=callbacks, seed=args.seed)

    def on_sigint(signum: int, frame: Any) -> None:
        run.interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    in_main = threading.current_thread() is threading.main_thread()  # signal handlers live in the main thread
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        history = trainer.fit(data["train"], val=data["val"], epochs=args.epochs, batch_size=args.batch_size,
                              resume_from=getattr(args, "resume_from", None))
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if run.interrupted:
        print(f"interrupted at step {trainer.global_step}; resumable checkpoint saved to {out / CHECKPOINT}\n"
              f"continue with: plait train --resume {out}", file=sys.stderr)
        return 130
    last = {k: float(v[-1]) for k, v in history.history.items() if v and math.isfinite(v[-1])}
    meta = {**data["metadata"], "trained_on": path.name, "epochs": args.epochs, "steps": trainer.global_step,
            "final": last, "final_lr": trainer.current_lrs(), "train_args": record}
    if trainer.stop_reason:
        meta["stopped"] = trainer.stop_reason
    _save_model(model, out, arch, args.resolved_model_args, meta, data["tokenizer"])
    shutil.rmtree(out / CHECKPOINT, ignore_errors=True)  # the finished model folder supersedes it
    print(f"saved {args.model} ({arch}) to {out}" + (f" (stopped by {trainer.stop_reason})" if trainer.stop_reason
                                                      else ""))
    return 0

