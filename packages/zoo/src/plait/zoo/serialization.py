"""``plait.zoo.save`` / ``load``: the friendly names of core's model folders.

A saved model is a folder, ``config.json`` + ``model.safetensors`` (see
:mod:`plait.core.model_folder`): written in one step, read back with each file checked
against the SHA-256 that config.json records, rebuilt by name through ``registry.models``
(a layer named in ``model_args`` may come from any installed plugin). Here the zoo adds
only what it knows: how a model built by a registered *function* is named
(:func:`model_spec`) and how presets and argument checks rebuild it (:func:`create`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from plait.core import ConfigError, Module, registry
from plait.core.model_folder import (
    CONFIG_FILE,
    FORMAT_VERSION,
    MODEL_FORMAT,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    load_model,
    load_model_weights,
    read_model_config,
    save_model,
)

from .catalog import create

__all__ = ["CONFIG_FILE", "FORMAT", "FORMAT_VERSION", "TOKENIZER_FILE", "WEIGHTS_FILE", "load", "load_weights",
           "model_spec", "read_config", "save"]

FORMAT = MODEL_FORMAT


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


def save(model: Module, directory: str | os.PathLike[str], *, metadata: dict[str, Any] | None = None,
         tokenizer: Any = None) -> Path:
    """Write ``directory/config.json`` and ``directory/model.safetensors`` in one step; returns the folder.

    ``metadata`` (JSON-able) is stored under ``"metadata"`` in config.json (e.g. training facts).
    ``tokenizer`` (anything with ``save(path)``, e.g. a plait-tokenizers tokenizer) is written
    beside them as ``tokenizer.json``, where ``plait generate`` finds it.

    Args:
        model: a model built by :func:`create` or of a registered class.
        directory: the folder; an existing one is replaced in one step.
        metadata: default None; keyword-only.
        tokenizer: default None; keyword-only.

    Raises:
        ConfigError: the model is not a registered architecture, or the tokenizer has no
            ``save``.
        SerializationError: metadata that is not JSON-able, or the write failed (the old
            folder is then intact).
    """
    architecture, args = model_spec(model)
    return save_model(model, directory, metadata=metadata, tokenizer=tokenizer, architecture=architecture,
                      model_args=args)


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated config.json of a saved model folder (SerializationError naming the problem).

    Args:
        directory: the model folder.

    Raises:
        SerializationError: no such folder, or a missing, oversized or invalid config.json.
    """
    return read_model_config(directory)


def load_weights(model: Module, directory: str | os.PathLike[str]) -> Module:
    """Copy the weights of a saved folder into ``model``, which must be the same architecture.

    Args:
        model: a model of a registered architecture (filled in place and returned).
        directory: the model folder.

    Raises:
        ConfigError: ``model`` is not a registered architecture.
        SerializationError: an invalid or tampered folder, another architecture, or weights
            whose names or shapes do not fit ``model``.
    """
    return load_model_weights(model, directory, architecture=model_spec(model)[0])


def load(directory: str | os.PathLike[str], *, architecture: str | None = None) -> Module:
    """Rebuild a saved model by name and load its weights; ``architecture`` asserts what it must be.

    Args:
        directory: the model folder written by :func:`save`.
        architecture: default None (any); keyword-only.

    Returns:
        The model, in eval mode.

    Raises:
        SerializationError: an invalid or tampered folder, another architecture than
            asserted, a missing plugin, or ``model_args`` the architecture refuses.
    """
    return load_model(directory, architecture=architecture, build=lambda name, args: create(name, **args))
