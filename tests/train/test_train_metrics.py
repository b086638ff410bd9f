"""Metrics against scikit-learn and hand-computed values; streaming equals one-shot."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from plait.core import ShapeError, registry
from plait.train import MAE, MSE, Accuracy, F1Score, Perplexity, Precision, Recall, TopKAccuracy

rng = np.random.default_rng(0)
N, C = 257, 6
LOGITS = rng.standard_normal((N, C)).astype(np.float32)
TARGET = rng.integers(0, C, N)
TARGET[:40] = LOGITS[:40].argmax(1)  # some signal
PRED_IDS = LOGITS.argmax(1)


def _streamed(metric, pred, target, chunks=(0, 50, 51, 200, None)):
    metric.reset()
    bounds = [b for b in chunks if b is not None] + [len(pred)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        metric.update(pred[a:b], target[a:b])
    return metric.compute()


def test_accuracy_and_top_k_match_sklearn():
    assert _streamed(Accuracy(), LOGITS, TARGET) == pytest.approx(skm.accuracy_score(TARGET, PRED_IDS), abs=1e-12)
    for k in (1, 2, 3):
        expected = skm.top_k_accuracy_score(TARGET, LOGITS, k=k, labels=np.arange(C))
        assert _streamed(TopKAccuracy(k), LOGITS, TARGET) == pytest.approx(expected, abs=1e-12)
    one_hot = np.eye(C)[TARGET]
    assert _streamed(Accuracy(), LOGITS, one_hot) == pytest.approx(skm.accuracy_score(TARGET, PRED_IDS))
    probs = rng.random((20, 1))
    labels = rng.integers(0, 2, 20)
    assert _streamed(Accuracy(), probs, labels, (0, 7)) == pytest.approx(np.mean((probs[:, 0] > 0.5) == labels))


@pytest.mark.parametrize("cls,fn", [(Precision, skm.precision_score), (Recall, skm.recall_score), (F1Score, skm.f1_score)])
def test_macro_precision_recall_f1_match_sklearn(cls, fn):
    expected = fn(TARGET, PRED_IDS, average="macro", zero_division=0)
    assert _streamed(cls(), LOGITS, TARGET) == pytest.approx(expected, abs=1e-12)
    # A class never predicted and one absent from both: sklearn averages over labels present in either.
    t = np.array([0, 0, 1, 1, 2, 2, 4])
    p = np.array([0, 1, 1, 1, 0, 0, 4])
    got = _streamed(cls(num_classes=6), p, t, (0, 3))
    assert got == pytest.approx(fn(t, p, average="macro", zero_division=0), abs=1e-12)
    # Sequence outputs (N, T, C) flatten over positions.
    seq_logits, seq_target = LOGITS[:256].reshape(32, 8, C), TARGET[:256].reshape(32, 8)
    assert _streamed(cls(), seq_logits, seq_target, (0, 10)) == pytest.approx(
        fn(TARGET[:256], PRED_IDS[:256], average="macro", zero_division=0), abs=1e-12
    )


def test_regression_metrics_match_sklearn():
    pred = rng.standard_normal((100, 3))
    target = rng.standard_normal((100, 3))
    assert _streamed(MSE(), pred, target) == pytest.approx(skm.mean_squared_error(target, pred), rel=1e-12)
    assert _streamed(MAE(), pred, target) == pytest.approx(skm.mean_absolute_error(target, pred), rel=1e-12)
    with pytest.raises(ShapeError, match="MSE"):
        MSE().update(pred, target[:10])


def test_perplexity_is_exp_of_mean_cross_entropy():
    logits = rng.standard_normal((4, 5, 11)) * 3
    target = rng.integers(0, 11, (4, 5))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, target[..., None], -1)[..., 0]
    assert _streamed(Perplexity(), logits, target, (0, 1, 3)) == pytest.approx(math.exp(nll.mean()), rel=1e-10)
    masked = target.copy()
    masked[0] = -100
    expected = math.exp(nll[1:].mean())
    assert _streamed(Perplexity(ignore_index=-100), logits, masked, (0, 2)) == pytest.approx(expected, rel=1e-10)
    probs = np.exp(logp)
    assert _streamed(Perplexity(from_logits=False), probs, target) == pytest.approx(math.exp(nll.mean()), rel=1e-10)
    uniform = np.zeros((3, 7))  # uniform predictions: perplexity = vocabulary size
    assert _streamed(Perplexity(), uniform, np.array([0, 3, 6]), (0,)) == pytest.approx(7.0)


def test_metrics_are_registered_and_merge_for_data_parallel():
    for name in ("accuracy", "top_k_accuracy", "precision", "recall", "f1", "mse", "mae", "perplexity"):
        assert name in registry.metrics.names()
    a, b, whole = Accuracy(), Accuracy(), Accuracy()
    a.update(LOGITS[:100], TARGET[:100])
    b.update(LOGITS[100:], TARGET[100:])
    whole.update(LOGITS, TARGET)
    a.merge(lambda s: s + getattr(b, "correct" if s is a.correct else "total"))
    assert a.compute() == whole.compute()
    with pytest.raises(ShapeError, match="Accuracy"):
        Accuracy().update(LOGITS, TARGET[:5, None])
