"""Architectures and presets share one registry table, ``registry.models``.

* An **architecture** is a ``Module`` subclass (or a function returning a Module) that
  takes keyword arguments: ``registry.models.get("gpt")(**args)`` builds one.
* A **preset** is a :class:`Preset`: a named architecture plus a dict of arguments,
  itself callable with overrides, so ``registry.models.get("gpt-mini")(dropout=0.1)``
  builds the same way. A preset may name another preset.

:func:`create` therefore treats both alike; :func:`model_config` resolves a name to
``{"architecture": ..., "model_args": {...}}`` with every default filled in.

A distribution declares its models on a :class:`ModelCatalog` and hands them over in
its ``register_models`` hook, exactly as plait-zoo does with its own catalog::

    # mypkg/_plugin.py, named by an entry point in the group "plait"
    from plait.core import Module, hookimpl
    from plait.zoo import ModelCatalog

    models = ModelCatalog()

    @models.register_model("tiny_cnn")
    class TinyCNN(Module): ...

    models.register_preset("tiny-cnn-8", "tiny_cnn", channels=8)

    @hookimpl
    def register_models(register):
        models.contribute(register)

``plait.zoo.register_model`` / ``register_preset`` are the methods of plait-zoo's own
catalog; used in a script after the plugins have loaded they register at once (origin:
the declaring module), so a notebook can add a model too.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import sys
from collections.abc import Callable
from typing import Any

from plait.core import ConfigError, Module, RegistryError, registry

__all__ = [
    "ModelCatalog",
    "Preset",
    "ZOO_CATALOG",
    "create",
    "is_preset",
    "list_models",
    "model_config",
    "register_model",
    "register_preset",
]


class Preset:
    """A named architecture plus default arguments; call it (with overrides) to build the model.

    Args:
        architecture: the registered name of an architecture (or another preset).
        description: default ``""``; one line shown by ``plait models``.
        **args: the architecture's keyword arguments this preset fixes.

    Raises:
        ConfigError: ``architecture`` is not a non-empty string.
    """

    def __init__(self, architecture: str, description: str = "", **args: Any) -> None:
        if not isinstance(architecture, str) or not architecture:
            raise ConfigError(f"Preset: architecture must be a registered model name, got {architecture!r}")
        self.architecture = architecture
        self.args = dict(args)
        self.description = description

    def __call__(self, **overrides: Any) -> Module:
        return create(self.architecture, **{**self.args, **overrides})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"Preset({self.architecture!r}, {args})"


def is_preset(name: str) -> bool:
    """Whether ``name`` is registered in ``registry.models`` as a :class:`Preset`.

    Args:
        name: a registered model name.

    Raises:
        RegistryError: an unknown name.
    """
    return isinstance(registry.models.get(name), Preset)


class ModelCatalog:
    """Architectures and presets declared by one distribution, handed to ``register_models``."""

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}
        self._register: Callable[..., Any] | None = None

    def register_model(self, obj: Any = None, *, name: str | None = None) -> Any:
        """Decorator: ``@register_model``, ``@register_model("name")`` or ``@register_model(name=...)``.

        The name defaults to the function or class name in lower case.

        Args:
            obj: default None; the class or function when used bare (``@register_model``),
                or the name when called with a string (``@register_model("name")``).
            name: default None (the lower-cased ``__name__``); keyword-only.

        Raises:
            ConfigError: the decorated object is not callable.
            RegistryError: the name is already declared in this catalog for another object.
        """
        if isinstance(obj, str):
            name, obj = obj, None

        def decorate(target: Any) -> Any:
            if not callable(target):
                raise ConfigError(f"register_model expects a Module class or a function, got {target!r}")
            self._add(name or target.__name__.lower(), target)
            return target

        return decorate(obj) if obj is not None else decorate

    def register_preset(self, name: str, architecture: str, description: str = "", **args: Any) -> Preset:
        """Declare ``name`` as ``architecture`` built with ``args``.

        Args:
            name: the preset's name (``"gpt-mini"``).
            architecture: the registered architecture (or preset) it builds.
            description: default ``""``; one line shown by ``plait models``.
            **args: the arguments it fixes (overridable at :func:`create`).

        Raises:
            ConfigError: ``architecture`` is not a non-empty string.
            RegistryError: the name is already declared in this catalog for another object.
        """
        preset = Preset(architecture, description, **args)
        self._add(name, preset, sys._getframe(1).f_globals.get("__name__", "<script>"))
        return preset

    def _add(self, name: str, obj: Any, origin: str | None = None) -> None:
        if name in self._entries and self._entries[name] is not obj:
            raise RegistryError(f"model {name!r} is declared twice in the same catalog")
        self._entries[name] = obj
        if self._register is not None:  # declared after the plugins loaded: register now
            registry.models.register(name, obj, origin=origin or getattr(obj, "__module__", "<script>"))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def contribute(self, register: Callable[..., Any]) -> None:
        """Call from a ``register_models(register)`` hook: registers every declared model.

        Args:
            register: the hook's ``register(name, obj)`` callable; later declarations on
                this catalog are registered at once.
        """
        for name, obj in self._entries.items():
            register(name, obj)
        self._register = register


ZOO_CATALOG = ModelCatalog()
register_model = ZOO_CATALOG.register_model
register_preset = ZOO_CATALOG.register_preset


def _unknown(name: str) -> RegistryError:
    known = registry.models.names()
    close = difflib.get_close_matches(str(name), known, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f"; known models: {', '.join(known)}"
    return RegistryError(f"unknown model {name!r}{hint}")


def _lookup(name: str) -> Any:
    if not isinstance(name, str) or name not in registry.models:
        raise _unknown(name)
    return registry.models.get(name)


def create(name: str, **overrides: Any) -> Module:
    """Build the architecture or preset ``name``; ``overrides`` replace preset arguments.

    ``create("gpt-mini", dropout=0.1)``; ``create("mlp", sizes=[784, 128, 10])``.

    Args:
        name: a registered architecture or preset (``list_models()``).
        **overrides: keyword arguments of the architecture.

    Raises:
        RegistryError: an unknown name (the message suggests close ones).
        ConfigError: an argument the architecture does not take, a constructor that
            refuses the arguments, or a factory that does not return a Module.
    """
    factory = _lookup(name)
    if isinstance(factory, Preset):
        return factory(**overrides)
    _check_arguments(name, factory, overrides)
    try:
        model = factory(**overrides)
    except TypeError as exc:
        raise ConfigError(f"cannot build model {name!r} from {overrides!r}: {exc}") from exc
    if not isinstance(model, Module):
        raise ConfigError(f"model {name!r} built a {type(model).__name__}, not a plait Module")
    if not isinstance(factory, type):  # a function architecture: remember how it was built
        model.__dict__["_zoo_spec"] = (name, _bound_arguments(factory, overrides))
    return model


def _signature(factory: Any) -> inspect.Signature:
    target = factory.__init__ if isinstance(factory, type) else factory
    sig = inspect.signature(target)
    params = list(sig.parameters.values())
    if isinstance(factory, type):
        params = params[1:]  # self
    return sig.replace(parameters=params)


def _check_arguments(name: str, factory: Any, args: dict[str, Any]) -> None:
    sig = _signature(factory)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return
    unknown = [k for k in args if k not in sig.parameters]
    if unknown:
        accepted = ", ".join(sig.parameters)
        raise ConfigError(f"model {name!r} has no argument(s) {', '.join(unknown)}; it accepts: {accepted}")


def _bound_arguments(factory: Any, args: dict[str, Any]) -> dict[str, Any]:
    bound = _signature(factory).bind_partial(**args)
    bound.apply_defaults()
    return dict(bound.arguments)


def model_config(name: str) -> dict[str, Any]:
    """``{"architecture": arch, "model_args": {...}}`` for a preset or architecture, defaults filled.

    Args:
        name: a registered architecture or preset (presets are followed to the architecture).

    Raises:
        RegistryError: an unknown name.
        ConfigError: a preset cycle, or a preset argument the architecture does not take.
    """
    factory = _lookup(name)
    args: dict[str, Any] = {}
    seen = [name]
    while isinstance(factory, Preset):
        args = {**factory.args, **args}
        name = factory.architecture
        if name in seen:
            raise ConfigError(f"preset cycle: {' -> '.join([*seen, name])}")
        seen.append(name)
        factory = _lookup(name)
    _check_arguments(name, factory, args)
    return {"architecture": name, "model_args": _bound_arguments(factory, args)}


def list_models(pattern: str = "*", *, presets: bool | None = None) -> list[str]:
    """Sorted model names matching the shell-style ``pattern`` (``"gpt*"``).

    ``presets=True`` lists presets only, ``False`` architectures only, ``None`` both.

    Args:
        pattern: default ``"*"`` (every model); a shell-style pattern (``fnmatch``, case-sensitive).
        presets: default None (both); keyword-only.
    """
    names = [n for n in registry.models.names() if fnmatch.fnmatchcase(n, pattern)]
    if presets is None:
        return names
    return [n for n in names if isinstance(registry.models.get(n), Preset) == presets]
