"""The initializer chosen at construction (``init=`` / ``bias_init=``) on Linear, Conv1d/2d,
ConvTranspose2d and Embedding: the drawn statistics and bounds, torch's fan rule, the default
left unchanged, the config round trip and clear errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from plait.core import ConfigError, manual_seed, registry
from plait.core.initializers import XavierUniform
from plait.layers import Conv1d, Conv2d, ConvTranspose2d, Embedding, Linear

MAKERS = {  # name -> (constructor taking **init kwargs, torch module of the same weight shape)
    "linear": (lambda **kw: Linear(300, 200, **kw), lambda: torch.nn.Linear(300, 200)),
    "conv1d": (lambda **kw: Conv1d(16, 32, 5, **kw), lambda: torch.nn.Conv1d(16, 32, 5)),
    "conv2d": (lambda **kw: Conv2d(8, 24, 3, groups=2, **kw), lambda: torch.nn.Conv2d(8, 24, 3, groups=2)),
    "conv_transpose2d": (lambda **kw: ConvTranspose2d(12, 20, 4, **kw), lambda: torch.nn.ConvTranspose2d(12, 20, 4)),
    "embedding": (lambda **kw: Embedding(500, 64, **kw), lambda: torch.nn.Embedding(500, 64)),
}


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    return torch.nn.init._calculate_fan_in_and_fan_out(weight)  # torch's own rule, as reference


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_xavier_uniform_bound_and_spread_use_torchs_fans(name):
    make, make_torch = MAKERS[name]
    w = make(init="xavier_uniform").weight.data
    fan_in, fan_out = _fans(make_torch().weight)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert w.dtype == np.float32 and np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.97 * bound  # the whole interval is used
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3.0), rtol=0.05)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_kaiming_normal_and_dict_specs(name):
    make, make_torch = MAKERS[name]
    fan_in, fan_out = _fans(make_torch().weight)
    w = make(init="kaiming_normal").weight.data
    np.testing.assert_allclose(w.std(), math.sqrt(2.0) / math.sqrt(fan_in), rtol=0.06)
    w = make(init={"type": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"}).weight.data
    np.testing.assert_allclose(w.std(), math.sqrt(2.0) / math.sqrt(fan_out), rtol=0.06)
    w = make(init={"type": "normal", "std": 0.02}).weight.data
    np.testing.assert_allclose(w.std(), 0.02, rtol=0.06)
    assert abs(float(w.mean())) < 0.002


def test_orthogonal_and_bias_init():
    layer = Linear(64, 32, init="orthogonal", bias_init="zeros")
    w = layer.weight.data.astype(np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(32), atol=1e-5)
    assert not layer.bias.data.any()
    conv = Conv2d(3, 4, 3, bias_init={"type": "constant", "value": 0.1})
    np.testing.assert_array_equal(conv.bias.data, np.full(4, 0.1, np.float32))
    assert ConvTranspose2d(2, 3, 2, bias_init="ones").bias.data.tolist() == [1.0, 1.0, 1.0]
    assert Linear(3, 2, bias=False, bias_init="ones").bias is None


def test_embedding_padding_row_stays_zero_under_a_chosen_init():
    emb = Embedding(10, 4, padding_idx=3, init="xavier_normal")
    assert not emb.weight.data[3].any() and emb.weight.data.std() > 0


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_default_is_unchanged_torchs_rule(name):
    make, _ = MAKERS[name]
    manual_seed(7)
    a = make()
    manual_seed(7)
    b = make(init=None, **({} if name == "embedding" else {"bias_init": None}))
    for (ka, pa), (kb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert ka == kb
        np.testing.assert_array_equal(pa.data, pb.data)
    assert "init" not in a.config() and "bias_init" not in a.config()  # configs read as before


@pytest.mark.parametrize("spec", ["xavier_uniform", {"type": "normal", "mean": 0.5, "std": 0.1},
                                  XavierUniform(gain=2.0)])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_config_round_trip_rebuilds_with_the_same_rule(name, spec):
    make, _ = MAKERS[name]
    manual_seed(3)
    layer = make(init=spec)
    cfg = layer.config()
    assert json.loads(json.dumps(cfg)) == cfg
    manual_seed(3)
    rebuilt = registry.build(json.loads(json.dumps(cfg)))
    assert rebuilt.config() == cfg
    np.testing.assert_array_equal(rebuilt.weight.data, layer.weight.data)


def test_unknown_or_malformed_init_is_a_config_error_with_close_matches():
    with pytest.raises(ConfigError, match=r"Linear: init: .*'xavier_unifrom'.*did you mean 'xavier_uniform'"):
        Linear(4, 3, init="xavier_unifrom")
    with pytest.raises(ConfigError, match=r"Conv2d: bias_init: .*'zero'.*did you mean 'zeros'"):
        Conv2d(3, 4, 3, bias_init="zero")
    with pytest.raises(ConfigError, match=r"Embedding: init: .*'kaiming'"):
        Embedding(5, 3, init={"type": "kaiming"})
    with pytest.raises(ConfigError, match="Conv1d: init must be a registered initializer name"):
        Conv1d(2, 2, 3, init=3.5)
    with pytest.raises(ConfigError, match="ConvTranspose2d: init: KaimingNormal.*mode"):
        ConvTranspose2d(2, 2, 3, init={"type": "kaiming_normal", "mode": "fan"})
    with pytest.raises(ConfigError, match="Linear.*stdev"):
        Linear(4, 3, init={"type": "normal", "stdev": 1.0})
