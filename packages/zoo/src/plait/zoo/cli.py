"""``plait models`` and ``plait generate``: the zoo's subcommands (``plait train`` is plait-train's)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plait.core import ConfigError, default_device, registry
from plait.core.cli import format_ids, parse_ids, print_table

from .catalog import Preset, list_models

__all__ = ["add_commands"]


def add_commands(cli: Any) -> None:
    p = cli.command("models", "list model architectures and presets (plait-zoo)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'gpt*'")
    p.add_argument("--params", action="store_true", help="build each model to count its parameters")
    p.set_defaults(handler=_cmd_models)

    p = cli.command("generate", "continue a prompt with a saved language model (plait-zoo)")
    p.add_argument("model_dir", metavar="DIR", nargs="?", help="a folder written by plait.zoo.save or plait train")
    p.add_argument("--pretrained", metavar="PATH", default=None,
                   help="instead of DIR: a Hugging Face GPT-2 folder or a locally cached name such as gpt2 "
                        "(see plait.zoo.from_pretrained; nothing is downloaded)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="text prompt (needs a tokenizer or character vocabulary in DIR)")
    src.add_argument("--ids", help="token ids, space- or comma-separated, e.g. '1 2 3'")
    p.add_argument("--max-new-tokens", type=int, default=200, help="how many tokens to add")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature; 0 is greedy")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens (default: all)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (default: off)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: fresh entropy)")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole sequence at every step")
    _device_option(p)
    p.set_defaults(handler=_cmd_generate)


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu or cuda (default: $PLAIT_DEVICE, else cpu)")


def _cmd_models(args: argparse.Namespace) -> int:
    from .catalog import create  # noqa: PLC0415

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no model matches {args.pattern!r}; see 'plait models'")
    rows = []
    for name in names:
        obj = registry.models.get(name)
        kind = f"preset of {obj.architecture}" if isinstance(obj, Preset) else "architecture"
        about = obj.description if isinstance(obj, Preset) else ((obj.__doc__ or "").strip().splitlines() or [""])[0]
        params = f"{create(name).num_parameters():,}" if args.params else ""
        rows.append([name, kind, params, registry.models.origin(name), about] if args.params
                    else [name, kind, registry.models.origin(name), about])
    print_table(rows)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from .generation import generate  # noqa: PLC0415
    from .serialization import load, read_config  # noqa: PLC0415
    from .text import load_text_codec  # noqa: PLC0415

    if (args.model_dir is None) == (args.pretrained is None):
        raise ConfigError("plait generate: give either a model folder DIR or --pretrained PATH")
    if args.pretrained is not None:
        from .pretrained import from_pretrained  # noqa: PLC0415

        model, codec = from_pretrained(args.pretrained, require_tokenizer=args.prompt is not None)
        folder = Path(args.pretrained)
    else:
        folder = Path(args.model_dir)
        model = load(folder)
        vocab_size = (read_config(folder).get("model_args") or {}).get("vocab_size")
        codec = load_text_codec(folder, vocab_size if isinstance(vocab_size, int) else None)
    model = model.to(args.device or default_device())
    if args.ids is not None:
        ids = np.array(parse_ids(args.ids, "--ids"), dtype=np.int64)
    else:
        if codec is None:
            raise ConfigError(f"{folder}: no tokenizer.json and no character vocabulary in config.json; "
                              "pass --ids instead")
        ids = np.asarray(codec.encode(args.prompt), dtype=np.int64)
    out = generate(model, ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, seed=args.seed, use_cache=not args.no_cache)
    text = format_ids(out) if codec is None else codec.decode([int(i) for i in out])
    sys.stdout.write(text + "\n")
    return 0
