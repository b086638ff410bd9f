"""SmoothL1Loss, KLDivLoss and the two-input CosineEmbeddingLoss / MarginRankingLoss against
torch.nn: values and gradients in float32 and float64, every reduction, the kinks torch
defines a subgradient at, and the upstream gradient of reduction="none"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import ConfigError, PlaitError, ShapeError, registry
from plait.layers import CosineEmbeddingLoss, KLDivLoss, Loss, MarginRankingLoss, PairwiseLoss, SmoothL1Loss


def _tol(dtype):
    return dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)


def _torch(fn, arrays, grad_out, float_inputs):
    ts = [torch.tensor(a, requires_grad=i < float_inputs) for i, a in enumerate(arrays)]
    out = fn(*ts)
    out.backward(torch.tensor(grad_out) if grad_out is not None else None)
    return out.detach().numpy(), [t.grad.numpy() for t in ts[:float_inputs]]


def _compare(value, grads, ref_value, ref_grads, dtype):
    np.testing.assert_allclose(np.asarray(value), ref_value, **_tol(dtype))
    for g, r in zip(grads, ref_grads):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, r, **_tol(dtype))


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_smooth_l1_matches_torch(beta, reduction, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 5)) * 2).astype(dtype)
    t = rng.standard_normal((4, 5)).astype(dtype)
    t[0, :3] = x[0, :3] - np.array([0.0, beta, -beta], dtype=dtype)  # a tie and both kinks |d| == beta
    fn = SmoothL1Loss(reduction, beta)
    value = fn(x, t)
    g = rng.standard_normal(x.shape).astype(dtype) if reduction == "none" else None
    dx = fn.backward(g)
    ref_value, (ref_dx,) = _torch(torch.nn.SmoothL1Loss(reduction=reduction, beta=beta), (x, t), g, 1)
    _compare(value, [dx], ref_value, [ref_dx], dtype)


def test_smooth_l1_is_huber_over_beta_and_l1_at_zero():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal(20), rng.standard_normal(20)
    huber = registry.build({"type": "huber", "delta": 0.3}, kind="losses")
    assert SmoothL1Loss(beta=0.3)(x, t) == pytest.approx(huber(x, t) / 0.3, rel=1e-12)
    assert SmoothL1Loss(beta=0.0)(x, t) == pytest.approx(np.abs(x - t).mean(), rel=1e-12)
    with pytest.raises(ConfigError, match="SmoothL1Loss.*beta"):
        SmoothL1Loss(beta=-1.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", [*REDUCTIONS, "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(log_target, reduction, dtype):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 5))
    x = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(dtype)
    p = rng.dirichlet(np.ones(5), 3)
    p[0, 1] = 0.0  # a zero probability: contributes 0 (torch's xlogy)
    t = (np.log(p + 1e-3) if log_target else p).astype(dtype)
    fn = KLDivLoss(reduction, log_target=log_target)
    value = fn(x, t)
    g = rng.standard_normal(x.shape).astype(dtype) if reduction == "none" else None
    dx = fn.backward(g)
    with pytest.warns(UserWarning) if reduction == "mean" else _no_warning():
        ref_value, (ref_dx,) = _torch(torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), (x, t), g, 1)
    _compare(value, [dx], ref_value, [ref_dx], dtype)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_kl_div_batchmean_is_the_kl_divergence_per_sample():
    rng = np.random.default_rng(3)
    q, p = rng.dirichlet(np.ones(4), 6), rng.dirichlet(np.ones(4), 6)
    expected = (p * np.log(p / q)).sum(axis=1).mean()
    assert KLDivLoss("batchmean")(np.log(q), p) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ConfigError, match="KLDivLoss.*batchmean"):
        KLDivLoss("avg")
    with pytest.raises(ConfigError, match="SmoothL1Loss"):  # batchmean is KLDivLoss's alone, as torch
        SmoothL1Loss("batchmean")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.5])
def test_cosine_embedding_matches_torch(margin, reduction, dtype):
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal((6, 4)).astype(dtype)
    x2[0] = 0.0  # a zero vector: cos = 0 through torch's eps
    y = np.array([1, -1, 1, -1, -1, 1])
    fn = CosineEmbeddingLoss(margin, reduction)
    value = fn(x1, x2, y)
    g = rng.standard_normal(6).astype(dtype) if reduction == "none" else None
    grads = fn.backward(g)
    assert isinstance(grads, tuple) and len(grads) == 2
    ref = torch.nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)
    ref_value, ref_grads = _torch(ref, (x1, x2, y), g, 2)
    _compare(value, grads, ref_value, ref_grads, dtype)


def test_cosine_embedding_single_pair_as_torch():
    rng = np.random.default_rng(5)
    x1, x2 = rng.standard_normal(3), rng.standard_normal(3)
    fn = CosineEmbeddingLoss(0.1)
    value = fn(x1, x2, np.array(-1))
    grads = fn.backward()
    ref_value, ref_grads = _torch(torch.nn.CosineEmbeddingLoss(0.1), (x1, x2, np.array(-1)), None, 2)
    _compare(value, grads, ref_value, ref_grads, np.float64)
    assert grads[0].shape == (3,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_matches_torch_at_the_hinge_too(margin, reduction, dtype):
    rng = np.random.default_rng(6)
    x1, x2 = rng.standard_normal(8).astype(dtype), rng.standard_normal(8).astype(dtype)
    y = np.array([1, -1, 1, -1, 1, -1, 1, -1], dtype=dtype)
    x2[:2] = x1[:2] + y[:2] * margin  # exactly on the hinge: torch passes the gradient there
    fn = MarginRankingLoss(margin, reduction)
    value = fn(x1, x2, y)
    g = rng.standard_normal(8).astype(dtype) if reduction == "none" else None
    grads = fn.backward(g)
    ref_value, ref_grads = _torch(torch.nn.MarginRankingLoss(margin=margin, reduction=reduction), (x1, x2, y), g, 2)
    _compare(value, grads, ref_value, ref_grads, dtype)


def test_a_siamese_step_shares_the_encoder_and_sums_both_gradients():
    """Both towers of one encoder: the loss's two gradients flow back in reverse order and add up."""
    from plait.layers import Linear

    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    y = np.array([1, -1, 1, 1, -1])
    enc = Linear(3, 2).astype(np.float64)
    tenc = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        tenc.weight.copy_(torch.tensor(enc.weight.data))
        tenc.bias.copy_(torch.tensor(enc.bias.data))
    fn = CosineEmbeddingLoss(0.2)
    value = fn(enc(a), enc(b), y)
    d1, d2 = fn.backward()
    enc.backward(d2)
    enc.backward(d1)
    tv = torch.nn.CosineEmbeddingLoss(0.2)(tenc(torch.tensor(a)), tenc(torch.tensor(b)), torch.tensor(y))
    tv.backward()
    assert value == pytest.approx(tv.item(), rel=1e-12)
    np.testing.assert_allclose(enc.weight.grad, tenc.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(enc.bias.grad, tenc.bias.grad.numpy(), rtol=1e-10)


def test_pairwise_losses_are_losses_and_refuse_non_sign_targets():
    for cls in (CosineEmbeddingLoss, MarginRankingLoss):
        assert issubclass(cls, PairwiseLoss) and issubclass(cls, Loss) and cls.num_inputs == 2
    with pytest.raises(ShapeError, match="MarginRankingLoss.*1 or -1"):
        MarginRankingLoss()(np.ones(3), np.zeros(3), np.array([1, 0, 1]))
    with pytest.raises(ShapeError, match=r"CosineEmbeddingLoss.*\(N, D\)"):
        CosineEmbeddingLoss()(np.ones((2, 3, 4)), np.ones((2, 3, 4)), np.ones((2, 3)))
    with pytest.raises(ConfigError, match="MarginRankingLoss.*margin"):
        MarginRankingLoss(margin="wide")
    fn = MarginRankingLoss()
    with pytest.raises(PlaitError, match="without a matching forward"):
        fn.backward()


@pytest.mark.parametrize("cfg", [{"type": "smooth_l1", "beta": 0.25}, {"type": "kl_div", "reduction": "batchmean",
                                 "log_target": True}, {"type": "cosine_embedding", "margin": 0.5},
                                 {"type": "margin_ranking", "margin": 1.0, "reduction": "sum"}])
def test_config_round_trip(cfg):
    fn = registry.build(cfg, kind="losses")
    assert registry.build(fn.config(), kind="losses").config() == fn.config()
    assert all(fn.config()[k] == v for k, v in cfg.items())
