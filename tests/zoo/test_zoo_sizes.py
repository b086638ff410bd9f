"""Every zoo architecture refuses absurd or non-integer sizes before it builds anything.

Driven from the registry: for each first-party architecture, every argument whose default
is an integer (not a bool) is tried as a float, a string, a bool and an absurd size; each
must be a ConfigError naming the argument (or, for the absurd size, the parameter budget)
at once, never a loop that builds blocks for hours or an allocation that fills the memory.
"""

from __future__ import annotations

import inspect
import time

import pytest

import plait.zoo as zoo
from plait.core import ConfigError, registry
from plait.zoo.catalog import Preset

FIRST_PARTY = ("plait-zoo",)


def _architectures() -> list[str]:
    return sorted(n for n in registry.models.names()
                  if registry.models.origin(n) in FIRST_PARTY and not isinstance(registry.models.get(n), Preset))


def _int_arguments(name: str) -> list[str]:
    factory = registry.models.get(name)
    target = factory.__init__ if isinstance(factory, type) else factory
    return [p.name for p in inspect.signature(target).parameters.values()
            if isinstance(p.default, int) and not isinstance(p.default, bool)]


def _list_arguments(name: str) -> list[tuple[str, list[int]]]:
    factory = registry.models.get(name)
    target = factory.__init__ if isinstance(factory, type) else factory
    return [(p.name, list(p.default)) for p in inspect.signature(target).parameters.values()
            if isinstance(p.default, (list, tuple)) and p.default
            and all(isinstance(v, int) and not isinstance(v, bool) for v in p.default)]


CASES = [(name, arg) for name in _architectures() for arg in _int_arguments(name)]
LIST_CASES = [(name, arg, default) for name in _architectures() for arg, default in _list_arguments(name)]


def test_there_are_cases():
    assert {"gpt", "cnn", "resnet", "rnn_lm", "rnn_classifier", "transformer"} <= {name for name, _ in CASES}
    assert {"mlp", "cnn", "resnet"} <= {name for name, _, _ in LIST_CASES}


@pytest.mark.parametrize(("name", "arg", "default"), LIST_CASES)
@pytest.mark.parametrize("bad", [2.5, "4", True])
def test_an_entry_of_a_size_list_that_is_not_an_integer_is_refused_naming_it(name, arg, default, bad):
    with pytest.raises(ConfigError, match=rf"{arg}\[1\]|{arg}"):
        zoo.create(name, **{arg: [default[0], bad, *default[2:]]})


@pytest.mark.parametrize(("name", "arg"), CASES)
@pytest.mark.parametrize("bad", [2.5, "4", True])
def test_a_size_that_is_not_an_integer_is_refused_naming_it(name, arg, bad):
    with pytest.raises(ConfigError, match=arg):
        zoo.create(name, **{arg: bad})


@pytest.mark.parametrize(("name", "arg"), CASES)
def test_an_absurd_size_is_refused_before_allocating(name, arg):
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"{arg}|PLAIT_MAX_PARAMETERS|must be|at most|cannot"):
        zoo.create(name, **{arg: 10**12})
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(("name", "arg", "value"), [
    ("gpt", "num_layers", 10**9), ("rnn_lm", "num_layers", 10**15), ("resnet", "blocks", [10**8, 1, 1]),
    ("mlp", "sizes", [784, *[100] * 100_000, 10]), ("cnn", "channels", [6] * 1_000_000),
])
def test_the_reported_configs_are_refused_at_once(name, arg, value):
    start = time.perf_counter()
    with pytest.raises(ConfigError):
        zoo.create(name, **{arg: value})
    assert time.perf_counter() - start < 5.0


def test_the_limit_follows_plait_max_parameters(monkeypatch):
    monkeypatch.setenv("PLAIT_MAX_PARAMETERS", "1000")
    with pytest.raises(ConfigError, match="PLAIT_MAX_PARAMETERS"):
        zoo.create("mlp", sizes=[100, 100, 10])
    monkeypatch.setenv("PLAIT_MAX_PARAMETERS", str(10**6))
    assert zoo.create("mlp", sizes=[100, 100, 10]).num_parameters() == 100 * 100 + 100 + 100 * 10 + 10
