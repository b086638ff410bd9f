"""One build-by-name helper: ``registry.build`` (names, configs, positional sizes, extra options),
with ``plait.zoo.builders.build_layer`` as its spelling for layers; errors start with who asked."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import ConfigError, RegistryError, registry
from plait.core.registry import UnresolvedNameError
from plait.layers import LeakyReLU, Linear, TransformerEncoderLayer
from plait.zoo.builders import build_layer


def test_a_name_with_positional_sizes_and_options():
    layer = registry.build("linear", args=(4, 2), bias=False, where="test")
    assert type(layer) is Linear and layer.weight.shape == (2, 4) and layer.bias is None
    same = build_layer("linear", 4, 2, bias=False, where="test")
    assert type(same) is Linear and same.config() == layer.config()


def test_a_config_with_options_added_on_top():
    spec = {"type": "leaky_relu", "negative_slope": 0.1}
    assert registry.build(spec).negative_slope == 0.1
    assert registry.build(spec, negative_slope=0.2).negative_slope == 0.2  # the caller's option wins
    assert spec == {"type": "leaky_relu", "negative_slope": 0.1}  # and the spec is left alone
    assert type(build_layer(spec)) is LeakyReLU


def test_kind_still_positional_and_a_config_names_its_own_kind():
    assert type(registry.build({"type": "relu"}, "layers")).__name__ == "ReLU"
    init = registry.build({"type": "normal", "kind": "initializers", "std": 0.5})
    values = init((1000,), 1, 1, np.random.default_rng(0), np.float64)
    assert abs(values.std() - 0.5) < 0.05


def test_an_unknown_name_is_a_lookup_error_and_a_config_error_naming_the_caller():
    with pytest.raises(UnresolvedNameError, match=r"^mlp activation: unknown layer 'relux'; did you mean 'relu'") as info:
        registry.build("relux", where="mlp activation")
    assert isinstance(info.value, RegistryError) and isinstance(info.value, ConfigError)
    with pytest.raises(ConfigError, match=r"^TransformerEncoderLayer activation: unknown layer 'swishy'"):
        TransformerEncoderLayer(8, 2, activation="swishy")


@pytest.mark.parametrize("call, words", [
    (lambda: build_layer("linear", 4, where="cnn"), r"^cnn: cannot build layer 'linear' from \[4\] \{\}: "),
    (lambda: registry.build({"type": "relu", "nope": 1}), r"^registry\.build: cannot build layer 'relu' from "),
    (lambda: build_layer(3, where="mlp activation"), r"^mlp activation: a layer must be a registered name"),
    (lambda: registry.build({"type": 5}), "expects a dict with a 'type' key"),
])
def test_bad_arguments_are_config_errors_that_start_with_the_caller(call, words):
    with pytest.raises(ConfigError, match=words):
        call()


def test_a_constructor_error_already_naming_its_component_passes_through():
    with pytest.raises(ConfigError, match=r"^Linear: in_features must be an integer, got 'four'"):
        registry.build("linear", args=("four", 2), where="gpt")


@pytest.mark.parametrize("activation", [{"type": "leaky_relu", "negative_slope": 0.3}, LeakyReLU(0.3)])
def test_the_transformer_layers_take_an_activation_config_or_instance(activation):
    layer = TransformerEncoderLayer(8, 2, 16, activation=activation)
    assert type(layer.activation) is LeakyReLU and layer.activation.negative_slope == 0.3
    rebuilt = registry.build(layer.config())
    assert rebuilt.activation.negative_slope == 0.3 and rebuilt.config() == layer.config()
