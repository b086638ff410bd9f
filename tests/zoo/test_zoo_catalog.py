"""Model registry of plait-zoo: create / list_models / model_config, presets, third-party models."""

from __future__ import annotations

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import ConfigError, Module, Param, RegistryError, hookimpl, registry
from plait.core.plugins import register_plugin, unregister_plugin
from plait.zoo import ModelCatalog, Preset


def test_list_models_is_sorted_and_filtered():
    names = zoo.list_models()
    assert names == sorted(names)
    assert {"mlp", "mlp-mnist"} <= set(names)
    assert zoo.list_models("mlp*")[:2] == ["mlp", "mlp-mnist"]
    assert all(n.startswith("mlp") for n in zoo.list_models("mlp*"))
    assert "mlp" not in zoo.list_models(presets=True)
    assert "mlp-mnist" not in zoo.list_models(presets=False)
    assert zoo.list_models("no-such-model-*") == []


def test_model_config_fills_defaults_and_presets_resolve():
    cfg = zoo.model_config("mlp-mnist")
    assert cfg["architecture"] == "mlp"
    assert cfg["model_args"]["sizes"] == [784, 256, 128, 10]
    assert cfg["model_args"]["dropout"] == 0.0  # a default, filled in
    assert isinstance(registry.models.get("mlp-mnist"), Preset)
    assert zoo.is_preset("mlp-mnist") and not zoo.is_preset("mlp")


def test_create_with_overrides_and_bad_arguments():
    model = zoo.create("mlp-mnist", sizes=[12, 7, 3])
    assert model.sizes == [12, 7, 3]
    assert model.config()["sizes"] == [12, 7, 3]
    with pytest.raises(ConfigError, match=r"model 'mlp' has no argument\(s\) widths; it accepts: sizes"):
        zoo.create("mlp-mnist", widths=[3, 3])
    with pytest.raises(ConfigError, match="mlp: sizes must list"):
        zoo.create("mlp", sizes=[4])


def test_unknown_model_lists_close_matches():
    with pytest.raises(RegistryError, match=r"unknown model 'mlp-mnst'; did you mean 'mlp-mnist'"):
        zoo.create("mlp-mnst")
    with pytest.raises(RegistryError, match="unknown model"):
        zoo.model_config("zzzzzz")


class Doubler(Module):
    """y = 2 w x (a toy third-party architecture)."""

    def __init__(self, features: int = 3, scale: float = 2.0) -> None:
        super().__init__()
        self.scale = scale
        self.w = Param(np.ones(features, dtype=np.float32))

    def forward(self, x):
        self.save_for_backward(x)
        return self.scale * self.w.data * x

    def backward(self, dy):
        x = self.saved()
        self.w.accumulate((self.scale * dy * x).sum(axis=0))
        return self.scale * self.w.data * dy


def doubler_factory(width: int = 2) -> Module:
    """A function architecture returning an instance of an unregistered class."""
    return Doubler(features=width, scale=3.0)


def _third_party_catalog() -> ModelCatalog:
    catalog = ModelCatalog()
    catalog.register_model("tp_doubler")(Doubler)
    catalog.register_model(doubler_factory)
    catalog.register_preset("tp-doubler-4", "tp_doubler", "four features", features=4)
    catalog.register_preset("tp-doubler-4-half", "tp-doubler-4", scale=0.5)  # a preset of a preset
    return catalog


def test_third_party_catalog_adds_architectures_and_presets(tmp_path):
    catalog = _third_party_catalog()

    class ThirdParty:
        @hookimpl
        def register_models(self, register):
            catalog.contribute(register)

    name = register_plugin(ThirdParty(), name="zoo-third-party-test")
    try:
        assert registry.models.origin("tp-doubler-4") == "zoo-third-party-test"
        assert zoo.list_models("tp-*") == ["tp-doubler-4", "tp-doubler-4-half"]
        assert zoo.model_config("tp-doubler-4-half") == {
            "architecture": "tp_doubler",
            "model_args": {"features": 4, "scale": 0.5},
        }
        model = zoo.create("tp-doubler-4-half")
        assert model.w.shape == (4,) and model.scale == 0.5
        model.w.data[:] = [1, 2, 3, 4]
        same = zoo.load(zoo.save(model, tmp_path / "a"))
        x = np.ones((2, 4), dtype=np.float32)
        np.testing.assert_array_equal(same(x), model(x))

        built = zoo.create("doubler_factory", width=5)  # function architecture: saved by its own name
        built.w.data[:] = 7
        again = zoo.load(zoo.save(built, tmp_path / "b"))
        assert zoo.read_config(tmp_path / "b")["architecture"] == "doubler_factory"
        np.testing.assert_array_equal(again.w.data, np.full(5, 7, dtype=np.float32))
    finally:
        unregister_plugin(name)
    assert "tp-doubler-4" not in registry.models


def test_catalog_rejects_a_name_declared_twice():
    catalog = ModelCatalog()
    catalog.register_preset("x-one", "mlp")
    with pytest.raises(RegistryError, match="declared twice"):
        catalog.register_preset("x-one", "mlp", sizes=[2, 2])


def test_preset_needs_an_architecture_name():
    with pytest.raises(ConfigError, match="architecture must be a registered model name"):
        Preset(Doubler)  # type: ignore[arg-type]


def test_register_model_in_a_script_after_loading_registers_at_once():
    from plait.zoo.catalog import ZOO_CATALOG

    zoo.list_models()  # plugins are loaded
    try:
        @zoo.register_model("script_doubler")
        class ScriptDoubler(Doubler):
            pass

        zoo.register_preset("script-doubler-5", "script_doubler", features=5)
        assert registry.models.origin("script_doubler") == __name__
        assert registry.models.origin("script-doubler-5") == __name__
        assert zoo.create("script-doubler-5").w.shape == (5,)
    finally:
        for name in ("script_doubler", "script-doubler-5"):
            ZOO_CATALOG._entries.pop(name, None)
        registry.models.remove_origin(__name__)
    assert "script_doubler" not in registry.models
