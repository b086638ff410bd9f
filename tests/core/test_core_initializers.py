"""Initializers: shapes, dtypes, statistics against torch.nn.init's formulas, seeded reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plait.core import ConfigError, calculate_gain, compute_fans, get_initializer, manual_seed, registry
from plait.core.initializers import KaimingNormal, KaimingUniform, LecunNormal, Orthogonal, XavierNormal, XavierUniform

SHAPE = (400, 300)
FAN_IN, FAN_OUT = 300, 400


def draw(init, shape=SHAPE, dtype=np.float64, seed=0):
    return init(shape, *compute_fans(shape), np.random.default_rng(seed), dtype)


@pytest.mark.parametrize("name", ["zeros", "ones", "constant", "normal", "uniform", "xavier_uniform", "xavier_normal",
                                  "kaiming_uniform", "kaiming_normal", "orthogonal", "lecun_normal"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_registered_initializer_gives_shape_and_dtype(name, dtype):
    w = draw(registry.initializers.get(name)(), shape=(5, 4, 3), dtype=dtype)
    assert w.shape == (5, 4, 3) and w.dtype == dtype


def test_compute_fans_matches_torch():
    torch = pytest.importorskip("torch")
    for shape in [(7, 3), (8, 4, 3, 3), (6, 2, 5)]:
        assert compute_fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("nl,param", [("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("selu", None), ("linear", None)])
def test_gain_matches_torch(nl, param):
    torch = pytest.importorskip("torch")
    assert calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param))


@pytest.mark.parametrize(
    "init,expected_std",
    [
        (XavierUniform(), math.sqrt(2 / (FAN_IN + FAN_OUT))),
        (XavierNormal(gain=2.0), 2 * math.sqrt(2 / (FAN_IN + FAN_OUT))),
        (KaimingUniform(a=math.sqrt(5)), math.sqrt(2 / 6) / math.sqrt(FAN_IN)),
        (KaimingNormal(nonlinearity="relu"), math.sqrt(2) / math.sqrt(FAN_IN)),
        (KaimingNormal(mode="fan_out", nonlinearity="relu"), math.sqrt(2) / math.sqrt(FAN_OUT)),
        (LecunNormal(), math.sqrt(1 / FAN_IN)),
    ],
)
def test_statistics(init, expected_std):
    w = draw(init)
    assert abs(w.mean()) < 4 * expected_std / math.sqrt(w.size)
    assert w.std() == pytest.approx(expected_std, rel=0.02)


def test_uniform_bounds_are_torch_bounds():
    w = draw(KaimingUniform(a=math.sqrt(5)))
    bound = 1 / math.sqrt(FAN_IN)  # torch's Linear default
    assert w.max() <= bound and w.min() >= -bound and w.max() > 0.99 * bound


def test_orthogonal_is_orthogonal():
    w = draw(Orthogonal(gain=1.5), shape=(30, 50))
    np.testing.assert_allclose(w @ w.T, 1.5**2 * np.eye(30), atol=1e-10)
    w = draw(Orthogonal(), shape=(50, 30))
    np.testing.assert_allclose(w.T @ w, np.eye(30), atol=1e-10)


def test_seeded_reproducibility():
    from plait.core import get_rng

    manual_seed(123)
    a = KaimingUniform()((3, 4), 4, 3, get_rng(), np.float32)
    manual_seed(123)
    b = KaimingUniform()((3, 4), 4, 3, get_rng(), np.float32)
    assert np.array_equal(a, b)


def test_get_initializer_from_name_config_and_callable():
    assert isinstance(get_initializer("xavier_uniform"), XavierUniform)
    init = get_initializer({"type": "kaiming_normal", "mode": "fan_out"})
    assert init.mode == "fan_out" and init.config()["type"] == "kaiming_normal"
    assert get_initializer(len) is len


def test_bad_arguments():
    with pytest.raises(ConfigError, match="mode must be"):
        KaimingUniform(mode="fan_avg")
    with pytest.raises(ConfigError, match="unknown nonlinearity"):
        KaimingNormal(nonlinearity="swish")
    with pytest.raises(ConfigError, match="at least 2 dimensions"):
        draw(Orthogonal(), shape=(5,))
