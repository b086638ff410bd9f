"""plait-core's own plugin: the initializers, registered like any third-party plugin."""

from __future__ import annotations

from .hookspecs import Register, hookimpl
from .initializers import INITIALIZERS


@hookimpl
def register_initializers(register: Register) -> None:
    for name, cls in INITIALIZERS.items():
        register(name, cls)


@hookimpl
def register_commands(cli) -> None:  # noqa: ANN001 - the CLI object of plait.core.cli
    from .cli import add_core_commands  # noqa: PLC0415

    add_core_commands(cli)
