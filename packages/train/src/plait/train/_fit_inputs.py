"""What ``Trainer.fit``/``evaluate`` accept, Keras' way and Plait's way, turned into loaders.

* ``fit(x, y)`` / ``evaluate(x, y)``: arrays (``x`` may be a tuple of several inputs);
* ``fit((x, y))``, ``fit(loader)``, ``fit(dataset)``: Plait's and torch's forms;
* ``validation_data=(x_val, y_val)`` (or a loader / dataset; ``val=`` is the same thing);
* ``validation_split=f``: the *last* ``f`` of the arrays, taken before any shuffling, as
  Keras does; ``validation_data`` wins over it, as in Keras.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from plait.core import ConfigError

from ._batches import as_loader

__all__ = ["as_columns", "fit_loaders", "resolve_callback"]


def _is_array(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype")


def as_columns(x: Any, y: Any, who: str) -> Any:
    """``(inputs..., target)`` from Keras' ``x, y``; ``x`` itself when ``y`` is None."""
    if y is None:
        return x
    inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    if not inputs or not all(_is_array(a) for a in (*inputs, y)):
        raise ConfigError(
            f"{who}: with y, x must be an array (or a tuple of input arrays) and y an array; got x={type(x).__name__}, "
            f"y={type(y).__name__}. Pass a DataLoader or dataset alone, without y"
        )
    lengths = {len(a) for a in (*inputs, y)}
    if len(lengths) != 1:
        raise ConfigError(f"{who}: x and y must have the same number of samples, got lengths {sorted(lengths)}")
    return (*inputs, y)


def fit_loaders(
    x: Any,
    y: Any,
    *,
    val: Any,
    validation_data: Any,
    validation_split: float,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
) -> tuple[Any, Any]:
    """``(train loader, validation loader or None)`` for ``Trainer.fit``."""
    if x is None:
        raise ConfigError("Trainer.fit: no training data; pass x (and y), (x, y), a DataLoader or a dataset")
    if val is not None and validation_data is not None:
        raise ConfigError("Trainer.fit: val and validation_data are the same argument; give one of them")
    val = validation_data if validation_data is not None else val
    train = as_columns(x, y, "Trainer.fit")
    split = validation_split
    if isinstance(split, bool) or not isinstance(split, numbers.Real) or not 0.0 <= split < 1.0:
        raise ConfigError(f"Trainer.fit: validation_split must be a number in [0, 1), got {split!r}")
    if split and val is None:
        train, val = _split_last(train, float(split))
    loader = as_loader(train, batch_size, shuffle, seed, "Trainer.fit(x)")
    val_loader = None if val is None else as_loader(_as_pair(val), batch_size, False, None, "Trainer.fit(validation_data)")
    return loader, val_loader


def _as_pair(val: Any) -> Any:
    """Keras' ``validation_data=(x_val, y_val)`` with ``x_val`` a tuple of inputs: flatten it."""
    if isinstance(val, (tuple, list)) and len(val) == 2 and isinstance(val[0], (tuple, list)):
        return as_columns(val[0], val[1], "Trainer.fit(validation_data)")
    return val


def _split_last(train: Any, split: float) -> tuple[Any, Any]:
    arrays = tuple(train) if isinstance(train, (tuple, list)) else (train,)
    if not all(_is_array(a) for a in arrays):
        raise ConfigError(
            "Trainer.fit: validation_split needs array data (x, y); for a DataLoader or dataset pass validation_data"
        )
    n = len(arrays[0])
    split_at = int(math.floor(n * (1.0 - split)))
    if split_at == 0 or split_at == n:
        raise ConfigError(
            f"Trainer.fit: {n} samples are not enough for validation_split={split}: "
            f"it leaves {split_at} for training and {n - split_at} for validation"
        )
    head = tuple(a[:split_at] for a in arrays)
    tail = tuple(a[split_at:] for a in arrays)
    if len(arrays) == 1:
        return head[0], tail[0]
    return head, tail


def resolve_callback(cb: Any) -> Any:
    """A callback object from itself, a registered name (``"early_stopping"``) or a config
    ``{"type": "early_stopping", "patience": 2}`` (built with ``registry.build``)."""
    if isinstance(cb, (str, dict)):
        from plait.core import registry  # noqa: PLC0415 - plugins load lazily

        if isinstance(cb, str):
            return registry.callbacks.get(cb)()
        return registry.build(cb, kind="callbacks")
    if any(hasattr(cb, h) for h in ("on_epoch_end", "on_batch_end", "on_train_begin")):
        return cb
    raise ConfigError(
        f"Trainer: {cb!r} is not a callback; give a Callback, a registered name or {{'type': name, **arguments}}"
    )
