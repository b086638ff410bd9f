"""Registry and plugins: third-party distributions, faults, duplicates, strict mode, autoload."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from plait.core import Module, Param, PluginError, RegistryError, hookimpl, registry
from plait.core import plugins as plugins_mod
from plait.core.cli import main as cli_main
from plait.core.plugins import PluginWarning, register_plugin, unregister_plugin
from plait.core.testing import isolated_plugins


class Doubler(Module):
    def __init__(self, k: int = 2) -> None:
        super().__init__()
        self.k = k

    def forward(self, x):
        return x * self.k

    def backward(self, dy):
        return dy * self.k


class Stack(Module):
    def __init__(self, layers: list) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, f"l{i}", layer)

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class GoodPlugin:
    @hookimpl
    def register_layers(self, register):
        register("doubler", Doubler)
        register("stack", Stack)


def test_installed_third_party_plugin_is_found_by_name():
    pytest.importorskip("plait_example_plugin")
    scale = registry.layers.get("example_scale")
    assert registry.optimizers.get("example_sign_sgd").__name__ == "SignSGD"
    assert registry.layers.origin("example_scale") == "plait-example-plugin"
    layer = registry.build({"type": "example_scale", "features": 3})
    assert isinstance(layer, scale) and layer.config() == {"type": "example_scale", "features": 3}


def test_plugins_command_lists_distributions(capsys):
    pytest.importorskip("plait_example_plugin")
    assert cli_main(["plugins", "--json"]) == 0
    records = {r["distribution"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["plait-core"]["registered"]["initializers"]
    assert records["plait-example-plugin"]["registered"] == {
        "layers": ["example_scale"],
        "optimizers": ["example_sign_sgd"],
    }
    assert records["plait-example-plugin"]["version"] == "0.0.1"


def test_in_process_register_build_and_unregister():
    with isolated_plugins():
        name = register_plugin(GoodPlugin(), name="good")
        try:
            model = registry.build({"type": "stack", "layers": [{"type": "doubler", "k": 3}, {"type": "doubler"}]})
            assert model.l0.k == 3 and model.l1.k == 2
            assert model.config() == {"type": "stack", "layers": [{"type": "doubler", "k": 3}, {"type": "doubler", "k": 2}]}
            assert registry.build(model.config()).l0.k == 3
        finally:
            unregister_plugin(name)
        assert "doubler" not in registry.layers


def test_plugin_raising_in_hook_is_reported_and_others_work():
    class Broken:
        @hookimpl
        def register_layers(self, register):
            register("fine_before_crash", Doubler)
            raise RuntimeError("boom")

    with isolated_plugins():
        register_plugin(GoodPlugin(), name="good")
        with pytest.warns(PluginWarning, match=r"plugin 'broken'.*register_layers raised RuntimeError: boom"):
            register_plugin(Broken(), name="broken")
        assert registry.layers.get("doubler") is Doubler


def test_strict_mode_raises(monkeypatch):
    class Broken:
        @hookimpl
        def register_layers(self, register):
            raise RuntimeError("boom")

    monkeypatch.setenv("PLAIT_STRICT_PLUGINS", "1")
    with isolated_plugins(), pytest.raises(PluginError, match="boom"):
        register_plugin(Broken(), name="broken")


def test_duplicate_name_names_both_origins_and_override_restores():
    class Dup:
        @hookimpl
        def register_layers(self, register):
            register("doubler", Stack)

    class Override:
        @hookimpl
        def register_layers(self, register):
            register("doubler", Stack, override=True)

    with isolated_plugins():
        register_plugin(GoodPlugin(), name="good")
        with pytest.warns(PluginWarning, match=r"'doubler' is registered twice: by good and by dup"):
            register_plugin(Dup(), name="dup")
        assert registry.layers.get("doubler") is Doubler
        register_plugin(Override(), name="override")
        assert registry.layers.get("doubler") is Stack
        unregister_plugin("override")
        assert registry.layers.get("doubler") is Doubler


def test_non_conforming_object_is_rejected():
    class NoBackward:
        def forward(self, x):
            return x

    class Bad:
        @hookimpl
        def register_layers(self, register):
            register("half_layer", NoBackward)

    with isolated_plugins():
        with pytest.warns(PluginWarning, match="does not conform: missing method"):
            register_plugin(Bad(), name="bad")
        assert "half_layer" not in registry.layers


def test_unknown_name_lists_close_matches_and_provider():
    with isolated_plugins():
        register_plugin(GoodPlugin(), name="good")
        with pytest.raises(RegistryError, match=r"unknown layer 'dubler'; did you mean 'doubler'"):
            registry.layers.get("dubler")
        with pytest.raises(KeyError, match="provided by the distribution plait-optim"):
            registry.optimizers.get("adamw")


def test_entry_point_that_fails_to_import_is_reported(monkeypatch):
    fake = metadata.EntryPoint(name="ghost", value="plait_no_such_module_xyz", group="plait")
    monkeypatch.setattr(plugins_mod.metadata, "entry_points", lambda group: [fake])
    with pytest.warns(PluginWarning, match=r"'ghost'.*failed to import 'plait_no_such_module_xyz': ModuleNotFoundError"):
        with isolated_plugins(autoload=True):
            assert "zeros" in registry.initializers  # core still works
            with pytest.raises(RegistryError, match="plugins that failed to load: ghost"):
                registry.layers.get("linear")


def test_bad_hook_signature_is_reported():
    class Typo:
        @hookimpl
        def register_layers(self, register, extra):  # pluggy rejects unknown arguments
            pass

    with isolated_plugins():
        with pytest.warns(PluginWarning, match="rejected by the plugin manager"):
            register_plugin(Typo(), name="typo")


def _run(code: str, **env: str) -> str:
    import os

    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=full_env).stdout


def test_disable_autoload_loads_only_core():
    out = _run(
        "from plait.core import registry; print(sorted(registry.layers.names()), len(registry.initializers.names()))",
        PLAIT_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    assert out.strip() == "[] 11"


def test_import_is_lazy_and_fast():
    out = _run(
        "import time; t = time.perf_counter(); import plait.core; dt = time.perf_counter() - t\n"
        "from plait.core import plugins; print(plugins._host is None, round(dt, 3))"
    )
    lazy, seconds = out.split()
    assert lazy == "True"
    assert float(seconds) < 2.0


def test_registry_build_rejects_bad_configs():
    with pytest.raises(ValueError, match="expects a dict with a 'type' key"):
        registry.build({"in_features": 3})
    with isolated_plugins():
        register_plugin(GoodPlugin(), name="good")
        with pytest.raises(ValueError, match="cannot build layer 'doubler'"):
            registry.build({"type": "doubler", "nope": 1})


def test_param_repr_and_accumulate():
    p = Param(np.zeros(3), name="w")
    p.accumulate(np.ones(3))
    p.accumulate(np.ones(3))
    assert np.array_equal(p.grad, [2, 2, 2]) and "w" in repr(p)
