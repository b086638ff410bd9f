"""Size checks every zoo architecture runs before it builds anything.

A model config is read from files strangers send (``config.json``) and typed by hand
(``num_layers=10**9``). Each architecture checks that its sizes are real integers and
estimates its parameter count from its arguments alone, so an absurd config is a
:class:`~plait.core.ConfigError` naming the argument at once, instead of a loop that
builds blocks for hours or an allocation that fills the memory. The limit is core's
(``PLAIT_MAX_PARAMETERS``, default 2**34 elements).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, check_parameter_count, check_size

__all__ = ["check_parameter_count", "size", "sizes"]

#: Longer lists of widths or block counts are refused before their entries are read.
MAX_LIST = 10_000


def size(value: Any, where: str, what: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (core's :func:`~plait.core.check_size`)."""
    return check_size(value, where, what, minimum)


def sizes(values: Any, where: str, what: str, minimum: int = 1) -> list[int]:
    """A list of sizes (widths, channels, block counts), each checked like :func:`size`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{where}: {what} must be a list of integers, got {values!r}")
    if len(values) > MAX_LIST:
        raise ConfigError(f"{where}: {what} lists {len(values)} entries, more than {MAX_LIST}")
    return [check_size(v, where, f"{what}[{i}]", minimum) for i, v in enumerate(values)]
