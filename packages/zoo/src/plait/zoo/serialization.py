"""A saved model is a folder: ``config.json`` + ``model.safetensors``.

config.json::

    {"format": "plait-model", "format_version": 1,
     "architecture": "gpt", "model_args": {...}, "dtype": "float32",
     "versions": {"plait-core": "0.1.0", "plait-layers": "0.1.0", "plait-zoo": "0.1.0", ...}}

:func:`load` rebuilds the model through ``registry.models`` (no class import by the
user; a layer named in ``model_args`` may come from any installed plugin) and copies
the weights in. Both files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from plait.core import (
    ConfigError,
    Module,
    PlaitError,
    SerializationError,
    atomic_write_text,
    load_safetensors,
    registry,
    save_safetensors,
)

from .catalog import create

__all__ = ["CONFIG_FILE", "FORMAT", "FORMAT_VERSION", "TOKENIZER_FILE", "WEIGHTS_FILE", "load", "load_weights", "model_spec", "read_config", "save"]

FORMAT = "plait-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
_DISTRIBUTIONS = ("plait-core", "plait-layers", "plait-zoo")
_FLOAT_DTYPES = ("float16", "float32", "float64")


def model_spec(model: Module) -> tuple[str, dict[str, Any]]:
    """``(architecture name, JSON-able arguments)`` that rebuild ``model`` via ``plait.zoo.create``."""
    spec = model.__dict__.get("_zoo_spec")
    if spec is not None:  # built by a function architecture: rebuild through that function
        from plait.core.jsonable import to_jsonable  # noqa: PLC0415 - the same JSON conversion as config()

        return spec[0], to_jsonable(spec[1])
    if registry.models.find(type(model)) is not None:
        cfg = model.config()
        return cfg.pop("type"), {k: v for k, v in cfg.items() if k != "kind"}
    raise ConfigError(
        f"{type(model).__name__} is not a registered model architecture, so it cannot be saved by name; "
        "register it with plait.zoo.register_model (or a plugin's register_models hook)"
    )


def _versions() -> dict[str, str]:
    out = {}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _weights_dtype(model: Module) -> str:
    floats = {np.dtype(p.dtype).name for p in model.parameters() if np.dtype(p.dtype).kind == "f"}
    return floats.pop() if len(floats) == 1 else "float32"


def save(model: Module, directory: str | os.PathLike[str], *, metadata: dict[str, Any] | None = None,
         tokenizer: Any = None) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors``; returns the folder.

    ``metadata`` (JSON-able) is stored under ``"metadata"`` in config.json (e.g. training facts).
    ``tokenizer`` (anything with ``save(path)``, e.g. a plait-tokenizers tokenizer) is written
    beside them as ``tokenizer.json``, where ``plait generate`` finds it.
    """
    folder = Path(directory)
    architecture, args = model_spec(model)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "model_args": args,
        "dtype": _weights_dtype(model),
        "num_parameters": model.num_parameters(),
        "versions": _versions(),
    }
    if metadata:
        config["metadata"] = metadata
    try:
        text = json.dumps(config, indent=2, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"{folder / CONFIG_FILE}: model config is not JSON-able: {exc}") from exc
    folder.mkdir(parents=True, exist_ok=True)
    save_safetensors(folder / WEIGHTS_FILE, model.state_dict(), {"format": FORMAT, "architecture": architecture})
    if tokenizer is not None:
        tokenizer.save(folder / TOKENIZER_FILE)
    atomic_write_text(folder / CONFIG_FILE, text + "\n")
    return folder


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated config.json of a saved model folder (SerializationError naming the problem)."""
    folder = Path(directory)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise SerializationError(f"{folder}: not a saved model folder (no such directory)")
    if not path.is_file():
        raise SerializationError(f"{path}: missing; a saved model folder holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"{path}: not valid JSON ({exc})") from exc
    except (RecursionError, ValueError) as exc:  # nesting bombs, numbers past Python's digit limit
        raise SerializationError(f"{path}: not a usable JSON document ({type(exc).__name__}: {exc})") from exc
    if not isinstance(config, dict):
        raise SerializationError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise SerializationError(f"{path}: 'format' is {config.get('format')!r}, expected {FORMAT!r}")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise SerializationError(
            f"{path}: format_version {version!r} is not supported (this plait-zoo reads 1..{FORMAT_VERSION})"
        )
    if not isinstance(config.get("architecture"), str) or not isinstance(config.get("model_args"), dict):
        raise SerializationError(f"{path}: needs a string 'architecture' and an object 'model_args'")
    dtype = config.get("dtype", "float32")
    if dtype not in _FLOAT_DTYPES:
        raise SerializationError(f"{path}: dtype {dtype!r} is not one of {', '.join(_FLOAT_DTYPES)}")
    return config


def load_weights(model: Module, directory: str | os.PathLike[str]) -> Module:
    """Copy the weights of a saved folder into ``model``, which must be the same architecture."""
    folder = Path(directory)
    config = read_config(folder)
    architecture, _ = model_spec(model)
    if architecture != config["architecture"]:
        raise SerializationError(
            f"{folder / CONFIG_FILE}: holds a {config['architecture']!r} model; cannot load it into a "
            f"{architecture!r} model ({type(model).__name__})"
        )
    weights = load_safetensors(folder / WEIGHTS_FILE)
    try:
        model.load_state_dict(weights, strict=True)
    except PlaitError as exc:
        raise SerializationError(f"{folder / WEIGHTS_FILE}: does not fit the {architecture!r} model: {exc}") from exc
    return model


def load(directory: str | os.PathLike[str], *, architecture: str | None = None) -> Module:
    """Rebuild a saved model by name and load its weights; ``architecture`` asserts what it must be."""
    folder = Path(directory)
    config = read_config(folder)
    name = config["architecture"]
    if architecture is not None and architecture != name:
        raise SerializationError(f"{folder / CONFIG_FILE}: holds a {name!r} model, not the requested {architecture!r}")
    try:
        model = create(name, **config["model_args"])
    except PlaitError as exc:
        raise SerializationError(f"{folder / CONFIG_FILE}: cannot rebuild the {name!r} model: {exc}") from exc
    except Exception as exc:  # a constructor choking on hostile arguments (types, sizes, memory)
        raise SerializationError(
            f"{folder / CONFIG_FILE}: cannot rebuild the {name!r} model from its model_args: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    dtype = config.get("dtype", "float32")
    if dtype != "float32":
        model.astype(np.dtype(dtype))
    load_weights(model, folder)
    model.eval()
    return model
