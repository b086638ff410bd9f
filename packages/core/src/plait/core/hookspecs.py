"""The pluggy hook specifications every Plait plugin implements a subset of.

A plugin (a module or object named by an entry point in the group ``plait``) writes::

    from plait.core.plugins import hookimpl

    @hookimpl
    def register_layers(register):
        register("my_layer", MyLayer)           # register(name, obj, *, override=False)

Each ``register`` records which plugin added what, so ``plait plugins`` can show it.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

__all__ = ["Register", "hookimpl", "hookspec", "PlaitHookSpecs"]

hookspec = pluggy.HookspecMarker("plait")
hookimpl = pluggy.HookimplMarker("plait")


class Register(Protocol):
    def __call__(self, name: str, obj: Any, *, override: bool = False) -> Any: ...


class PlaitHookSpecs:
    """One hook per registry table, plus one for CLI subcommands."""

    @hookspec
    def register_layers(self, register: Register) -> None:
        """Register Module classes (layers and activations)."""

    @hookspec
    def register_losses(self, register: Register) -> None:
        """Register Loss classes."""

    @hookspec
    def register_initializers(self, register: Register) -> None:
        """Register Initializer factories."""

    @hookspec
    def register_optimizers(self, register: Register) -> None:
        """Register Optimizer classes."""

    @hookspec
    def register_schedulers(self, register: Register) -> None:
        """Register learning-rate Scheduler classes."""

    @hookspec
    def register_metrics(self, register: Register) -> None:
        """Register Metric classes."""

    @hookspec
    def register_callbacks(self, register: Register) -> None:
        """Register training Callback classes."""

    @hookspec
    def register_tokenizers(self, register: Register) -> None:
        """Register Tokenizer classes."""

    @hookspec
    def register_models(self, register: Register) -> None:
        """Register model architectures and presets (see plait.zoo)."""

    @hookspec
    def register_commands(self, cli: Any) -> None:
        """Add subcommands to the ``plait`` console script: ``cli.command(name, help) -> parser``."""
