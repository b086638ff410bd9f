"""The ``plait`` console script. Subcommands come from plugins' ``register_commands`` hook.

Conventions every subcommand follows (plugins get them from :class:`CLI`): help text and
the default shown for every option, ``-o/--out`` for what a command writes, token ids
written space-separated and read space- or comma-separated (:func:`parse_ids`), errors
printed once as ``plait COMMAND: error: ...`` with exit status 1, and no traceback when
the output pipe closes early (``plait registry | head``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["CLI", "format_ids", "main", "parse_ids", "print_table"]

# Which distribution provides the first-party subcommands: named when one is missing.
COMMAND_PROVIDERS: dict[str, str] = {
    "models": "plait-zoo",
    "generate": "plait-zoo",
    "train": "plait-train",
    "tokenizer": "plait-tokenizers",
}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default (not for flags whose default is None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


class CLI:
    """What ``register_commands(cli)`` receives: ``cli.command(name, help) -> ArgumentParser``.

    Set the handler with ``parser.set_defaults(handler=fn)``; ``fn(args) -> int | None``.
    A :class:`~plait.core.errors.PlaitError` raised by a handler is printed once as
    ``plait NAME: error: message`` (exit status 1).
    """

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser(prog="plait", description="Plait command line",
                                              formatter_class=_Formatter)
        self.parser.add_argument("--version", action=_VersionAction, help="list the installed plait distributions")
        self._sub = self.parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(self, name: str, help: str = "", **kwargs: Any) -> argparse.ArgumentParser:  # noqa: A002
        kwargs.setdefault("formatter_class", _Formatter)
        return self._sub.add_parser(name, help=help, description=help, **kwargs)

    def group(self, name: str, help: str = "") -> Callable[[str, str], argparse.ArgumentParser]:  # noqa: A002
        """A command with sub-subcommands (``plait tokenizer train``): returns ``add(name, help)``."""
        parser = self.command(name, help)
        sub = parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)
        return lambda sub_name, sub_help="": sub.add_parser(sub_name, help=sub_help, description=sub_help,
                                                            formatter_class=_Formatter)

    def commands(self) -> list[str]:
        return sorted(self._sub.choices)


def installed_distributions() -> list[tuple[str, str]]:
    """``(name, version)`` of every installed distribution that is Plait's or plugs into it."""
    from importlib import metadata  # noqa: PLC0415

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("plait-") or any(ep.group == "plait" for ep in dist.entry_points):
            found.setdefault(name, dist.version)
    return sorted(found.items())


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:  # noqa: A002
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print_table([list(d) for d in installed_distributions()], ["distribution", "version"])
        parser.exit()


# -- shared helpers ---------------------------------------------------------------------
def print_table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> None:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]) - 1)]
    for row in cells:
        print("  ".join([c.ljust(w) for c, w in zip(row, widths)] + row[len(widths):]).rstrip())


def parse_ids(text: str, what: str = "ids") -> list[int]:
    """Token ids written ``1 2 3``, ``1,2,3`` or ``[1, 2, 3]``; ConfigError naming the bad one."""
    from .errors import ConfigError  # noqa: PLC0415

    out = []
    for word in text.strip().lstrip("[").rstrip("]").replace(",", " ").split():
        try:
            out.append(int(word))
        except ValueError:
            raise ConfigError(f"{what}: {word!r} is not an integer token id (expected e.g. '1 2 3' or '1,2,3')") from None
    return out


def format_ids(ids: Sequence[int]) -> str:
    """Ids as :func:`parse_ids` reads them back: space-separated."""
    return " ".join(str(int(i)) for i in ids)


# -- core's own commands ----------------------------------------------------------------------
def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import plugin_host  # noqa: PLC0415

    host = plugin_host()
    host.ensure_loaded()
    records = [r.as_dict() for r in host.records.values()]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    rows = []
    for r in sorted(records, key=lambda r: (r["distribution"] or "", r["name"])):
        what = ", ".join(f"{len(names)} {kind}" for kind, names in r["registered"].items()) or "-"
        problems = f"{len(r['errors'])}: {r['errors'][0]}" if r["errors"] else "-"
        rows.append([r["distribution"] or "-", r["version"] or "-", r["name"], what, problems])
    print_table(rows, ["distribution", "version", "plugin", "registered (names: plait registry KIND)", "problems"])
    return 0


def _cmd_registry(args: argparse.Namespace) -> int:
    from .registry import KINDS, registry  # noqa: PLC0415

    kinds = [args.kind] if args.kind else list(KINDS)
    out = {}
    for kind in kinds:
        table = registry.table(kind)
        out[kind] = {name: table.origin(name) for name in table.names()}
        out[kind].update({name: f"CONFLICT: overridden by {both}" for name, both in table.conflicts().items()})
        out[kind] = dict(sorted(out[kind].items()))
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print_table([[kind, name, origin] for kind, names in out.items() for name, origin in names.items()],
                ["kind", "name", "origin"])
    return 0


def add_core_commands(cli: CLI) -> None:
    from .registry import KINDS  # noqa: PLC0415

    p = cli.command("plugins", "list plugin distributions, versions and what each registered")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_cmd_plugins)
    p = cli.command("registry", "list registered names per kind with the distribution that provides each")
    p.add_argument("kind", nargs="?", choices=KINDS, metavar="KIND", help=f"one table: {', '.join(KINDS)}")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_cmd_registry)


# -- entry point ----------------------------------------------------------------------------
def _first_word(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def _missing_command(cli: CLI, argv: Sequence[str]) -> str | None:
    from .registry import install_hint  # noqa: PLC0415

    word = _first_word(argv)
    provider = COMMAND_PROVIDERS.get(word or "")
    if provider is None or word in cli.commands():
        return None
    return (f"plait: 'plait {word}' is provided by the distribution {provider}, which is not installed "
            f"({install_hint(provider)})")


def _strip_prefix(message: str, command: str | None) -> str:
    """Errors are printed once: drop a 'plait CMD:' the message already starts with."""
    for prefix in (f"plait {command}: error: ", f"plait {command}: ", f"plait {command} "):
        if command and message.startswith(prefix):
            return message[len(prefix):]
    return message


def _run(argv: Sequence[str] | None) -> int:
    from .errors import PlaitError  # noqa: PLC0415
    from .plugins import plugin_host  # noqa: PLC0415

    argv = list(sys.argv[1:] if argv is None else argv)
    cli = CLI()
    plugin_host().add_commands(cli)
    missing = _missing_command(cli, argv)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    args = cli.parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        cli.parser.print_help()
        return 2
    name = " ".join(str(v) for v in (args.command, getattr(args, f"{args.command}_command", None)) if v)
    try:
        return int(handler(args) or 0)
    except PlaitError as exc:
        print(f"plait {name}: error: {_strip_prefix(str(exc), name)}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``plait`` command; returns its exit status."""
    try:
        code = _run(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader went away (plait registry | head): not an error of ours
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a real file (captured in tests)
            pass
        return 141 if argv is None else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
