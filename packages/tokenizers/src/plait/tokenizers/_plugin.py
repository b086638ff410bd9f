"""plait-tokenizers's plugin: registers its components through core's hooks, like any third party."""

from __future__ import annotations

from typing import Any

from plait.core.hookspecs import Register, hookimpl

from .loading import TOKENIZERS


@hookimpl
def register_tokenizers(register: Register) -> None:
    for name, cls in TOKENIZERS.items():
        register(name, cls)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import add_commands  # noqa: PLC0415 - argparse set-up only when the CLI runs

    add_commands(cli)
