"""plait-zoo's plugin: registers its architectures, presets and CLI commands through core's hooks."""

from __future__ import annotations

from typing import Any

from plait.core.hookspecs import Register, hookimpl

from . import models, presets  # noqa: F401 - importing them declares the zoo's models
from .catalog import ZOO_CATALOG


@hookimpl
def register_models(register: Register) -> None:
    ZOO_CATALOG.contribute(register)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import add_commands  # noqa: PLC0415 - argparse set-up only when the CLI runs

    add_commands(cli)
