"""Turning what users pass to ``fit``/``evaluate``/``predict`` into loaders and batches."""

from __future__ import annotations

from typing import Any

from plait.core import ConfigError, device_of, to_device

from .data import ArrayDataset, DataLoader

__all__ = ["as_loader", "split_batch", "to_model_device"]


def as_loader(data: Any, batch_size: int, shuffle: bool, seed: int | None, who: str) -> Any:
    """A DataLoader (kept as is), arrays ``x`` or ``(x, y, ...)`` (wrapped in an
    :class:`ArrayDataset`), a batch-indexable dataset, or any iterable of batches."""
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and data and all(hasattr(a, "shape") for a in data):
        return DataLoader(ArrayDataset(*data), batch_size, shuffle=shuffle, seed=seed)
    if hasattr(data, "shape"):
        return DataLoader(ArrayDataset(data), batch_size, shuffle=shuffle, seed=seed)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return DataLoader(data, batch_size, shuffle=shuffle, seed=seed)
    if hasattr(data, "__iter__"):
        return data
    raise ConfigError(
        f"{who}: expected a DataLoader, a dataset, arrays (x, y) or an iterable of batches; got {type(data).__name__}"
    )


def split_batch(batch: Any, who: str, need_target: bool = True) -> tuple[tuple[Any, ...], Any]:
    """``(inputs, target)``: the last item of a tuple batch is the target, the rest are the
    model's positional inputs. A single array is an input without target."""
    if isinstance(batch, (tuple, list)):
        if len(batch) >= 2:
            return tuple(batch[:-1]), batch[-1]
        if len(batch) == 1:
            batch = batch[0]
    if need_target:
        raise ConfigError(f"{who}: a batch must be a tuple (inputs..., target), got {type(batch).__name__}")
    return (batch,), None


def to_model_device(arrays: Any, like: Any) -> Any:
    """Move batch arrays to the device of ``like`` (a parameter array) when they differ."""
    if like is None:
        return arrays
    if device_of(like) == "cpu":
        return arrays

    def move(a: Any) -> Any:
        return to_device(a, "cuda") if hasattr(a, "shape") else a

    if isinstance(arrays, tuple):
        return tuple(move(a) for a in arrays)
    return move(arrays)
