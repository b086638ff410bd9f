"""``plait models``, ``plait generate`` and ``plait train``: the zoo's subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plait.core import ConfigError, default_device, registry

from .catalog import Preset, list_models

__all__ = ["add_commands"]


def add_commands(cli: Any) -> None:
    p = cli.command("models", "list model architectures and presets (plait-zoo)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'gpt*'")
    p.add_argument("--params", action="store_true", help="build each model to count its parameters")
    p.set_defaults(handler=_cmd_models)

    p = cli.command("generate", "continue a prompt with a saved language model (plait-zoo)")
    p.add_argument("model_dir", metavar="DIR", nargs="?", help="a folder written by plait.zoo.save")
    p.add_argument("--pretrained", metavar="PATH", default=None,
                   help="instead of DIR: a Hugging Face GPT-2 folder or a locally cached name such as gpt2 "
                        "(see plait.zoo.from_pretrained; nothing is downloaded)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="text prompt (needs a tokenizer or character vocabulary in DIR)")
    src.add_argument("--ids", help="comma-separated token ids, e.g. 1,2,3")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-cache", action="store_true", help="recompute the whole sequence at every step")
    _device_option(p)
    p.set_defaults(handler=_cmd_generate)

    p = cli.command("train", "train a zoo model: a character language model on a text file, or a classifier on "
                    "an .npz of arrays (needs plait-train)")
    p.add_argument("model", metavar="MODEL", help="a preset or architecture name, e.g. char-lstm")
    p.add_argument("--data", required=True, help="a UTF-8 text file, or an .npz with x_train/y_train[/x_test/y_test]")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", default=None, help="folder for the trained model (default: runs/MODEL)")
    p.add_argument("--tokenizer", default=None, help="a plait-tokenizers file (e.g. BPE) instead of characters")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    _device_option(p)
    p.set_defaults(handler=_cmd_train)


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu or cuda (default: $PLAIT_DEVICE, else cpu)")


def _cmd_models(args: argparse.Namespace) -> int:
    from .catalog import create  # noqa: PLC0415

    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    rows = []
    for name in names:
        obj = registry.models.get(name)
        kind = f"preset of {obj.architecture}" if isinstance(obj, Preset) else "architecture"
        about = obj.description if isinstance(obj, Preset) else ((obj.__doc__ or "").strip().splitlines() or [""])[0]
        params = f"{create(name).num_parameters():,}" if args.params else ""
        rows.append((name, kind, params, registry.models.origin(name), about))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from .generation import generate  # noqa: PLC0415
    from .serialization import load  # noqa: PLC0415
    from .text import load_text_codec  # noqa: PLC0415

    if (args.model_dir is None) == (args.pretrained is None):
        raise ConfigError("plait generate: give either a model folder DIR or --pretrained PATH")
    if args.pretrained is not None:
        from .pretrained import from_pretrained  # noqa: PLC0415

        model, codec = from_pretrained(args.pretrained, require_tokenizer=args.prompt is not None)
        args.model_dir = args.pretrained
    else:
        model, codec = load(args.model_dir), load_text_codec(Path(args.model_dir))
    model = model.to(args.device or default_device())
    if args.ids is not None:
        try:
            ids = np.array([int(t) for t in args.ids.split(",") if t.strip()], dtype=np.int64)
        except ValueError as exc:
            raise ConfigError(f"--ids must be comma-separated integers, got {args.ids!r}") from exc
    else:
        if codec is None:
            raise ConfigError(
                f"{args.model_dir}: no tokenizer.json and no character vocabulary in config.json; pass --ids instead"
            )
        ids = np.asarray(codec.encode(args.prompt), dtype=np.int64)
    out = generate(model, ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, seed=args.seed, use_cache=not args.no_cache)
    if codec is None:
        print(",".join(str(int(i)) for i in out))
    else:
        print(codec.decode([int(i) for i in out]))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    try:
        import plait.optim  # noqa: F401, PLC0415
        import plait.train  # noqa: F401, PLC0415
    except ImportError as exc:
        print(f"plait train needs the plait-train distribution (pip install plait-train): {exc}", file=sys.stderr)
        return 2
    from .training import train_text_model  # noqa: PLC0415

    train_text_model(args)
    return 0
