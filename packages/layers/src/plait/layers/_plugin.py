"""plait-layers' plugin: registers every layer and loss through core's hooks, like any third party.

Each family module exposes ``LAYERS`` (and ``losses`` exposes ``LOSSES``): name -> class.
"""

from __future__ import annotations

from plait.core.hookspecs import Register, hookimpl

from . import FAMILIES, losses, losses_elementwise, losses_pairwise
from .sequence_loss import SequenceCrossEntropyLoss


@hookimpl
def register_layers(register: Register) -> None:
    for family in FAMILIES:
        for name, cls in getattr(family, "LAYERS", {}).items():
            register(name, cls)


@hookimpl
def register_losses(register: Register) -> None:
    for name, cls in {**losses.LOSSES, **losses_elementwise.LOSSES, **losses_pairwise.LOSSES}.items():
        register(name, cls)
    register("sequence_cross_entropy", SequenceCrossEntropyLoss)
