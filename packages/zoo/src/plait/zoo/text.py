"""Text <-> ids for saved language models, through the registry's tokenizers.

A model folder may hold ``tokenizer.json`` (any registered tokenizer, named in
config.json and read back by :func:`plait.core.load_model_tokenizer`) or, for
character-level models, ``config.json["metadata"]["chars"]``: the vocabulary as one
string of sorted characters, id i = chars[i] (read with the registered ``char``
tokenizer). zoo never imports plait-tokenizers: whichever distribution registers the
tokenizer does the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plait.core import ConfigError, RegistryError, SerializationError, load_model_tokenizer, registry
from plait.core.registry import install_hint

from .serialization import CONFIG_FILE, TOKENIZER_FILE, read_config

__all__ = ["TOKENIZER_FILE", "load_text_codec"]


def _char_tokenizer(chars: Any, where: Path) -> Any:
    if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars) or list(chars) != sorted(chars):
        raise SerializationError(f"{where}: metadata.chars must be a string of distinct, sorted characters, "
                                 f"got {str(chars)[:40]!r}")
    try:
        factory = registry.tokenizers.get("char")
    except RegistryError as exc:
        raise SerializationError(f"{where}: reading its character vocabulary needs the tokenizer 'char' "
                                 f"({install_hint('plait-tokenizers')}): {exc}") from None
    return factory(chars=chars)


def load_text_codec(folder: Path, vocab_size: int | None = None) -> Any | None:
    """The folder's tokenizer, its character vocabulary, or None.

    ``vocab_size``: the model's vocabulary; a tokenizer with fewer ids could not decode
    what the model generates, so that is a ConfigError naming both sizes.
    """
    folder = Path(folder)
    config = read_config(folder)
    if config.get("tokenizer") is not None:
        codec, source = load_model_tokenizer(folder), str(folder / TOKENIZER_FILE)
    else:
        chars = (config.get("metadata") or {}).get("chars")
        if chars is None:
            return None
        codec = _char_tokenizer(chars, folder / CONFIG_FILE)
        source = f"{folder / CONFIG_FILE} (metadata.chars)"
    size = int(getattr(codec, "vocab_size", 0))
    if vocab_size is not None and size < int(vocab_size):
        raise ConfigError(f"{source}: the saved vocabulary has {size} entries but the model's vocab_size is "
                          f"{int(vocab_size)}; ids it generates could not be decoded (save the model with the "
                          "vocabulary it was trained on)")
    return codec
