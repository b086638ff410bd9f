"""``default_collate``: a list of samples -> one batch, with ``torch.utils.data.default_collate``'s rules.

=========================  ==========================================================
sample element             batch
=========================  ==========================================================
array (NumPy or CuPy)      the arrays stacked on a new first axis (B, *shape)
NumPy scalar               an array of them (B,), same dtype
``float`` / ``int`` /      float64 / int64 / bool array (B,) (torch: a float64/int64/
``bool``                   bool tensor)
``str`` / ``bytes``        the list of them, unchanged
dict                       a dict with the same keys, each value collated
namedtuple                 the same namedtuple, each field collated
tuple / list               a *list* of the collated positions, as torch returns (all
                           samples must have the same length); ``x, y = batch`` works
=========================  ==========================================================
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from plait.core import ConfigError, ShapeError, get_array_module

__all__ = ["default_collate", "indexes_batches"]

_MAX_DEPTH = 64


def default_collate(batch: Sequence[Any]) -> Any:
    """Collate ``batch``, a list of samples, into one batch (see the module table).

    Args:
        batch: a non-empty list of ``B`` samples of the same structure.

    Raises:
        ConfigError: ``batch`` is empty or not a list, or samples of unsupported types.
        ShapeError: arrays (or tuples) of different shapes (lengths) across samples.
    """
    if not isinstance(batch, Sequence) or isinstance(batch, (str, bytes)) or not batch:
        raise ConfigError(f"default_collate: expected a non-empty list of samples, got {type(batch).__name__}")
    return _collate(list(batch), 0)


def _collate(batch: list[Any], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ConfigError(f"default_collate: samples are nested more than {_MAX_DEPTH} levels deep")
    first = batch[0]
    if hasattr(first, "shape") and hasattr(first, "dtype"):
        if first.dtype == object or first.dtype.kind in "USV":
            raise ConfigError(f"default_collate: cannot stack arrays of dtype {first.dtype}")
        if getattr(first, "ndim", 0) == 0 and isinstance(first, np.generic):
            return np.array(batch)
        shapes = {tuple(getattr(s, "shape", ())) for s in batch}
        if len(shapes) != 1:
            raise ShapeError(f"default_collate: samples must have equal shapes to be stacked, got {sorted(shapes)}")
        return get_array_module(first).stack(batch)
    if isinstance(first, bool):
        return np.array(batch, dtype=bool)
    if isinstance(first, numbers.Integral):
        return np.array(batch, dtype=np.int64)
    if isinstance(first, numbers.Real):
        return np.array(batch, dtype=np.float64)
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, Mapping):
        keys = list(first)
        for s in batch:
            if not isinstance(s, Mapping) or set(s) != set(keys):
                raise ConfigError(f"default_collate: every sample must be a dict with keys {keys}, got {s!r:.80}")
        return {k: _collate([s[k] for s in batch], depth + 1) for k in keys}
    if isinstance(first, (tuple, list)):
        n = len(first)
        if any(not isinstance(s, (tuple, list)) or len(s) != n for s in batch):
            raise ShapeError(f"default_collate: each sample must be a sequence of {n} items, like the first one")
        columns = [_collate([s[i] for s in batch], depth + 1) for i in range(n)]
        if hasattr(first, "_fields"):  # a namedtuple
            return type(first)(*columns)
        return columns
    raise ConfigError(
        "default_collate: a sample must hold arrays, numbers, strings, dicts or tuples/lists of them; "
        f"found {type(first).__name__}"
    )


def indexes_batches(dataset: Any) -> bool:
    """Whether ``dataset[idx]`` with an int64 index array ``idx`` returns a whole batch.

    True for NumPy/CuPy arrays (and memmaps) and for datasets declaring ``batched = True``
    (``ArrayDataset``, ``TensorDataset``, ``Subset`` of those, ``TextWindowDataset``);
    everything else is indexed one sample at a time, as torch does.
    """
    declared = getattr(dataset, "batched", None)
    if declared is not None:
        return bool(declared)
    return hasattr(dataset, "shape") and hasattr(dataset, "dtype") and getattr(dataset, "ndim", 0) >= 1
