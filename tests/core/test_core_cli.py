"""The ``plait`` command itself: tables and JSON, pipes, --version, missing pieces, errors, help."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from plait.core import ConfigError
from plait.core.cli import CLI, main, parse_ids
from plait.core.plugins import plugin_host


def _plait(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", "import sys; from plait.core.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, env=full, timeout=120)


def test_plugins_prints_a_table_by_default_and_json_on_request(capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["distribution", "version", "plugin", "registered"]
    core = next(line for line in lines if line.startswith("plait-core"))
    assert core.split()[:5] == ["plait-core", "0.1.0", "plait-core", "11", "initializers"]
    layers = next(line for line in lines if line.startswith("plait-layers"))
    assert "layers, " in layers and "losses" in layers and layers.rstrip().endswith("-")  # no problems
    assert [line.split()[0] for line in lines[1:]] == sorted(line.split()[0] for line in lines[1:])
    assert main(["plugins", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {"plait-core", "plait-layers", "plait-zoo"} <= {r["distribution"] for r in records}


def test_registry_prints_a_table_by_default_and_json_on_request(capsys):
    assert main(["registry", "losses"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["kind", "name", "origin"]
    assert ["losses", "sequence_cross_entropy", "plait-layers"] in [line.split() for line in lines]
    assert main(["registry", "losses", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["losses"]["cross_entropy"] == "plait-layers"
    with pytest.raises(SystemExit):
        main(["registry", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["registry"], ["plugins"], ["registry", "--json"], ["--version"], ["models"],
                                  ["--help"]])
@pytest.mark.parametrize("reader", ["head", "closed"])
def test_no_broken_pipe_traceback_when_the_reader_stops_early(argv, reader):
    """plait registry | head -1: the reader goes away; plait ends quietly (no BrokenPipeError)."""
    code = "import sys; from plait.core.cli import main; sys.exit(main())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    producer = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
    if reader == "head":
        head = subprocess.run(["head", "-c", "1"], stdin=producer.stdout, capture_output=True, timeout=120)
        assert head.stdout  # the reader got something
    producer.stdout.close()  # "closed": gone before plait writes a byte, so its write fails with EPIPE
    err = producer.stderr.read().decode()
    producer.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_the_broken_pipe_check_can_fail():
    """Without plait's handling, the same closed pipe gives Python's BrokenPipeError report."""
    code = "import time; time.sleep(0.5); print('x' * 100000)"
    producer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    producer.stdout.close()
    err = producer.stderr.read().decode()
    producer.wait(timeout=60)
    assert "BrokenPipeError" in err


def test_version_lists_every_installed_plait_distribution():
    out = _plait("--version")
    assert out.returncode == 0, out.stderr
    names = {line.split()[0] for line in out.stdout.splitlines()[1:]}
    assert {"plait-core", "plait-layers", "plait-optim", "plait-tokenizers", "plait-train", "plait-zoo"} <= names
    assert "plait-example-plugin" in names  # third-party plugins too


def test_a_command_whose_distribution_is_missing_names_it():
    out = _plait("train", "char-lstm", "--data", "x.txt", PLAIT_DISABLE_PLUGIN_AUTOLOAD="1")
    assert out.returncode == 2
    assert "'plait train' is provided by the distribution plait-train, which is not installed" in out.stderr
    assert "pip install plait-train; from a checkout: pip install ./packages/train" in out.stderr
    out = _plait("generate", "folder", PLAIT_DISABLE_PLUGIN_AUTOLOAD="1")
    assert "provided by the distribution plait-zoo" in out.stderr


def test_errors_are_printed_once(capsys):
    assert main(["models", "zz-no-such*"]) == 1
    err = capsys.readouterr().err
    assert err.count("error") == 1 and err.startswith("plait models: error: ")
    from plait.core.cli import _strip_prefix

    assert _strip_prefix("plait train: --epochs 0 is out of range", "train") == "--epochs 0 is out of range"


def _all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    cli = CLI()
    plugin_host().add_commands(cli)
    out = [("plait", cli.parser)]
    stack = list(out)
    while stack:
        name, parser = stack.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    out.append((f"{name} {sub_name}", sub))
                    stack.append((f"{name} {sub_name}", sub))
    return out


def test_every_option_has_help_and_shows_its_default():
    parsers = _all_parsers()
    assert {"plait train", "plait generate", "plait models", "plait tokenizer train", "plait registry"} <= {
        n for n, _ in parsers}
    for name, parser in parsers:
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
            shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
            if shown:
                text = parser._get_formatter()._get_help_string(action)
                assert "%(default)s" in text or str(action.default) in text, (
                    f"{name} {action.option_strings}: default {action.default!r} not shown")


def test_out_is_spelled_the_same_everywhere():
    for name, parser in _all_parsers():
        for action in parser._actions:
            if action.dest in ("out", "output"):
                assert action.dest == "out" and "-o" in action.option_strings and "--out" in action.option_strings, name


def test_id_lists_read_in_every_usual_spelling():
    assert parse_ids("1 2 3") == parse_ids("1,2,3") == parse_ids("[1, 2, 3]") == parse_ids(" 1, 2 ,3 ") == [1, 2, 3]
    with pytest.raises(ConfigError, match="'x' is not an integer token id"):
        parse_ids("1 x")
