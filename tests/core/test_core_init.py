"""plait.core.init: torch.nn.init's in-place functions (fans, gains, bounds, statistics, orthogonality)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plait.core import ConfigError, Param, init, manual_seed

torch = pytest.importorskip("torch")
tinit = torch.nn.init

SHAPES = [(256, 128), (64, 32, 3, 3), (96, 48, 5)]


def _torch_fans(shape):
    return tinit._calculate_fan_in_and_fan_out(torch.empty(shape))


def _torch_sample(fn, shape, **kwargs):
    torch.manual_seed(0)
    t = torch.empty(shape, dtype=torch.float64)
    fn(t, **kwargs)
    return t.numpy()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("gain", [1.0, tinit.calculate_gain("relu")])
def test_xavier_uniform_bounds_and_spread_match_torch(shape, gain):
    fan_in, fan_out = _torch_fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    w = init.xavier_uniform_(np.empty(shape), gain=gain, generator=0)
    theirs = _torch_sample(tinit.xavier_uniform_, shape, gain=gain)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert np.abs(theirs).max() <= bound
    assert w.std() == pytest.approx(theirs.std(), rel=0.03) and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_xavier_normal_std_matches_torch(shape):
    fan_in, fan_out = _torch_fans(shape)
    w = init.xavier_normal_(np.empty(shape), gain=2.0, generator=1)
    theirs = _torch_sample(tinit.xavier_normal_, shape, gain=2.0)
    expected = 2.0 * math.sqrt(2.0 / (fan_in + fan_out))
    assert w.std() == pytest.approx(expected, rel=0.03) and theirs.std() == pytest.approx(expected, rel=0.03)
    assert abs(w.mean()) < 0.05 * expected


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"a": math.sqrt(5)}, {"mode": "fan_out", "nonlinearity": "relu"}, {"a": 0.2, "nonlinearity": "leaky_relu"},
     {"nonlinearity": "tanh", "mode": "fan_out"}],
    ids=str,
)  # fmt: skip
def test_kaiming_matches_torch(shape, kwargs):
    fan_in, fan_out = _torch_fans(shape)
    fan = fan_out if kwargs.get("mode") == "fan_out" else fan_in
    gain = tinit.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0))
    assert init.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0)) == pytest.approx(gain)
    w = init.kaiming_uniform_(np.empty(shape), generator=2, **kwargs)
    theirs = _torch_sample(tinit.kaiming_uniform_, shape, **kwargs)
    bound = gain * math.sqrt(3.0 / fan)
    assert np.abs(w).max() <= bound and np.abs(theirs).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert w.std() == pytest.approx(theirs.std(), rel=0.03)
    n = init.kaiming_normal_(np.empty(shape), generator=3, **kwargs)
    theirs = _torch_sample(tinit.kaiming_normal_, shape, **kwargs)
    assert n.std() == pytest.approx(gain / math.sqrt(fan), rel=0.03) and n.std() == pytest.approx(theirs.std(), rel=0.04)


@pytest.mark.parametrize("shape", [(20, 50), (50, 20), (8, 4, 3, 3), (30, 30)], ids=str)
def test_orthogonal_is_orthogonal_like_torch(shape):
    w = init.orthogonal_(Param(np.empty(shape, np.float32)), gain=1.5, generator=4).data
    theirs = _torch_sample(tinit.orthogonal_, shape, gain=1.5)
    for m in (w.reshape(shape[0], -1).astype(np.float64), theirs.reshape(shape[0], -1)):
        small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(small, 1.5**2 * np.eye(len(small)), atol=1e-5)
    with pytest.raises(ConfigError, match="at least 2 dimensions"):
        init.orthogonal_(np.empty(5))


def test_normal_uniform_trunc_normal_and_constants():
    x = init.normal_(np.empty(100_000), mean=2.0, std=0.5, generator=5)
    assert x.mean() == pytest.approx(2.0, abs=0.01) and x.std() == pytest.approx(0.5, rel=0.02)
    u = init.uniform_(np.empty(100_000), a=-3.0, b=1.0, generator=6)
    assert u.min() >= -3.0 and u.max() <= 1.0 and u.mean() == pytest.approx(-1.0, abs=0.02)
    t = init.trunc_normal_(np.empty(100_000), mean=0.5, std=1.0, a=-0.5, b=1.0, generator=7)
    theirs = _torch_sample(tinit.trunc_normal_, (100_000,), mean=0.5, std=1.0, a=-0.5, b=1.0)
    assert t.min() >= -0.5 and t.max() <= 1.0
    assert t.mean() == pytest.approx(theirs.mean(), abs=0.01) and t.std() == pytest.approx(theirs.std(), rel=0.02)
    assert (init.constant_(np.empty((2, 3)), 0.25) == 0.25).all()
    assert (init.zeros_(np.ones(3)) == 0).all() and (init.ones_(np.zeros(3)) == 1).all()
    with pytest.raises(ConfigError, match="holds only"):
        init.trunc_normal_(np.empty(3), a=10.0, b=11.0)
    with pytest.raises(ConfigError, match="std must be >= 0"):
        init.normal_(np.empty(3), std=-1.0)


def test_in_place_on_params_and_arrays_with_generators():
    p = Param(np.zeros((4, 3), np.float32))
    same = p.data
    assert init.kaiming_uniform_(p, a=math.sqrt(5)) is p
    assert p.data is same and p.data.dtype == np.float32 and p.data.any()
    a = init.xavier_uniform_(np.empty((4, 3)), generator=np.random.default_rng(9))
    b = init.xavier_uniform_(np.empty((4, 3)), generator=9)
    np.testing.assert_array_equal(a, b)
    manual_seed(3)
    c = init.normal_(np.empty(5)).copy()
    manual_seed(3)
    np.testing.assert_array_equal(init.normal_(np.empty(5)), c)  # the global generator by default
    with pytest.raises(ConfigError, match="at least 2 dimensions"):
        init.xavier_uniform_(np.empty(5))
    with pytest.raises(ConfigError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(np.empty((3, 3)), mode="fan")
    ro = np.zeros((2, 2))
    ro.flags.writeable = False
    with pytest.raises(ConfigError, match="writeable array"):
        init.zeros_(ro)
    with pytest.raises(ConfigError, match="expected a Param"):
        init.zeros_([0.0, 1.0])


def test_model_apply_with_an_init_function_works_as_in_torch():
    from plait.layers import Linear, ReLU, Sequential

    model = Sequential(Linear(8, 16), ReLU(), Linear(16, 4))

    def init_weights(m):
        if isinstance(m, Linear):
            init.xavier_normal_(m.weight, generator=0)
            init.constant_(m.bias, 0.1)

    model.apply(init_weights)
    assert (model[0].bias.data == np.float32(0.1)).all() and (model[2].bias.data == np.float32(0.1)).all()
    np.testing.assert_array_equal(model[0].weight.data, init.xavier_normal_(np.empty((16, 8), np.float32), generator=0))
