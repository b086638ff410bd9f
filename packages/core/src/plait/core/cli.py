"""The ``plait`` console script. Subcommands come from plugins' ``register_commands`` hook."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["CLI", "main"]


class CLI:
    """What ``register_commands(cli)`` receives: ``cli.command(name, help) -> ArgumentParser``.

    Set the handler with ``parser.set_defaults(handler=fn)``; ``fn(args) -> int | None``.
    """

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser(prog="plait", description="Plait command line")
        self._sub = self.parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(self, name: str, help: str = "", **kwargs: Any) -> argparse.ArgumentParser:  # noqa: A002
        return self._sub.add_parser(name, help=help, description=help, **kwargs)

    def group(self, name: str, help: str = "") -> Callable[[str, str], argparse.ArgumentParser]:  # noqa: A002
        """A command with sub-subcommands (``plait tokenizer train``): returns ``add(name, help)``."""
        parser = self.command(name, help)
        sub = parser.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)
        return lambda sub_name, sub_help="": sub.add_parser(sub_name, help=sub_help, description=sub_help)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import plugin_host  # noqa: PLC0415

    host = plugin_host()
    host.ensure_loaded()
    print(json.dumps([r.as_dict() for r in host.records.values()], indent=2))
    return 0


def _cmd_registry(args: argparse.Namespace) -> int:
    from .registry import KINDS, registry  # noqa: PLC0415

    kinds = [args.kind] if args.kind else list(KINDS)
    out = {}
    for kind in kinds:
        table = registry.table(kind)
        out[kind] = {name: table.origin(name) for name in table.names()}
    print(json.dumps(out, indent=2))
    return 0


def add_core_commands(cli: CLI) -> None:
    cli.command("plugins", "list plugin distributions, versions and what each registered (JSON)").set_defaults(
        handler=_cmd_plugins
    )
    p = cli.command("registry", "list registered names per kind with their origin (JSON)")
    p.add_argument("kind", nargs="?", help="one table: layers, losses, optimizers, ...")
    p.set_defaults(handler=_cmd_registry)


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import PlaitError  # noqa: PLC0415
    from .plugins import plugin_host  # noqa: PLC0415

    cli = CLI()
    plugin_host().add_commands(cli)
    args = cli.parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        cli.parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except PlaitError as exc:
        print(f"plait {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
