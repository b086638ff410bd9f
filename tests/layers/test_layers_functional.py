"""plait.layers.functional against torch.nn.functional: forward values (float32 and float64),
equality with the modules' forward, nothing cached, errors, and the deprecated old names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import plait.layers as L
import plait.layers.functional as F
from plait.core import ConfigError, ShapeError, manual_seed

# (id, plait call, torch call): x -> y
ACTIVATIONS = [
    ("relu", F.relu, TF.relu),
    ("relu6", F.relu6, TF.relu6),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    ("selu", F.selu, TF.selu),
    ("celu", lambda x: F.celu(x, 0.5), lambda x: TF.celu(x, 0.5)),
    ("gelu", F.gelu, TF.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    ("silu", F.silu, TF.silu),
    ("mish", F.mish, TF.mish),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("softplus", lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)),
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0)),
    ("hardsigmoid", F.hardsigmoid, TF.hardsigmoid),
    ("hardswish", F.hardswish, TF.hardswish),
    ("logsigmoid", F.logsigmoid, TF.logsigmoid),
    ("softsign", F.softsign, TF.softsign),
    ("softmax", lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    ("log_softmax", F.log_softmax, lambda x: TF.log_softmax(x, dim=-1)),
    ("glu", F.glu, TF.glu),
    ("glu_dim1", lambda x: F.glu(x, dim=1), lambda x: TF.glu(x, dim=1)),
]


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ACTIVATIONS, ids=[c[0] for c in ACTIVATIONS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activation_matches_torch(case, dtype):
    x = (np.random.default_rng(0).standard_normal((3, 4, 6)) * 4).astype(dtype)
    y = case[1](x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, case[2](torch.tensor(x)).numpy(), **_tol(dtype))


@pytest.mark.parametrize("fn,cls,kw", [(F.gelu, L.GELU, {"approximate": "tanh"}), (F.softmax, L.Softmax, {"dim": 0}),
                                       (F.celu, L.CELU, {"alpha": 0.3}), (F.sigmoid, L.Sigmoid, {})])
def test_equals_the_module_forward_and_caches_nothing(fn, cls, kw):
    x = np.random.default_rng(1).standard_normal((4, 5))
    layer = cls(**kw)
    np.testing.assert_array_equal(fn(x, **kw), layer(x))
    again = F._layer(cls, *sorted(kw.items()))  # the shared stateless instance holds no forward cache
    assert not again.__dict__["_saved_stack"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_prelu_and_linear_match_torch(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    w = np.array([0.1, -0.3, 0.5], dtype=dtype)
    np.testing.assert_allclose(F.prelu(x, w), TF.prelu(torch.tensor(x), torch.tensor(w)).numpy(), **_tol(dtype))
    np.testing.assert_allclose(F.prelu(x, w[:1]), TF.prelu(torch.tensor(x), torch.tensor(w[:1])).numpy(), **_tol(dtype))
    weight, bias = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)
    ref = TF.linear(torch.tensor(x), torch.tensor(weight), torch.tensor(bias)).numpy()
    np.testing.assert_allclose(F.linear(x, weight, bias), ref, **_tol(dtype))
    np.testing.assert_allclose(F.linear(x, weight), TF.linear(torch.tensor(x), torch.tensor(weight)).numpy(),
                               **_tol(dtype))


def _ids(n, c, rng):
    return rng.integers(0, c, n)


# (id, plait call, torch call) on (input, target) built per case
LOSSES = [
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1, ignore_index=2),
     lambda x, t: TF.cross_entropy(x, t, label_smoothing=0.1, ignore_index=2), "ids"),
    ("cross_entropy_sum_weight", lambda x, t: F.cross_entropy(x, t, weight=[1.0, 2.0, 0.5, 1.0], reduction="sum"),
     lambda x, t: TF.cross_entropy(x, t, weight=torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=x.dtype), reduction="sum"),
     "ids"),
    ("nll_loss", lambda x, t: F.nll_loss(x, t), lambda x, t: TF.nll_loss(x, t), "ids"),
    ("mse_loss", F.mse_loss, TF.mse_loss, "same"),
    ("mse_loss_none", lambda x, t: F.mse_loss(x, t, reduction="none"), lambda x, t: TF.mse_loss(x, t, reduction="none"),
     "same"),
    ("l1_loss", F.l1_loss, TF.l1_loss, "same"),
    ("huber_loss", lambda x, t: F.huber_loss(x, t, delta=0.5), lambda x, t: TF.huber_loss(x, t, delta=0.5), "same"),
    ("smooth_l1_loss", lambda x, t: F.smooth_l1_loss(x, t, beta=0.5), lambda x, t: TF.smooth_l1_loss(x, t, beta=0.5),
     "same"),
    ("binary_cross_entropy", F.binary_cross_entropy, TF.binary_cross_entropy, "probs"),
    ("binary_cross_entropy_with_logits", lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=[2.0] * 4),
     lambda x, t: TF.binary_cross_entropy_with_logits(x, t, pos_weight=torch.full((4,), 2.0, dtype=x.dtype)), "same"),
    ("kl_div", lambda x, t: F.kl_div(x, t, reduction="batchmean"), lambda x, t: TF.kl_div(x, t, reduction="batchmean"),
     "probs"),
]


def _loss_inputs(kind, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4)).astype(dtype)
    if kind == "ids":
        return x, _ids(6, 4, rng)
    if kind == "probs":
        return (1 / (1 + np.exp(-x))).astype(dtype), rng.uniform(size=(6, 4)).astype(dtype)
    return x, rng.standard_normal((6, 4)).astype(dtype)


@pytest.mark.parametrize("case", LOSSES, ids=[c[0] for c in LOSSES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_matches_torch(case, dtype):
    x, t = _loss_inputs(case[3], dtype)
    value = case[1](x, t)
    ref = case[2](torch.tensor(x), torch.tensor(t)).numpy()
    np.testing.assert_allclose(np.asarray(value), ref, **_tol(dtype))


def test_pairwise_losses_match_torch():
    rng = np.random.default_rng(4)
    a, b, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), np.array([1, -1, 1, -1, -1])
    ref = TF.cosine_embedding_loss(torch.tensor(a), torch.tensor(b), torch.tensor(y), margin=0.2).item()
    assert F.cosine_embedding_loss(a, b, y, margin=0.2) == pytest.approx(ref, rel=1e-12)
    ref = TF.margin_ranking_loss(torch.tensor(a[:, 0]), torch.tensor(b[:, 0]), torch.tensor(y, dtype=torch.float64),
                                 margin=0.1, reduction="sum").item()
    assert F.margin_ranking_loss(a[:, 0], b[:, 0], y, margin=0.1, reduction="sum") == pytest.approx(ref, rel=1e-12)


def test_dropout_training_flag_rng_and_scaling():
    x = np.ones((200, 300))
    assert F.dropout(x, 0.3, training=False) is x
    y1 = F.dropout(x, 0.3, rng=np.random.default_rng(7))
    y2 = F.dropout(x, 0.3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(y1, y2)  # the given generator decides the mask
    assert set(np.unique(y1)) == {0.0, 1.0 / 0.7}
    assert abs((y1 == 0).mean() - 0.3) < 0.01
    manual_seed(5)
    g1 = F.dropout(x, 0.5)
    manual_seed(5)
    np.testing.assert_array_equal(g1, F.dropout(x, 0.5))  # default: the global generator
    assert not np.any(F.dropout(x, 1.0))


def test_errors_name_the_function_or_component():
    x = np.ones((2, 3))
    with pytest.raises(ShapeError, match="Softmax.*dim=2"):
        F.softmax(x, dim=2)
    with pytest.raises(ConfigError, match="GELU"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ConfigError, match="F.dropout"):
        F.dropout(x, 1.5)
    with pytest.raises(ConfigError, match="F.dropout.*rng"):
        F.dropout(x, 0.5, rng=3)
    with pytest.raises(ShapeError, match="F.linear"):
        F.linear(x, np.ones((4, 5)))
    with pytest.raises(ShapeError, match="F.prelu"):
        F.prelu(x, np.ones(4))
    with pytest.raises(ShapeError, match="CrossEntropyLoss"):
        F.cross_entropy(x, np.array([0, 1, 2]))


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "erfc"])
@pytest.mark.parametrize("where", [L, L.activations])
def test_old_helper_names_still_work_with_a_deprecation_warning(name, where):
    x = np.linspace(-3, 3, 7)
    with pytest.warns(DeprecationWarning, match=f"functional.{name}"):
        old = getattr(where, name)
    assert old is getattr(F, name)
    assert name not in L.__all__ and name not in L.activations.__all__ and "functional" in L.__all__
    np.testing.assert_allclose(old(x), {"sigmoid": torch.sigmoid, "softplus": TF.softplus,
                                        "erfc": torch.special.erfc}[name](torch.tensor(x)).numpy(), rtol=1e-12)
