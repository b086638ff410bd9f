"""Loading plugins: pluggy over the entry-point group ``plait``.

* Entry points load lazily, once, on the first registry lookup.
* Registration is order-independent: all hooks run first, then every contested name is
  resolved at once (Plait's own distributions, then the alphabetically first; an
  ``override=True`` wins whatever the order; two overrides of a name are an error).
* A plugin that fails to import (any exception, also ``SystemExit`` or another
  ``BaseException``; not ``KeyboardInterrupt``), raises inside a hook, registers a taken
  name or a non-conforming object, or declares a hook that matches no hookspec is reported with a :class:`PluginWarning` naming its
  distribution; everything else keeps working. ``PLAIT_STRICT_PLUGINS=1`` raises
  :class:`PluginError` instead. ``PLAIT_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry
  point (core's own plugin is always there).
* Tests and applications can add plugin objects in-process with
  :func:`register_plugin` and take them out again with :func:`unregister_plugin`.
"""

from __future__ import annotations

import difflib
import inspect
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from .errors import PlaitError, PluginError
from .hookspecs import PlaitHookSpecs, hookimpl, hookspec
from .registry import KINDS, check_registration, install_hint, origin_rank, registry

__all__ = [
    "PluginRecord",
    "PluginWarning",
    "ensure_plugins_loaded",
    "hookimpl",
    "hookspec",
    "plugin_host",
    "register_plugin",
    "unregister_plugin",
]

ENTRY_POINT_GROUP = "plait"


class PluginWarning(UserWarning):
    """A plugin failed; the rest of Plait keeps working."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclass
class PluginRecord:
    """What one plugin is and what it contributed."""

    name: str
    distribution: str | None = None
    version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    pending: list[Any] = field(default_factory=list, repr=False)  # collected, not yet resolved
    sequence: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "registered": {k: sorted(v) for k, v in self.registered.items() if v},
            "errors": list(self.errors),
        }


@dataclass
class _Registration:
    kind: str
    name: str
    obj: Any
    override: bool


class PluginHost:
    """The pluggy manager plus the bookkeeping of what each plugin registered.

    Loading has two phases, so the result never depends on the order entry points are
    found in: every plugin's hooks run first and their registrations are only collected;
    then each table resolves every contested name at once (see
    :meth:`plait.core.registry.Table.resolve`). Problems are reported only after the
    registry is complete, so a report turned into an exception (``PYTHONWARNINGS=error``)
    leaves a working registry behind; an interrupt while loading leaves nothing loaded, and
    the next lookup loads again.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("plait")
        self.pm.add_hookspecs(PlaitHookSpecs)
        self._hook_names = {n for n in dir(PlaitHookSpecs) if n.startswith("register_")}
        self.records: dict[str, PluginRecord] = {}
        self._loaded = False
        self._loading = False
        self._failure: PluginError | None = None  # strict mode: the error every later lookup repeats
        self._sequence = 0  # in-process plugins keep contested names in registration order
        self._reported: set[tuple[str, str, str]] = set()
        self._pending: list[tuple[PluginRecord, str, BaseException | None]] = []

    # -- reporting ------------------------------------------------------------------
    def _note(self, record: PluginRecord, message: str, exc: BaseException | None = None) -> None:
        """Remember a problem of ``record``; :meth:`_flush_reports` reports it."""
        record.errors.append(message)
        self._pending.append((record, message, exc))

    def _flush_reports(self) -> None:
        pending, self._pending = self._pending, []
        for record, message, exc in pending:
            who = record.distribution or record.name
            if record.version:
                who = f"{who} {record.version}"
            text = f"plait plugin {record.name!r} (distribution {who}): {message}"
            if _env_flag("PLAIT_STRICT_PLUGINS"):
                raise PluginError(text) from exc
            warnings.warn(text, PluginWarning, stacklevel=4)

    # -- loading --------------------------------------------------------------------
    def ensure_loaded(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            from . import _builtin_plugin  # noqa: PLC0415

            records = [self._collect(_builtin_plugin, self._new_record("plait-core", "plait-core"))]
            if not _env_flag("PLAIT_DISABLE_PLUGIN_AUTOLOAD"):
                records += self._load_entry_points()
            self._commit([r for r in records if r is not None])
            self._loaded = True
        except BaseException:  # an interrupt (or a bug) while loading: forget all, load again next time
            self._rollback()
            raise
        finally:
            self._loading = False
        try:
            self._flush_reports()
        except PluginError as exc:  # strict mode: fail the same way on every lookup
            self._failure = exc
            raise

    def _rollback(self) -> None:
        for record in self.records.values():
            origin = record.distribution or record.name
            for kind in KINDS:
                registry.table(kind).remove_origin(origin)
        self.pm = pluggy.PluginManager("plait")
        self.pm.add_hookspecs(PlaitHookSpecs)
        self.records.clear()
        self._pending.clear()
        self._reported.clear()

    def _load_entry_points(self) -> list[PluginRecord | None]:
        seen: set[tuple[str, str]] = set()
        out: list[PluginRecord | None] = []
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (ep.name, ep.value) in seen or ep.name in self.records:
                continue
            seen.add((ep.name, ep.value))
            dist = getattr(ep, "dist", None)
            record = PluginRecord(
                name=ep.name,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
            self.records[ep.name] = record
            try:
                plugin = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - sys.exit() or any BaseException in a plugin must not end Plait
                self._note(record, f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}", exc)
                continue
            out.append(self._collect(plugin, record))
        return out

    def _new_record(self, name: str, distribution: str | None) -> PluginRecord:
        version = None
        if distribution:
            try:
                version = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                version = None
        return PluginRecord(name=name, distribution=distribution, version=version)

    def add(self, plugin: Any, name: str | None = None, distribution: str | None = None) -> str:
        """Register ``plugin`` with pluggy, run its hooks and resolve its registrations now."""
        name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
        if name in self.records and self.records[name].registered:
            raise PluginError(f"a plugin named {name!r} is already registered")
        record = self._collect(plugin, self._new_record(name, distribution))
        if record is not None:
            self._commit([record])
        self._flush_reports()
        return name

    def _collect(self, plugin: Any, record: PluginRecord) -> PluginRecord | None:
        """Run ``plugin``'s registration hooks, keeping what they register in ``record``."""
        self.records[record.name] = record
        try:
            self.pm.register(plugin, name=record.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - pluggy validation: bad hook signatures, ...
            self._note(record, f"rejected by the plugin manager: {type(exc).__name__}: {exc}", exc)
            return None
        self._check_hook_names(plugin, record)
        self._sequence += 1
        record.sequence = self._sequence
        origin = record.distribution or record.name
        for kind in KINDS:

            def register(name: str, obj: Any, *, override: bool = False, _kind: str = kind) -> Any:
                try:  # a bad registration skips that name only, never the rest of the hook
                    check_registration(_kind, name, obj, origin)
                except PlaitError as exc:
                    self._note(record, f"register_{_kind} failed: {exc}", exc)
                else:
                    record.pending.append(_Registration(_kind, name, obj, bool(override)))
                return obj

            self._call_impls(plugin, record, f"register_{kind}", register)
        return record

    def _check_hook_names(self, plugin: Any, record: PluginRecord) -> None:
        """Hooks that would never run: a ``@hookimpl`` whose name is no hookspec
        (``register_optimisers``), or a module's own ``register_*`` function without ``@hookimpl``."""
        for caller in self.pm.get_hookcallers(plugin) or []:
            if not caller.has_spec():
                self._note(record, f"hook {caller.name!r} matches no Plait hookspec and is never called"
                                   f"{self._did_you_mean(caller.name)}")
        if not inspect.ismodule(plugin):
            return
        for name, obj in vars(plugin).items():
            if (name.startswith("register_") and inspect.isfunction(obj) and obj.__module__ == plugin.__name__
                    and not hasattr(obj, "plait_impl")):
                why = ("is not marked @hookimpl" if name in self._hook_names
                       else f"matches no Plait hookspec and is not marked @hookimpl{self._did_you_mean(name)}")
                self._note(record, f"function {name!r} {why}, so it is never called")

    def _did_you_mean(self, name: str) -> str:
        close = difflib.get_close_matches(name, sorted(self._hook_names), n=1, cutoff=0.6)
        return f"; did you mean {close[0]!r}?" if close else f"; hooks: {', '.join(sorted(self._hook_names))}"

    def _commit(self, records: list[PluginRecord]) -> None:
        """Put the collected registrations into the tables, then resolve every name once."""
        for record in records:
            origin = record.distribution or record.name
            rank = origin_rank(record.distribution, record.sequence)
            for reg in record.pending:
                registry.table(reg.kind).add_candidate(reg.name, reg.obj, origin=origin, override=reg.override,
                                                       rank=rank)
            record.pending = []
        by_origin = {r.distribution or r.name: r for r in self.records.values()}
        for kind in KINDS:
            table = registry.table(kind)
            for collision in table.resolve():
                key = (kind, collision.name, collision.loser)
                loser = by_origin.get(collision.loser)
                if key in self._reported or loser is None:
                    continue
                self._reported.add(key)
                self._note(loser, collision.message())
        self._refresh_registered()

    def _refresh_registered(self) -> None:
        for record in self.records.values():
            record.registered = {}
        by_origin: dict[str, list[PluginRecord]] = {}
        for record in self.records.values():
            by_origin.setdefault(record.distribution or record.name, []).append(record)
        for kind in KINDS:
            for name, origin in registry.table(kind).origins().items():
                for record in by_origin.get(origin, [])[:1]:
                    record.registered.setdefault(kind, []).append(name)

    def _call_impls(self, plugin: Any, record: PluginRecord, hook_name: str, argument: Any) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                impl.function(*[argument for _ in impl.argnames])
            except KeyboardInterrupt:
                raise
            except PlaitError as exc:
                self._note(record, f"{hook_name} failed: {exc}", exc)
            except BaseException as exc:  # noqa: BLE001 - SystemExit and other BaseExceptions are plugin faults too
                self._note(record, f"{hook_name} raised {type(exc).__name__}: {exc}", exc)

    def remove(self, name: str) -> None:
        """Unregister plugin ``name`` and everything it registered."""
        record = self.records.pop(name, None)
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        if record is not None:
            origin = record.distribution or record.name
            for kind in KINDS:
                registry.table(kind).remove_origin(origin)
            self._reported = {k for k in self._reported if k[2] != origin}
            self._refresh_registered()

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add its ``plait`` subcommands."""
        self.ensure_loaded()
        for name, record in list(self.records.items()):
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                self._call_impls(plugin, record, "register_commands", cli)
        self._flush_reports()

    def hint_for_unknown(self, kind: str) -> str:
        from .registry import _FIRST_PARTY  # noqa: PLC0415

        failed = [r for r in self.records.values() if r.errors]
        parts = []
        if failed:
            parts.append(
                "plugins that failed to load: "
                + ", ".join(f"{r.name} ({r.distribution or '?'})" for r in failed)
            )
        if _env_flag("PLAIT_DISABLE_PLUGIN_AUTOLOAD"):
            parts.append("PLAIT_DISABLE_PLUGIN_AUTOLOAD is set, so no installed plugin was loaded")
        provider = _FIRST_PARTY.get(kind)
        if provider and not any(r.distribution == provider for r in self.records.values()):
            parts.append(f"{kind} are provided by the distribution {provider}, which is not loaded "
                         f"({install_hint(provider)})")
        return "; ".join(parts)


_host: PluginHost | None = None


def plugin_host() -> PluginHost:
    """The process-wide plugin host (created on first use)."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host


def ensure_plugins_loaded() -> None:
    """Load core's plugin and every ``plait`` entry point, once."""
    plugin_host().ensure_loaded()


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Add a plugin object in-process (after the installed ones); returns its name."""
    host = plugin_host()
    host.ensure_loaded()
    return host.add(plugin, name=name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin added with :func:`register_plugin` and all it registered."""
    plugin_host().remove(name)
