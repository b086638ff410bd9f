"""plait-layers' plugin: registers every layer and loss through core's hooks, like any third party.

Each family module exposes ``LAYERS`` (and ``losses`` exposes ``LOSSES``): name -> class.
"""

from __future__ import annotations

from plait.core.hookspecs import Register, hookimpl

from . import (
    activations,
    attention,
    containers,
    conv,
    dropout,
    embedding,
    linear,
    losses,
    normalization,
    pooling,
    positional,
    recurrent,
    reshape,
    rotary,
    transformer,
)

_FAMILIES = (
    linear,
    embedding,
    positional,
    rotary,
    activations,
    dropout,
    containers,
    reshape,
    conv,
    pooling,
    normalization,
    recurrent,
    attention,
    transformer,
)


@hookimpl
def register_layers(register: Register) -> None:
    for family in _FAMILIES:
        for name, cls in family.LAYERS.items():
            register(name, cls)


@hookimpl
def register_losses(register: Register) -> None:
    for name, cls in losses.LOSSES.items():
        register(name, cls)
