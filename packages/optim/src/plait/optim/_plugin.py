"""plait-optim's plugin: registers its components through core's hooks, like any third party."""

from __future__ import annotations

from plait.core.hookspecs import Register, hookimpl

from . import OPTIMIZERS, SCHEDULERS


@hookimpl
def register_optimizers(register: Register) -> None:
    for name, cls in OPTIMIZERS.items():
        register(name, cls)


@hookimpl
def register_schedulers(register: Register) -> None:
    for name, cls in SCHEDULERS.items():
        register(name, cls)
