"""plait-train's plugin: registers its components through core's hooks, like any third party."""

from __future__ import annotations

from typing import Any

from plait.core.hookspecs import Register, hookimpl

from .callbacks import CALLBACKS
from .metrics import METRICS


@hookimpl
def register_metrics(register: Register) -> None:
    for name, cls in METRICS.items():
        register(name, cls)


@hookimpl
def register_callbacks(register: Register) -> None:
    for name, cls in CALLBACKS.items():
        register(name, cls)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import add_commands  # noqa: PLC0415 - argparse set-up only when the CLI runs

    add_commands(cli)
