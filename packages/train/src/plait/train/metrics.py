"""Streaming metrics: ``reset()``, ``update(pred, target)`` per batch, ``compute()`` at the end.

Every metric keeps only running sums (host float64/int64 arrays named in ``state_names``),
so a data-parallel strategy can add them up across processes before ``compute()``.
Updates are vectorised and run on the arrays' own backend (NumPy or CuPy).

Conventions: ``pred`` holds scores/logits/probabilities with classes on the last axis,
(N, ..., C); ``target`` holds integer class ids (N, ...) or one-hot/probability rows
shaped like ``pred`` (reduced with argmax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from plait.core import ConfigError, DTypeError, ShapeError, check_size, get_array_module, to_numpy

__all__ = [
    "METRICS",
    "MAE",
    "MSE",
    "Accuracy",
    "F1Score",
    "Metric",
    "Perplexity",
    "Precision",
    "Recall",
    "TopKAccuracy",
    "get_metric",
]


class Metric:
    """Base class: subclasses list their running sums in ``state_names``."""

    name = "metric"
    higher_is_better = True
    state_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        for key in self.state_names:
            setattr(self, key, np.zeros(self._state_shape(key), dtype=np.float64))

    def _state_shape(self, key: str) -> tuple[int, ...]:
        return ()

    def update(self, pred: Any, target: Any) -> None:
        """Add one batch to the running sums (NumPy or CuPy arrays; no copy is kept).

        Args:
            pred: the model's output for the batch (shapes: see each metric).
            target: the batch's targets.
        """
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError

    def merge(self, reduce: Callable[[np.ndarray], np.ndarray]) -> None:
        """Replace every running sum by ``reduce(sum)`` (e.g. an all-reduce across ranks).

        Args:
            reduce: ``array -> array`` of the same shape (a float64 host array in and out).
        """
        for key in self.state_names:
            setattr(self, key, np.asarray(reduce(getattr(self, key)), dtype=np.float64))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _numeric(x: Any, who: str, what: str) -> Any:
    """``x`` as an array of real numbers (bools and integers included); anything else is a DTypeError."""
    arr = get_array_module(x).asarray(x)
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"{who}: expected {what} as a real numeric array, got dtype {arr.dtype}")
    return arr


def _class_ids(pred: Any, target: Any, who: str) -> tuple[Any, Any]:
    """(predicted ids, target ids), both integer arrays of the same shape."""
    pred, target = _numeric(pred, who, "pred"), _numeric(target, who, "target")
    binary = pred.shape[-1:] == (1,) and np.issubdtype(pred.dtype, np.floating)
    if binary and (pred.ndim == target.ndim + 1 or pred.shape == target.shape):
        pred_ids = (pred[..., 0] > 0.5).astype(np.int64)  # one probability per sample
        target = target.reshape(pred_ids.shape)
    elif pred.ndim == target.ndim + 1:
        pred_ids = pred.argmax(axis=-1)
    elif pred.shape == target.shape and np.issubdtype(pred.dtype, np.integer):
        pred_ids = pred
    elif pred.shape == target.shape and pred.ndim >= 2:
        pred_ids, target = pred.argmax(axis=-1), target.argmax(axis=-1)
    else:
        raise ShapeError(
            f"{who}: expected pred (N, ..., C) with integer target (N, ...), or matching one-hot shapes; "
            f"got pred {tuple(pred.shape)} and target {tuple(target.shape)}"
        )
    if pred_ids.shape != target.shape:
        raise ShapeError(f"{who}: pred {tuple(pred.shape)} does not match target {tuple(target.shape)}")
    return pred_ids, target.astype(np.int64)


class Accuracy(Metric):
    """Fraction of samples whose arg-max class equals the target (0.5 threshold for (N, 1))."""

    name = "accuracy"
    state_names = ("correct", "total")

    def update(self, pred: Any, target: Any) -> None:
        """Count the batch's correct predictions.

        Args:
            pred: scores, logits or probabilities ``(N, ..., C)`` (classes last), or
                ``(N, 1)`` / ``(N,)``-matching probabilities for a binary problem
                (threshold 0.5), or integer class ids shaped like ``target``.
            target: integer class ids ``(N, ...)``, or one-hot/probability rows shaped like
                ``pred`` (reduced with argmax).

        Raises:
            DTypeError: a non-numeric array.
            ShapeError: shapes that fit none of the above.
        """
        pred_ids, target_ids = _class_ids(pred, target, "Accuracy")
        self.correct += float((pred_ids == target_ids).sum())
        self.total += target_ids.size

    def compute(self) -> float:
        return float(self.correct / self.total) if self.total else float("nan")


class TopKAccuracy(Metric):
    """Fraction of samples whose target is among the ``k`` highest scores.

    Args:
        k: default 5 (as Keras' ``TopKCategoricalAccuracy``); how many of the highest
            scores count (a class count below ``k`` makes every sample correct).

    Raises:
        ConfigError: ``k`` is not an integer, or ``k < 1``.
    """

    state_names = ("correct", "total")

    def __init__(self, k: int = 5) -> None:
        self.k = check_size(k, "TopKAccuracy", "k")
        self.name = f"top{self.k}_accuracy"
        super().__init__()

    def update(self, pred: Any, target: Any) -> None:
        """Count the samples whose target is among the ``k`` highest scores.

        Args:
            pred: scores ``(N, ..., C)``.
            target: integer class ids ``(N, ...)``.

        Raises:
            DTypeError: a non-numeric array.
            ShapeError: ``pred.shape[:-1] != target.shape``.
        """
        pred, target = _numeric(pred, "TopKAccuracy", "pred"), _numeric(target, "TopKAccuracy", "target")
        xp = get_array_module(pred)
        if pred.ndim != target.ndim + 1 or pred.shape[:-1] != target.shape:
            raise ShapeError(f"TopKAccuracy: pred must be (N, ..., C) for target (N, ...), got {pred.shape}, {target.shape}")
        k = min(self.k, pred.shape[-1])
        top = xp.argpartition(pred, -k, axis=-1)[..., -k:]
        self.correct += float((top == target[..., None]).any(axis=-1).sum())
        self.total += target.size

    def compute(self) -> float:
        return float(self.correct / self.total) if self.total else float("nan")

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


class _ConfusionMetric(Metric):
    """Macro-averaged scores from a running confusion matrix (rows: target, cols: pred).

    Like scikit-learn's ``average="macro"``: the mean over classes that occur in the
    targets or the predictions seen so far; a class with a zero denominator scores 0.

    Args:
        num_classes: default None (taken from ``pred``'s last axis, or grown to the largest
            id seen); the number of classes.
    """

    state_names = ("confusion",)

    def __init__(self, num_classes: int | None = None) -> None:
        self.num_classes = num_classes
        super().__init__()

    def _state_shape(self, key: str) -> tuple[int, ...]:
        c = self.num_classes or 0
        return (c, c)

    def update(self, pred: Any, target: Any) -> None:
        """Add the batch to the confusion matrix.

        Args:
            pred: scores, logits or probabilities ``(N, ..., C)`` (classes last), or
                ``(N, 1)`` / ``(N,)``-matching probabilities for a binary problem
                (threshold 0.5), or integer class ids shaped like ``target``.
            target: integer class ids ``(N, ...)``, or one-hot/probability rows shaped like
                ``pred`` (reduced with argmax).

        Raises:
            DTypeError: a non-numeric array.
            ShapeError: shapes that fit none of the above, or a negative class id.
        """
        xp = get_array_module(pred)
        pred_ids, target_ids = _class_ids(pred, target, type(self).__name__)
        if target_ids.size and min(int(target_ids.min()), int(pred_ids.min())) < 0:
            raise ShapeError(f"{type(self).__name__}: class ids must not be negative, got {int(target_ids.min())}")
        pred = get_array_module(pred).asarray(pred)
        c = self.num_classes or (pred.shape[-1] if pred.ndim == target_ids.ndim + 1 and pred.shape[-1] > 1 else None)
        if c is None:
            c = int(max(int(pred_ids.max()), int(target_ids.max()))) + 1 if pred_ids.size else 0
            c = max(c, 2)
        if c > self.confusion.shape[0]:
            grown = np.zeros((c, c))
            n = self.confusion.shape[0]
            grown[:n, :n] = self.confusion
            self.confusion = grown
        c = self.confusion.shape[0]
        flat = target_ids.ravel() * c + pred_ids.ravel()
        counts = xp.bincount(flat, minlength=c * c)
        if counts.size != c * c:
            raise ShapeError(f"{type(self).__name__}: class id out of range [0, {c})")
        self.confusion += to_numpy(counts).reshape(c, c)

    def _per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cm = self.confusion
        tp = np.diag(cm)
        predicted = cm.sum(axis=0)
        actual = cm.sum(axis=1)
        present = (predicted + actual) > 0
        return tp, predicted, actual, present

    @staticmethod
    def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)

    def compute(self) -> float:
        tp, predicted, actual, present = self._per_class()
        if not present.any():
            return float("nan")
        return float(self._scores(tp, predicted, actual)[present].mean())

    def _scores(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Precision(_ConfusionMetric):
    """Macro precision: mean over classes of TP / (TP + FP)."""

    name = "precision"

    def _scores(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        return self._ratio(tp, predicted)


class Recall(_ConfusionMetric):
    """Macro recall: mean over classes of TP / (TP + FN)."""

    name = "recall"

    def _scores(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        return self._ratio(tp, actual)


class F1Score(_ConfusionMetric):
    """Macro F1: mean over classes of 2 TP / (2 TP + FP + FN)."""

    name = "f1"

    def _scores(self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        return self._ratio(2 * tp, predicted + actual)


class _ErrorMetric(Metric):
    name = "error"
    higher_is_better = False
    state_names = ("total_error", "count")

    def update(self, pred: Any, target: Any) -> None:
        """Add the batch's errors, element by element.

        Args:
            pred: predictions of any shape.
            target: targets of the same shape (``(N,)`` against ``(N, 1)`` is accepted).

        Raises:
            DTypeError: a non-numeric array.
            ShapeError: the shapes differ beyond size-1 axes.
        """
        who = type(self).__name__
        pred, target = _numeric(pred, who, "pred"), _numeric(target, who, "target")
        if pred.shape != target.shape:
            if [d for d in pred.shape if d != 1] == [d for d in target.shape if d != 1]:  # (N,) vs (N, 1)
                target = target.reshape(pred.shape)
            else:
                raise ShapeError(f"{type(self).__name__}: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        diff = pred.astype(np.float64, copy=False) - target
        self.total_error += float(self._error(diff).sum())
        self.count += diff.size

    def compute(self) -> float:
        return float(self.total_error / self.count) if self.count else float("nan")


class MSE(_ErrorMetric):
    """Mean squared error over every element."""

    name = "mse"

    @staticmethod
    def _error(diff: Any) -> Any:
        return diff * diff


class MAE(_ErrorMetric):
    """Mean absolute error over every element."""

    name = "mae"

    @staticmethod
    def _error(diff: Any) -> Any:
        return abs(diff)


class Perplexity(Metric):
    """exp(mean negative log-likelihood of the target tokens).

    ``pred``: logits (N, ..., V) (or probabilities with ``from_logits=False``);
    ``target``: int ids (N, ...); positions equal to ``ignore_index`` are skipped.

    Args:
        from_logits: default True; False reads ``pred`` as probabilities.
        ignore_index: default None (every position counts); a target id to skip (padding).
    """

    name = "perplexity"
    higher_is_better = False
    state_names = ("nll", "count")

    def __init__(self, from_logits: bool = True, ignore_index: int | None = None) -> None:
        self.from_logits = from_logits
        self.ignore_index = ignore_index
        super().__init__()

    def update(self, pred: Any, target: Any) -> None:
        """Add the batch's negative log-likelihood.

        Args:
            pred: logits (or probabilities) ``(N, ..., V)``.
            target: integer token ids ``(N, ...)`` in ``[0, V)`` or ``ignore_index``.

        Raises:
            DTypeError: a non-numeric array.
            ShapeError: ``pred.shape[:-1] != target.shape``, or an id out of range.
        """
        pred, target = _numeric(pred, "Perplexity", "pred"), _numeric(target, "Perplexity", "target").astype(np.int64)
        xp = get_array_module(pred)
        if pred.ndim != target.ndim + 1 or pred.shape[:-1] != target.shape:
            raise ShapeError(f"Perplexity: pred must be (N, ..., V) for target (N, ...), got {pred.shape}, {target.shape}")
        keep = xp.ones(target.shape, dtype=bool) if self.ignore_index is None else target != self.ignore_index
        if bool((keep & ((target < 0) | (target >= pred.shape[-1]))).any()):
            raise ShapeError(f"Perplexity: target ids must lie in [0, {pred.shape[-1]}) (or be ignore_index)")
        safe = xp.where(keep, target, 0)
        scores = pred.astype(np.float64, copy=False)
        picked = xp.take_along_axis(scores, safe[..., None], axis=-1)[..., 0]
        if self.from_logits:
            peak = scores.max(axis=-1)
            log_z = peak + xp.log(xp.exp(scores - peak[..., None]).sum(axis=-1))
            nll = log_z - picked
        else:
            nll = -xp.log(picked)
        self.nll += float((nll * keep).sum())
        self.count += float(keep.sum())

    def compute(self) -> float:
        return float(np.exp(self.nll / self.count)) if self.count else float("nan")


METRICS: dict[str, type[Metric]] = {
    "accuracy": Accuracy,
    "top_k_accuracy": TopKAccuracy,
    "precision": Precision,
    "recall": Recall,
    "f1": F1Score,
    "mse": MSE,
    "mae": MAE,
    "perplexity": Perplexity,
}


def get_metric(spec: Any) -> Any:
    """A metric instance from an instance, a class, or a registered name (``"accuracy"``)."""
    if isinstance(spec, str):
        from plait.core import registry  # noqa: PLC0415 - the registry loads plugins lazily

        return registry.metrics.get(spec)()
    if isinstance(spec, type):
        return spec()
    if not all(callable(getattr(spec, m, None)) for m in ("reset", "update", "compute")):
        raise ConfigError(f"{spec!r} is not a metric: it needs reset(), update(pred, target) and compute()")
    return spec
