"""Text <-> ids for saved language models, through the registry's tokenizers.

A model folder may hold ``tokenizer.json`` (a file of any registered tokenizer: its
``format`` ``"plait.NAME"`` names the registry entry ``NAME``, whose ``load`` reads it)
or, for character-level models, ``config.json["metadata"]["chars"]``: the vocabulary as
one string of sorted characters, id i = chars[i] (read with the registered ``char``
tokenizer). zoo never imports plait-tokenizers: whichever distribution registers the
tokenizer does the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plait.core import ConfigError, RegistryError, SerializationError, registry
from plait.core.registry import install_hint

from .serialization import TOKENIZER_FILE, read_config

__all__ = ["TOKENIZER_FILE", "load_text_codec"]

_MAX_TOKENIZER_BYTES = 1 << 30


def _tokenizer_class(name: str, where: Path) -> Any:
    try:
        return registry.tokenizers.get(name)
    except RegistryError as exc:
        raise SerializationError(f"{where}: reading it needs the tokenizer {name!r}, which is not registered "
                                 f"({install_hint('plait-tokenizers')}): {exc}") from None


def _tokenizer_format(path: Path) -> str:
    """The ``format`` field of a tokenizer file, read without trusting it."""
    import json  # noqa: PLC0415

    try:
        if not path.is_file() or path.stat().st_size > _MAX_TOKENIZER_BYTES:
            raise SerializationError(f"{path}: not a regular file of at most {_MAX_TOKENIZER_BYTES} bytes")
        payload = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise SerializationError(f"{path}: not a readable tokenizer JSON file ({type(exc).__name__}: {exc})") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if not isinstance(fmt, str) or not fmt.startswith("plait.") or not fmt[6:].isidentifier():
        raise SerializationError(f"{path}: expected a tokenizer file with format 'plait.NAME', got format {fmt!r}")
    return fmt[len("plait."):]


def load_text_codec(folder: Path, vocab_size: int | None = None) -> Any | None:
    """The folder's tokenizer, its character vocabulary, or None.

    ``vocab_size``: the model's vocabulary; a tokenizer with fewer ids could not decode
    what the model generates, so that is a ConfigError naming both sizes.
    """
    path = folder / TOKENIZER_FILE
    if path.is_file():
        codec = _tokenizer_class(_tokenizer_format(path), path).load(path)
        source = str(path)
    else:
        chars = (read_config(folder).get("metadata") or {}).get("chars")
        if chars is None:
            return None
        if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise SerializationError(f"{folder / 'config.json'}: metadata.chars must be a string of distinct, "
                                     f"sorted characters, got {str(chars)[:40]!r}")
        codec = _tokenizer_class("char", folder / "config.json")(chars=chars)
        source = f"{folder / 'config.json'} (metadata.chars)"
    size = int(getattr(codec, "vocab_size", 0))
    if vocab_size is not None and size < int(vocab_size):
        raise ConfigError(f"{source}: the saved vocabulary has {size} entries but the model's vocab_size is "
                          f"{int(vocab_size)}; ids it generates could not be decoded (save the model with the "
                          "vocabulary it was trained on)")
    return codec
