"""The registry: one table of named components per kind.

    from plait.core import registry
    registry.layers.get("linear")               # the class registered as "linear"
    registry.layers.names()                     # sorted names
    registry.build({"type": "linear", "in_features": 4, "out_features": 2})
    registry.build("linear", args=(4, 2), bias=False, where="my model")  # a name and arguments

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
from .protocols import PROTOCOLS, required_methods

__all__ = ["FIRST_PARTY_DISTRIBUTIONS", "KINDS", "Collision", "Registry", "Table", "UnresolvedNameError", "install_hint",
           "registry"]

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

# The methods an object must offer to be accepted into a table (classes or instances): those of
# the table's protocol in :mod:`.protocols`, the one statement of each contract.
_REQUIRED_METHODS: dict[str, tuple[str, ...]] = {kind: required_methods(p) for kind, p in PROTOCOLS.items()}


# Plait's own distributions: they keep their names against third parties (see Table.resolve).
FIRST_PARTY_DISTRIBUTIONS: frozenset[str] = frozenset(
    ("plait-core", "plait-layers", "plait-optim", "plait-tokenizers", "plait-train", "plait-zoo")
)


def install_hint(distribution: str) -> str:
    """How to install ``distribution``: from the package index, or from a checkout's folder."""
    folder = distribution.removeprefix("plait-") if distribution in FIRST_PARTY_DISTRIBUTIONS else None
    hint = f"pip install {distribution}"
    if folder:
        hint += f"; from a checkout: pip install ./packages/{folder}"
    return hint


def origin_rank(distribution: str | None, sequence: int) -> tuple[int, str, int]:
    """Who keeps a contested name (smallest first): Plait's own distributions, then other
    installed distributions alphabetically, then in-process plugins in registration order."""
    if distribution in FIRST_PARTY_DISTRIBUTIONS:
        return (0, distribution, 0)
    if distribution:
        return (1, distribution.lower().replace("_", "-"), 0)
    return (2, "", sequence)


@dataclass(frozen=True)
class Entry:
    obj: Any
    origin: str  # the plugin (usually a distribution name) that registered it
    override: bool = False
    rank: tuple[int, str, int] = (2, "", 0)


@dataclass(frozen=True)
class Collision:
    """A name claimed by more than one origin; ``loser`` was skipped (or, for two
    overrides, the name is unusable until one of them is uninstalled)."""

    kind: str
    name: str
    winner: str | None
    loser: str
    reason: str

    def message(self) -> str:
        what = f"{self.kind[:-1]} {self.name!r}"
        if self.winner is None:
            return f"{what} is overridden (override=True) by both {self.reason}; uninstall one of them"
        return (f"{what} is registered twice: by {self.winner} and by {self.loser}; {self.winner} keeps it "
                f"({self.reason}) and {self.loser}'s registration is skipped; pass override=True to replace "
                "it on purpose")


def _check_conforms(kind: str, name: str, obj: Any, origin: str) -> None:
    if not callable(obj):
        raise PluginError(f"{origin} registered {kind[:-1]} {name!r} as {obj!r}, which is not callable")
    missing = [m for m in _REQUIRED_METHODS.get(kind, ()) if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(
            f"{origin} registered {kind[:-1]} {name!r} = {getattr(obj, '__name__', obj)!r}, "
            f"which does not conform: missing method(s) {', '.join(missing)}"
        )


def check_registration(kind: str, name: Any, obj: Any, origin: str) -> None:
    """Raise if ``name``/``obj`` can never be registered in table ``kind``."""
    if not isinstance(name, str) or not name or name.strip() != name:
        raise RegistryError(f"{origin}: {kind[:-1]} name must be a non-empty string, got {name!r}")
    _check_conforms(kind, name, obj, origin)


class Table:
    """Named components of one kind.

    Every registration of a name is kept as a candidate; :meth:`resolve` picks the active
    one the same way whatever the order the candidates arrived in: an ``override=True``
    candidate wins (two from different installed distributions make the name an error);
    otherwise Plait's own distributions keep their names, then the alphabetically first
    distribution, then the earliest in-process registration.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, list[Entry]] = {}
        self._active: dict[str, Entry] = {}
        self._ambiguous: dict[str, str] = {}
        self._sequence = 0

    # -- lookup ---------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        from .plugins import ensure_plugins_loaded  # noqa: PLC0415 - avoid an import cycle

        ensure_plugins_loaded()

    def _active_entry(self, name: str) -> Entry:
        self._ensure_loaded()
        entry = self._active.get(name)
        if entry is None:
            if name in self._ambiguous:
                raise RegistryError(f"{self.kind[:-1]} {name!r} is overridden (override=True) by both "
                                    f"{self._ambiguous[name]}; uninstall one of them")
            raise RegistryError(self._unknown_message(name))
        return entry

    def get(self, name: str) -> Any:
        """The object registered as ``name``; :class:`RegistryError` with close matches if unknown."""
        return self._active_entry(name).obj

    def origin(self, name: str) -> str:
        """Which plugin registered the active entry for ``name``."""
        return self._active_entry(name).origin

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style wildcard."""
        self._ensure_loaded()
        return sorted(n for n in self._active if fnmatch.fnmatchcase(n, pattern))

    def items(self) -> list[tuple[str, Any]]:
        return [(n, self._active[n].obj) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._active

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"<registry table {self.kind!r}: {len(self._active)} names>"

    # -- registration ---------------------------------------------------------------------
    def add_candidate(self, name: str, obj: Any, *, origin: str, override: bool = False,
                      rank: tuple[int, str, int] | None = None) -> None:
        """Record one registration without resolving (the plugin host resolves once all are in)."""
        stack = self._entries.setdefault(name, [])
        if any(e.obj is obj and e.origin == origin and e.override == override for e in stack):
            return  # the same registration again: harmless
        if rank is None:
            self._sequence += 1
            rank = (2, "", self._sequence)
        stack.append(Entry(obj, origin, bool(override), rank))

    def register(self, name: str, obj: Any, *, origin: str = "<unknown>", override: bool = False) -> Any:
        """Add ``obj`` under ``name`` now (in-process, e.g. from a script).

        A name already taken is an error naming both origins unless ``override=True``.
        """
        check_registration(self.kind, name, obj, origin)
        self._ensure_loaded()  # a clash with an installed plugin shows now, not at the first lookup
        self.add_candidate(name, obj, origin=origin, override=override)
        lost = [c for c in self.resolve(name) if c.loser == origin or c.winner is None]
        if lost:
            self._entries[name] = [e for e in self._entries[name] if not (e.obj is obj and e.origin == origin)]
            self.resolve(name)
            raise RegistryError(lost[0].message())
        return obj

    def resolve(self, name: str | None = None) -> list[Collision]:
        """Pick the active entry of ``name`` (or of every name); returns the collisions."""
        names = list(self._entries) if name is None else [name]
        collisions: list[Collision] = []
        for n in names:
            collisions.extend(self._resolve_one(n))
        return collisions

    def _resolve_one(self, name: str) -> list[Collision]:
        self._active.pop(name, None)
        self._ambiguous.pop(name, None)
        stack = self._entries.get(name)
        if not stack:
            self._entries.pop(name, None)
            return []
        overrides = [e for e in stack if e.override]
        in_process = [e for e in overrides if e.rank[0] == 2]
        if in_process:  # an application replacing a name at run time: the latest one wins
            winner, reason = max(in_process, key=lambda e: e.rank), ""
        elif len({e.origin for e in overrides}) > 1:
            both = sorted({e.origin for e in overrides})
            self._ambiguous[name] = " and ".join(both)
            return [Collision(self.kind, name, None, o, " and ".join(both)) for o in both]
        elif overrides:
            winner, reason = overrides[0], ""
        else:
            winner = min(stack, key=lambda e: e.rank)
            reason = {0: "Plait's own distributions keep their names",
                      1: "between distributions the alphabetically first keeps a name",
                      2: "the first registration keeps a name"}[winner.rank[0]]
        self._active[name] = winner
        if winner.override:  # replaced on purpose: nothing to report
            return []
        return [Collision(self.kind, name, winner.origin, e.origin, reason)
                for e in stack if e is not winner and not (e.obj is winner.obj and not e.override)]

    def remove_origin(self, origin: str) -> list[str]:
        """Drop every entry ``origin`` registered (restoring what it overrode)."""
        removed = []
        for name, stack in list(self._entries.items()):
            kept = [e for e in stack if e.origin != origin]
            if len(kept) != len(stack):
                removed.append(name)
                self._entries[name] = kept
                self._resolve_one(name)
        return removed

    def conflicts(self) -> dict[str, str]:
        """``{name: "A and B"}`` of names two distributions override (unusable until one goes)."""
        self._ensure_loaded()
        return dict(self._ambiguous)

    def origins(self) -> dict[str, str]:
        """``{name: origin}`` of every active entry (no plugin loading)."""
        return {n: e.origin for n, e in self._active.items()}

    def find(self, obj: Any) -> str | None:
        """The active name under which ``obj`` is registered, if any."""
        for name, entry in self._active.items():
            if entry.obj is obj:
                return name
        return None

    def _unknown_message(self, name: str) -> str:
        known = sorted(self._active)
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


def _what(kind: str, name: str, args: tuple[Any, ...], options: dict[str, Any]) -> str:
    """``layer 'linear' from [4] {'bias': False}`` for an error message (only built on failure)."""
    shown = f"{list(args)!r} {options!r}" if args else repr(options)
    return f"{kind[:-1]} {name!r} from {shown}"


class UnresolvedNameError(RegistryError, ConfigError):
    """A config names a component no table resolves: a lookup error and a config error at once."""


class Registry:
    """All tables, plus :meth:`build`, which constructs any component by name or config."""

    def __init__(self) -> None:
        self._tables = {kind: Table(kind) for kind in KINDS}

    def __getattr__(self, kind: str) -> Table:
        try:
            return self.__dict__["_tables"][kind]
        except KeyError:
            raise AttributeError(f"registry has no table {kind!r}; tables: {', '.join(KINDS)}") from None

    def table(self, kind: str) -> Table:
        """The table of one kind (``registry.table("layers")`` is ``registry.layers``).

        Args:
            kind: one of the registry's kinds (``"layers"``, ``"optimizers"``, ...).

        Raises:
            RegistryError: an unknown kind.
        """
        if kind not in self._tables:
            raise RegistryError(f"unknown registry kind {kind!r}; kinds: {', '.join(KINDS)}")
        return self._tables[kind]

    def tables(self) -> Mapping[str, Table]:
        return dict(self._tables)

    def name_of(self, obj: Any) -> tuple[str, str] | None:
        """``(kind, name)`` under which ``obj`` (usually a class) is registered, or None.

        Args:
            obj: the object looked for (by identity); plugins are loaded first.
        """
        from .plugins import ensure_plugins_loaded  # noqa: PLC0415

        ensure_plugins_loaded()
        for kind, table in self._tables.items():
            name = table.find(obj)
            if name is not None:
                return kind, name
        return None

    def build(self, spec: str | Mapping[str, Any], kind: str = "layers", *, args: tuple[Any, ...] = (),
              where: str = "registry.build", **kwargs: Any) -> Any:
        """Construct a component by name: the one build-by-name helper of every package.

        Args:
            spec: a registered name (``"relu"``) or a config ``{"type": name, **options}``.
                Nested dicts that carry a ``"type"`` key (also inside lists) are built first, in
                the same kind unless they name another with ``"kind"``.
            kind: default ``"layers"``; the registry table (``"layers"``, ``"optimizers"``, ...);
                a config's own ``"kind"`` key wins.
            args: default ``()``; positional constructor arguments, put before the options
                (sizes the caller knows, such as a norm's feature count).
            where: default ``"registry.build"``; who asks (``"mlp activation"``); it starts
                every error message.
            **kwargs: options added on top of the spec's (they win over the spec's own).

        Returns:
            The constructed object.

        Raises:
            ConfigError: ``spec`` is neither a name nor a config, or the constructor refuses the
                arguments; :class:`UnresolvedNameError` (a ``ConfigError`` and a ``RegistryError``):
                the name is unknown, with close matches.
        """
        if isinstance(spec, str):
            name, options = spec, {}
        elif isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
            name, options = spec["type"], {k: v for k, v in spec.items() if k not in ("type", "kind")}
            kind = spec.get("kind", kind)
        else:
            raise ConfigError(f"{where}: a {kind[:-1]} must be a registered name or a config; registry.build "
                              f"expects a dict with a 'type' key (a string) or a name, got {spec!r}")
        try:
            factory: Callable[..., Any] = self.table(kind).get(name)
        except RegistryError as exc:
            raise UnresolvedNameError(f"{where}: {exc}") from None
        try:
            options = {k: self._build_nested(v, kind, where) for k, v in options.items()}
        except RecursionError:
            raise ConfigError(f"{where}: the config of {kind[:-1]} {name!r} is nested too deeply") from None
        options.update(kwargs)
        try:
            return factory(*args, **options)
        except TypeError as exc:
            raise ConfigError(f"{where}: cannot build {_what(kind, name, args, options)}: {exc}") from exc
        except PlaitError:
            raise
        except (ValueError, OverflowError, MemoryError) as exc:  # e.g. int("abc"), a size too large to allocate
            raise ConfigError(f"{where}: cannot build {_what(kind, name, args, options)}: "
                              f"{type(exc).__name__}: {exc}") from exc

    def _build_nested(self, value: Any, kind: str, where: str) -> Any:
        if isinstance(value, Mapping) and "type" in value:
            return self.build(value, kind, where=where)
        if isinstance(value, list):
            return [self._build_nested(v, kind, where) for v in value]
        return value


registry = Registry()
