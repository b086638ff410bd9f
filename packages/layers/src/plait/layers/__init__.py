"""plait-layers: layers, activations and losses with hand-written, tested backward passes.

Every class follows PyTorch's names, arguments and parameter layouts, so weights copy 1:1
from a ``torch.nn`` module. ``y = layer(x)`` caches, ``dx = layer.backward(dy)``
accumulates parameter gradients and returns the input gradient.
"""

from __future__ import annotations

from plait.core import ModuleDict, ModuleList  # noqa: F401 - re-exported

from . import (
    activations,
    attention,
    containers,
    conv,
    dropout,
    embedding,
    functional,  # noqa: F401 - the submodule plait.layers.functional (exported below)
    linear,
    losses,
    losses_elementwise,
    losses_pairwise,
    multihead,
    normalization,
    pooling,
    positional,
    recurrent,
    reshape,
    rotary,
    transformer,
    transformer_stack,
)
from .activations import *  # noqa: F403
from .attention import *  # noqa: F403
from .containers import *  # noqa: F403
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .embedding import *  # noqa: F403
from .linear import *  # noqa: F403
from .losses import *  # noqa: F403
from .losses_elementwise import *  # noqa: F403
from .losses_pairwise import *  # noqa: F403
from .multihead import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
from .positional import *  # noqa: F403
from .recurrent import *  # noqa: F403
from .reshape import *  # noqa: F403
from .rotary import *  # noqa: F403
from .sequence_loss import SequenceCrossEntropyLoss  # noqa: F401 - exported below
from .transformer import *  # noqa: F403
from .transformer_stack import *  # noqa: F403

__version__ = "0.1.0"

#: The family modules, each with ``__all__`` and a ``LAYERS`` (``losses``: ``LOSSES``) table.
FAMILIES = (linear, embedding, positional, rotary, activations, dropout, containers, reshape, conv, pooling,
            normalization, recurrent, attention, multihead, transformer, transformer_stack,
            losses, losses_elementwise, losses_pairwise)

__all__ = sorted({"FAMILIES", "ModuleDict", "ModuleList", "SequenceCrossEntropyLoss", "functional"}.union(*(m.__all__ for m in FAMILIES)))


def __getattr__(name: str) -> object:
    """``plait.layers.sigmoid`` and the other moved helpers: the functional ones, with a DeprecationWarning."""
    return activations.moved_to_functional(__name__, name)
