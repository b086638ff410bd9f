"""``plait tokenizer train|encode|decode``, added to the ``plait`` script through ``register_commands``.

plait tokenizer train corpus.txt --vocab-size 1024 -o tok.json --special "<|endoftext|>"   # -o/--out
plait tokenizer encode tok.json --text "Hello world"        # -> 15496 995
plait tokenizer decode tok.json 15496 995                   # -> Hello world
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from plait.core.errors import ConfigError, SerializationError
from plait.core.reading import decode_utf8, parse_json

from ._corpus import read_text_file
from .bpe import ByteLevelBPETokenizer
from .char import CharTokenizer
from .errors import TokenizerError
from .loading import TOKENIZERS, load_tokenizer
from .word_vectorizer import WordVectorizer

__all__ = ["add_commands"]


def add_commands(cli: Any) -> None:
    add = cli.group("tokenizer", "train a tokenizer, or encode/decode with a saved one")

    p = add("train", "train a tokenizer on text files and save it as one JSON file")
    p.add_argument("files", nargs="+", type=Path, help="UTF-8 text files")
    p.add_argument("-o", "--out", "--output", dest="out", required=True, type=Path, help="the JSON file to write")
    p.add_argument("--type", default="byte_level_bpe", choices=sorted(TOKENIZERS), help="tokenizer kind")
    p.add_argument("--vocab-size", type=int, default=None, help="vocabulary size (BPE: required; word: max_tokens)")
    p.add_argument("--special", action="append", default=[], metavar="TOKEN", help="a special token (repeatable)")
    p.add_argument("--pattern", default="gpt2", help="BPE pre-tokenisation: gpt2, gpt4 or a regex")
    p.add_argument("--min-frequency", type=int, default=2, help="BPE: least count of a pair to merge")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar")
    p.set_defaults(handler=_train)

    p = add("encode", "print the token ids of a text")
    p.add_argument("tokenizer", type=Path, help="a tokenizer JSON file")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--text", help="the text (default: read --input or standard input)")
    source.add_argument("--input", type=Path, help="a UTF-8 file to encode")
    p.add_argument("--allowed-special", default="none", help="BPE: 'all', 'none' or comma-separated tokens")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of space-separated ids")
    p.set_defaults(handler=_encode)

    p = add("decode", "print the text of token ids")
    p.add_argument("tokenizer", type=Path, help="a tokenizer JSON file")
    p.add_argument("ids", nargs="*", help="token ids, space- or comma-separated (default: read --input or standard input)")
    p.add_argument("--input", type=Path, help="a file of ids (JSON list, or separated by spaces/commas)")
    p.add_argument("-n", "--no-newline", action="store_true", help="do not end the text with a newline (exact bytes)")
    p.set_defaults(handler=_decode)


def _train(args: argparse.Namespace) -> int:
    if args.type == "byte_level_bpe":
        if args.vocab_size is None:
            raise ConfigError("--vocab-size is required for byte_level_bpe")
        tok: Any = ByteLevelBPETokenizer(pattern=args.pattern).train(
            args.files, args.vocab_size, args.special, args.min_frequency, show_progress=args.progress
        )
    elif args.type == "char":
        tok = CharTokenizer(special_tokens=args.special).fit(args.files)
    else:
        tok = WordVectorizer(max_tokens=args.vocab_size).adapt(args.files)
    tok.save(args.out)
    print(f"{args.type}: vocab_size={tok.vocab_size} -> {args.out}")
    return 0


#: The most standard input read (like a --input file: refused above, not truncated).
STDIN_MAX_BYTES = 1 << 30


def _read_input(path: Path | None) -> str:
    """The text of ``--input``, else of standard input: at most :data:`STDIN_MAX_BYTES`, strict UTF-8."""
    if path is not None:
        return read_text_file(path)
    limit = STDIN_MAX_BYTES
    binary = getattr(sys.stdin, "buffer", None)
    data = binary.read(limit + 1) if binary is not None else sys.stdin.read(limit + 1)
    if len(data) > limit:
        raise TokenizerError(f"plait tokenizer: standard input has more than the limit of {limit} bytes; "
                             "pass a file with --input")
    if isinstance(data, bytes):
        return decode_utf8(data, source="standard input", component="plait tokenizer", error=SerializationError)
    return data


def _encode(args: argparse.Namespace) -> int:
    tok = load_tokenizer(args.tokenizer)
    text = args.text if args.text is not None else _read_input(args.input)
    if isinstance(tok, ByteLevelBPETokenizer):
        allowed: Any = {"all": "all", "none": ()}.get(args.allowed_special)
        if allowed is None:
            allowed = {s for s in args.allowed_special.split(",") if s}
        ids = tok.encode(text, allowed_special=allowed)
    elif args.allowed_special != "none":
        raise TokenizerError(f"--allowed-special applies to byte-level BPE only, not {type(tok).__name__}")
    else:
        ids = tok.encode(text)
    print(json.dumps(ids) if args.json else " ".join(map(str, ids)))
    return 0


def _decode(args: argparse.Namespace) -> int:
    tok = load_tokenizer(args.tokenizer)
    source = "the IDS arguments" if args.ids else (f"--input {args.input}" if args.input else "standard input")
    raw = " ".join(args.ids) if args.ids else _read_input(args.input)
    text = tok.decode(_parse_ids(raw, source))
    sys.stdout.write(text if args.no_newline else text + "\n")
    sys.stdout.flush()
    return 0


def _parse_ids(raw: str, source: str) -> list[int]:
    """Token ids from ``raw`` (a JSON list, or integers separated by spaces/commas); ``source`` names it."""
    raw = raw.strip()
    if raw.startswith("["):
        ids = parse_json(raw, source=source, component="plait tokenizer decode", expect=list)
        bad = next((i for i, v in enumerate(ids) if isinstance(v, bool) or not isinstance(v, int)), None)
        if bad is not None:
            raise TokenizerError(f"plait tokenizer decode: {source}: field [{bad}] must be an integer token id, "
                                 f"got {json.dumps(ids[bad])[:40]}")
        return ids
    out = []
    for word in raw.replace(",", " ").split():
        try:
            out.append(int(word))
        except ValueError:
            raise TokenizerError(f"{source}: {word!r} is not an integer token id") from None
    return out
