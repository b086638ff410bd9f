"""Loading plugins: pluggy over the entry-point group ``plait``.

* Entry points load lazily, once, on the first registry lookup.
* A plugin that fails to import, raises inside a hook, registers a taken name or a
  non-conforming object is reported with a :class:`PluginWarning` naming its
  distribution; everything else keeps working. ``PLAIT_STRICT_PLUGINS=1`` raises
  :class:`PluginError` instead. ``PLAIT_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry
  point (core's own plugin is always there).
* Tests and applications can add plugin objects in-process with
  :func:`register_plugin` and take them out again with :func:`unregister_plugin`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from .errors import PlaitError, PluginError
from .hookspecs import PlaitHookSpecs, hookimpl, hookspec
from .registry import KINDS, registry

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

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "registered": {k: sorted(v) for k, v in self.registered.items() if v},
            "errors": list(self.errors),
        }


class PluginHost:
    """The pluggy manager plus the bookkeeping of what each plugin registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("plait")
        self.pm.add_hookspecs(PlaitHookSpecs)
        self.records: dict[str, PluginRecord] = {}
        self._loaded = False
        self._loading = False
        self._failure: PluginError | None = None  # strict mode: the error every later lookup repeats

    # -- reporting ------------------------------------------------------------------
    def _report(self, record: PluginRecord, message: str, exc: BaseException | None = None) -> None:
        who = record.distribution or record.name
        if record.version:
            who = f"{who} {record.version}"
        text = f"plait plugin {record.name!r} (distribution {who}): {message}"
        record.errors.append(message)
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

            self.add(_builtin_plugin, name="plait-core", distribution="plait-core")
            if not _env_flag("PLAIT_DISABLE_PLUGIN_AUTOLOAD"):
                self._load_entry_points()
            self._loaded = True
        except PluginError as exc:  # strict mode: fail the same way on every lookup
            self._failure = exc
            raise
        finally:
            self._loading = False

    def _load_entry_points(self) -> None:
        seen: set[tuple[str, str]] = set()
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
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the program
                self.records[ep.name] = record
                self._report(record, f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}", exc)
                continue
            self._add_record(plugin, record)

    def add(self, plugin: Any, name: str | None = None, distribution: str | None = None) -> str:
        """Register ``plugin`` with pluggy and run its hooks now."""
        name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
        version = None
        if distribution:
            try:
                version = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                version = None
        return self._add_record(plugin, PluginRecord(name=name, distribution=distribution, version=version))

    def _add_record(self, plugin: Any, record: PluginRecord) -> str:
        if record.name in self.records and self.records[record.name].registered:
            raise PluginError(f"a plugin named {record.name!r} is already registered")
        self.records[record.name] = record
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:  # pluggy validation: bad hook signatures, ...
            self._report(record, f"rejected by the plugin manager: {type(exc).__name__}: {exc}", exc)
            return record.name
        self._run_hooks(plugin, record)
        return record.name

    def _run_hooks(self, plugin: Any, record: PluginRecord) -> None:
        for kind in KINDS:
            table = registry.table(kind)

            def register(name: str, obj: Any, *, override: bool = False, _kind: str = kind, _table=table) -> Any:
                _table.register(name, obj, origin=record.distribution or record.name, override=override)
                record.registered.setdefault(_kind, []).append(name)
                return obj

            self._call_impls(plugin, record, f"register_{kind}", register)

    def _call_impls(self, plugin: Any, record: PluginRecord, hook_name: str, argument: Any) -> None:
        caller = getattr(self.pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                impl.function(*[argument for _ in impl.argnames])
            except PlaitError as exc:
                if isinstance(exc, PluginError) and _env_flag("PLAIT_STRICT_PLUGINS"):
                    raise
                self._report(record, f"{hook_name} failed: {exc}", exc)
            except (Exception, SystemExit) as exc:
                self._report(record, f"{hook_name} raised {type(exc).__name__}: {exc}", exc)

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

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add its ``plait`` subcommands."""
        self.ensure_loaded()
        for name, record in list(self.records.items()):
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                self._call_impls(plugin, record, "register_commands", cli)

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
            parts.append(f"{kind} are provided by the distribution {provider}, which is not loaded")
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
