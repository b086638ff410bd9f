"""Faulty plugin distributions: each is reported with a warning naming the distribution,
everything else keeps working, and ``PLAIT_STRICT_PLUGINS=1`` raises PluginError.

tests/core/test_core_registry.py covers one fault of each kind in lenient mode; this file
adds the installed-distribution path (fake entry points carrying a distribution and
version), strict mode for every fault, faults at import time other than a missing module
(SyntaxError, SystemExit), partial failures across hook kinds and repeated lookups.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from plait.core import Module, PluginError, hookimpl, registry
from plait.core import plugins as plugins_mod
from plait.core.plugins import PluginWarning
from plait.core.testing import isolated_plugins


class Good(Module):
    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class Other(Good):
    pass


class Custom(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt (e.g. gevent's GreenletExit)."""


class NoBackward:
    def forward(self, x):
        return x


class _Dist:
    def __init__(self, name: str) -> None:
        self.name, self.version = name, "6.6.6"


class FakeEntryPoint:
    """What importlib.metadata hands over for an installed distribution's entry point."""

    def __init__(self, name: str, load: Callable[[], Any], dist: str) -> None:
        self.name, self.value, self.group = name, f"{dist.replace('-', '_')}.plugin", "plait"
        self.dist = _Dist(dist)
        self._load = load

    def load(self) -> Any:
        return self._load()


def _module(**hooks: Callable[..., Any]) -> Any:
    class Plugin:
        pass

    for name, fn in hooks.items():
        setattr(Plugin, name, staticmethod(hookimpl(fn)))
    return Plugin()


def _raise(exc: BaseException) -> Callable[[], Any]:
    def load() -> Any:
        raise exc

    return load


def _healthy() -> Any:
    return _module(register_layers=lambda register: register("healthy_layer", Good))


FAULTS: dict[str, tuple[Callable[[], Any], str]] = {
    "import fails": (_raise(ModuleNotFoundError("No module named 'torch_tensorrt'")), r"failed to import .*ModuleNotFoundError"),
    "syntax error at import": (_raise(SyntaxError("invalid syntax")), r"failed to import .*SyntaxError"),
    "sys.exit at import": (_raise(SystemExit(3)), r"failed to import .*SystemExit"),
    "hook raises": (lambda: _module(register_layers=lambda register: 1 / 0), r"register_layers raised ZeroDivisionError"),
    "BaseException at import": (_raise(Custom("custom")), r"failed to import .*Custom: custom"),
    "BaseException in a hook": (lambda: _module(register_layers=lambda register: (_ for _ in ()).throw(Custom("c"))),
                                r"register_layers raised Custom: c"),
    "duplicate name": (lambda: _module(register_layers=lambda register: register("healthy_layer", Other)),
                       r"'healthy_layer' is registered twice: by healthy-dist and by plait-broken"),
    "hook name typo": (lambda: _module(register_optimisers=lambda register: None),
                       r"hook 'register_optimisers' matches no Plait hookspec.*did you mean 'register_optimizers'"),
    "missing backward": (lambda: _module(register_layers=lambda register: register("half", NoBackward)),
                         r"does not conform: missing method\(s\) backward"),
    "not callable": (lambda: _module(register_layers=lambda register: register("number", 42)), r"not callable"),
    "bad name": (lambda: _module(register_layers=lambda register: register(" spaced ", Good)), r"name must be"),
    "optimizer without step": (lambda: _module(register_optimizers=lambda register: register("lazy", NoBackward)),
                               r"missing method\(s\) step"),
}


def _entry_points(fault: str) -> list[FakeEntryPoint]:
    return [FakeEntryPoint("healthy", _healthy, "healthy-dist"),
            FakeEntryPoint("broken", FAULTS[fault][0], "plait-broken")]


@pytest.fixture
def fake_installed(monkeypatch):
    def install(fault: str) -> None:
        monkeypatch.setattr(plugins_mod.metadata, "entry_points", lambda group: _entry_points(fault))

    return install


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_warns_naming_the_distribution_and_the_rest_works(fake_installed, fault):
    fake_installed(fault)
    with pytest.warns(PluginWarning) as caught, isolated_plugins(autoload=True) as host:
        assert registry.layers.get("healthy_layer") is Good  # the healthy distribution is intact
        assert "zeros" in registry.initializers  # so is core
        assert host.records["broken"].errors
    text = " ".join(str(w.message) for w in caught)
    assert "plait-broken 6.6.6" in text
    assert re.search(FAULTS[fault][1], text), text


@pytest.mark.parametrize("fault", list(FAULTS))
def test_strict_mode_raises_and_keeps_raising(fake_installed, monkeypatch, fault):
    fake_installed(fault)
    monkeypatch.setenv("PLAIT_STRICT_PLUGINS", "1")
    host = plugins_mod.PluginHost()
    saved_host, saved_tables = plugins_mod._host, registry.__dict__["_tables"]
    from plait.core.registry import KINDS, Table

    try:
        plugins_mod._host = host
        registry.__dict__["_tables"] = {kind: Table(kind) for kind in KINDS}
        for _ in range(2):  # every lookup fails the same way: no half-loaded registry
            with pytest.raises(PluginError, match="plait-broken") as err:
                registry.layers.get("healthy_layer")
            assert re.search(FAULTS[fault][1], str(err.value))
    finally:
        plugins_mod._host, registry.__dict__["_tables"] = saved_host, saved_tables


def test_a_hook_failing_for_one_kind_does_not_lose_the_other_kinds():
    class Mixed:
        @hookimpl
        def register_layers(self, register):
            raise RuntimeError("layers broke")

        @hookimpl
        def register_losses(self, register):
            register("mixed_loss", Good)

    with isolated_plugins():
        with pytest.warns(PluginWarning, match="layers broke"):
            plugins_mod.register_plugin(Mixed(), name="mixed")
        assert registry.losses.get("mixed_loss") is Good


def test_unknown_name_after_a_failed_plugin_names_it(fake_installed):
    fake_installed("import fails")
    with pytest.warns(PluginWarning), isolated_plugins(autoload=True):
        with pytest.raises(KeyError, match=r"plugins that failed to load: broken \(plait-broken\)"):
            registry.layers.get("tensorrt_layer")


def test_broken_plugin_next_to_the_real_ones(monkeypatch):
    """Every installed plait distribution plus a broken one: build, run and backprop still work."""
    real = plugins_mod.metadata.entry_points
    broken = FakeEntryPoint("broken", FAULTS["hook raises"][0], "plait-broken")
    monkeypatch.setattr(plugins_mod.metadata, "entry_points", lambda group: [*real(group=group), broken])
    with pytest.warns(PluginWarning, match="plait-broken"), isolated_plugins(autoload=True):
        layer = registry.build({"type": "linear", "in_features": 3, "out_features": 2})
        y = layer(np.ones((4, 3), np.float32))
        assert layer.backward(np.ones_like(y)).shape == (4, 3)
        assert "adam" in registry.optimizers


def test_a_collision_skips_one_name_and_the_rest_of_the_hook_registers():
    class Colliding:
        @hookimpl
        def register_layers(self, register):
            register("linear", Good)  # taken by plait-layers
            register("after_collision", Good)

    with isolated_plugins(autoload=True):
        with pytest.warns(PluginWarning, match=r"'linear' is registered twice: by plait-layers and by colliding"):
            plugins_mod.register_plugin(Colliding(), name="colliding")
        assert registry.layers.get("after_collision") is Good
        assert registry.layers.get("linear").__name__ == "Linear"


def test_keyboard_interrupt_while_loading_leaves_a_registry_that_loads_next_time(monkeypatch):
    state = {"interrupt": True}

    def load():
        if state["interrupt"]:
            state["interrupt"] = False
            raise KeyboardInterrupt
        return _healthy()

    monkeypatch.setattr(plugins_mod.metadata, "entry_points",
                        lambda group: [FakeEntryPoint("healthy", load, "healthy-dist")])
    with _fresh_host():
        with pytest.raises(KeyboardInterrupt):
            registry.layers.get("healthy_layer")
        assert registry.layers.get("healthy_layer") is Good  # loads again, cleanly
        assert "zeros" in registry.initializers


class _fresh_host:
    """A new host and empty tables whose first lookup loads the (patched) entry points."""

    def __enter__(self):
        from plait.core.registry import KINDS, Table

        self.saved = plugins_mod._host, registry.__dict__["_tables"]
        plugins_mod._host = plugins_mod.PluginHost()
        registry.__dict__["_tables"] = {kind: Table(kind) for kind in KINDS}
        return plugins_mod._host

    def __exit__(self, *exc):
        plugins_mod._host, registry.__dict__["_tables"] = self.saved


def test_warnings_as_errors_leave_a_working_registry(fake_installed):
    """Under PYTHONWARNINGS=error the first lookup raises the report; the registry still works after."""
    import warnings

    fake_installed("hook raises")
    with _fresh_host(), warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PluginWarning, match="plait-broken"):
            registry.layers.get("healthy_layer")
        assert registry.layers.get("healthy_layer") is Good
        assert "zeros" in registry.initializers


def test_warnings_as_errors_in_a_real_process():
    import subprocess
    import sys

    code = ("from plait.core import registry; import plait.zoo as zoo\n"
            "print(len(registry.layers.names()) > 10, type(zoo.create('lenet5')).__name__)")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "CNN"]


def test_a_module_plugin_with_unmarked_or_misspelt_register_functions_is_reported():
    import types

    module = types.ModuleType("my_plait_plugin")
    exec(  # noqa: S102 - a tiny plugin module, as an entry point would import it
        "from plait.core.plugins import hookimpl\n"
        "def register_layers(register):\n    register('never_registered', object)\n"  # forgot @hookimpl
        "def register_optimisers(register):\n    pass\n"  # misspelt, unmarked
        "@hookimpl\ndef register_sheduler(register):\n    pass\n"  # misspelt, marked
        "def helper():\n    pass\n",
        module.__dict__,
    )
    with isolated_plugins():
        with pytest.warns(PluginWarning) as caught:
            plugins_mod.register_plugin(module, name="mine")
        text = " | ".join(str(w.message) for w in caught)
        assert "function 'register_layers' is not marked @hookimpl, so it is never called" in text
        assert ("function 'register_optimisers' matches no Plait hookspec and is not marked @hookimpl; "
                "did you mean 'register_optimizers'?") in text
        assert "hook 'register_sheduler' matches no Plait hookspec and is never called; did you mean" in text
        assert "helper" not in text and len(caught) == 3
        assert "never_registered" not in registry.layers
