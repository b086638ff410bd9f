"""The registry: one table of named components per kind.

    from plait.core import registry
    registry.layers.get("linear")               # the class registered as "linear"
    registry.layers.names()                     # sorted names
    registry.build({"type": "linear", "in_features": 4, "out_features": 2})

Tables fill themselves from plugins (the entry-point group ``plait``) the first time
they are looked at; see :mod:`plait.core.plugins`.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, PlaitError, PluginError, RegistryError

__all__ = ["KINDS", "Registry", "Table", "registry"]

KINDS: tuple[str, ...] = (
    "layers",
    "losses",
    "initializers",
    "optimizers",
    "schedulers",
    "metrics",
    "callbacks",
    "tokenizers",
    "models",
)

# Which first-party distribution fills which table: used to hint at a missing install.
_FIRST_PARTY: dict[str, str] = {
    "layers": "plait-layers",
    "losses": "plait-layers",
    "initializers": "plait-core",
    "optimizers": "plait-optim",
    "schedulers": "plait-optim",
    "metrics": "plait-train",
    "callbacks": "plait-train",
    "tokenizers": "plait-tokenizers",
    "models": "plait-zoo",
}

# The methods an object must offer to be accepted into a table (classes or instances).
_REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "layers": ("forward", "backward"),
    "losses": ("forward", "backward"),
    "optimizers": ("step", "zero_grad"),
    "schedulers": ("step",),
    "tokenizers": ("encode", "decode"),
}


@dataclass(frozen=True)
class Entry:
    obj: Any
    origin: str  # the plugin (usually a distribution name) that registered it


def _check_conforms(kind: str, name: str, obj: Any, origin: str) -> None:
    if not callable(obj):
        raise PluginError(f"{origin} registered {kind[:-1]} {name!r} as {obj!r}, which is not callable")
    missing = [m for m in _REQUIRED_METHODS.get(kind, ()) if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(
            f"{origin} registered {kind[:-1]} {name!r} = {getattr(obj, '__name__', obj)!r}, "
            f"which does not conform: missing method(s) {', '.join(missing)}"
        )


class Table:
    """Named components of one kind. Later registrations of a name need ``override=True``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, list[Entry]] = {}

    # -- lookup ---------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        from .plugins import ensure_plugins_loaded  # noqa: PLC0415 - avoid an import cycle

        ensure_plugins_loaded()

    def get(self, name: str) -> Any:
        """The object registered as ``name``; :class:`RegistryError` with close matches if unknown."""
        self._ensure_loaded()
        stack = self._entries.get(name)
        if not stack:
            raise RegistryError(self._unknown_message(name))
        return stack[-1].obj

    def origin(self, name: str) -> str:
        """Which plugin registered the active entry for ``name``."""
        self.get(name)
        return self._entries[name][-1].origin

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style wildcard."""
        self._ensure_loaded()
        return sorted(n for n, s in self._entries.items() if s and fnmatch.fnmatchcase(n, pattern))

    def items(self) -> list[tuple[str, Any]]:
        return [(n, self._entries[n][-1].obj) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return bool(self._entries.get(name))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"<registry table {self.kind!r}: {len(self._entries)} names>"

    # -- registration (called by plugins) --------------------------------------------------
    def register(self, name: str, obj: Any, *, origin: str = "<unknown>", override: bool = False) -> Any:
        """Add ``obj`` under ``name``. A taken name is an error naming both origins."""
        if not isinstance(name, str) or not name or name.strip() != name:
            raise RegistryError(f"{origin}: {self.kind[:-1]} name must be a non-empty string, got {name!r}")
        _check_conforms(self.kind, name, obj, origin)
        stack = self._entries.setdefault(name, [])
        if stack and not override:
            if stack[-1].obj is obj and stack[-1].origin == origin:
                return obj  # the same registration again: harmless
            raise RegistryError(
                f"{self.kind[:-1]} {name!r} is registered twice: by {stack[-1].origin} and by {origin}; "
                "pass override=True to replace it on purpose"
            )
        stack.append(Entry(obj, origin))
        return obj

    def remove_origin(self, origin: str) -> list[str]:
        """Drop every entry ``origin`` registered (restoring what it overrode)."""
        removed = []
        for name, stack in list(self._entries.items()):
            kept = [e for e in stack if e.origin != origin]
            if len(kept) != len(stack):
                removed.append(name)
                if kept:
                    self._entries[name] = kept
                else:
                    del self._entries[name]
        return removed

    def find(self, obj: Any) -> str | None:
        """The active name under which ``obj`` is registered, if any."""
        for name, stack in self._entries.items():
            if stack and stack[-1].obj is obj:
                return name
        return None

    def _unknown_message(self, name: str) -> str:
        known = sorted(n for n, s in self._entries.items() if s)
        close = difflib.get_close_matches(str(name), known, n=5, cutoff=0.6)
        msg = f"unknown {self.kind[:-1]} {name!r}"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        from .plugins import plugin_host  # noqa: PLC0415

        hint = plugin_host().hint_for_unknown(self.kind)
        if hint:
            msg += f" ({hint})"
        elif not close:
            msg += f"; known: {', '.join(known) if known else 'none'}"
        return msg


class Registry:
    """All tables, plus :meth:`build` for nested ``{"type": name, ...}`` configs."""

    def __init__(self) -> None:
        self._tables = {kind: Table(kind) for kind in KINDS}

    def __getattr__(self, kind: str) -> Table:
        try:
            return self.__dict__["_tables"][kind]
        except KeyError:
            raise AttributeError(f"registry has no table {kind!r}; tables: {', '.join(KINDS)}") from None

    def table(self, kind: str) -> Table:
        if kind not in self._tables:
            raise RegistryError(f"unknown registry kind {kind!r}; kinds: {', '.join(KINDS)}")
        return self._tables[kind]

    def tables(self) -> Mapping[str, Table]:
        return dict(self._tables)

    def name_of(self, obj: Any) -> tuple[str, str] | None:
        """``(kind, name)`` under which ``obj`` (usually a class) is registered, or None."""
        from .plugins import ensure_plugins_loaded  # noqa: PLC0415

        ensure_plugins_loaded()
        for kind, table in self._tables.items():
            name = table.find(obj)
            if name is not None:
                return kind, name
        return None

    def build(self, config: Mapping[str, Any], kind: str = "layers") -> Any:
        """Construct a component from ``{"type": name, **kwargs}``.

        Nested dicts that carry a ``"type"`` key (also inside lists) are built first, in
        the same kind unless they name another with ``"kind"``.
        """
        if not isinstance(config, Mapping) or "type" not in config:
            raise ConfigError(f"registry.build expects a dict with a 'type' key, got {config!r}")
        kind = config.get("kind", kind)
        factory: Callable[..., Any] = self.table(kind).get(config["type"])
        try:
            kwargs = {k: self._build_nested(v, kind) for k, v in config.items() if k not in ("type", "kind")}
        except RecursionError:
            raise ConfigError(f"registry.build: the config of {kind[:-1]} {config['type']!r} is nested too deeply") from None
        try:
            return factory(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"cannot build {kind[:-1]} {config['type']!r} from {dict(kwargs)!r}: {exc}") from exc
        except PlaitError:
            raise
        except (ValueError, OverflowError, MemoryError) as exc:  # e.g. int("abc"), a size too large to allocate
            raise ConfigError(f"cannot build {kind[:-1]} {config['type']!r} from {dict(kwargs)!r}: "
                              f"{type(exc).__name__}: {exc}") from exc

    def _build_nested(self, value: Any, kind: str) -> Any:
        if isinstance(value, Mapping) and "type" in value:
            return self.build(value, kind)
        if isinstance(value, list):
            return [self._build_nested(v, kind) for v in value]
        return value


registry = Registry()
