"""``evaluate`` and ``predict`` (mixed into :class:`~plait.train.Trainer`)."""

from __future__ import annotations

import copy
from typing import Any

from plait.core import ConfigError, get_array_module, no_grad

from ._batches import as_loader, split_batch, to_model_device
from ._fit_inputs import as_columns

__all__ = ["Evaluation"]


class Evaluation:
    """Inference over whole data sets, in eval mode and without forward caches."""

    # Set by Trainer.
    model: Any
    loss: Any
    metrics: list[Any]
    params: list[Any]
    # Also uses the Trainer's _shard_for_ranks and _epoch_logs.

    def evaluate(self, x: Any, y: Any = None, batch_size: int = 256) -> dict[str, float]:
        """Mean loss and metrics over ``x, y`` (arrays, as Keras) or ``x`` alone (``(x, y)``
        arrays, a DataLoader or a dataset), in eval mode, without forward caches.

        Args:
            x: input array ``(N, ...)`` (or a tuple of inputs), or alone a DataLoader, a
                dataset or an ``(x, y)`` tuple.
            y: default None; target array ``(N, ...)`` when ``x`` is arrays.
            batch_size: default 256 (Keras' is 32): evaluation keeps no caches, so larger
                batches cost little memory.

        Returns:
            ``{"loss": mean, metric name: value, ...}``.

        Raises:
            ConfigError: ``x`` and ``y`` of different lengths, or batches that are not
                ``(inputs..., target)`` tuples.
        """
        loader = as_loader(as_columns(x, y, "Trainer.evaluate"), batch_size, False, None, "Trainer.evaluate")
        self._shard_for_ranks(loader, "Trainer.evaluate")
        metrics = [copy.deepcopy(m) for m in self.metrics]  # leaves the training metrics' sums alone
        for m in metrics:
            m.reset()
        loss_sum, count = 0.0, 0
        was_training = getattr(self.model, "training", True)
        like = self.params[0].data if self.params else None
        self.model.eval()
        try:
            with no_grad():
                for batch in loader:
                    inputs, target = split_batch(batch, "Trainer.evaluate")
                    inputs, target = to_model_device(inputs, like), to_model_device(target, like)
                    pred = self.model(*inputs)
                    size = len(target)
                    loss_sum += float(self.loss(pred, target)) * size
                    count += size
                    for m in metrics:
                        m.update(pred, target)
        finally:
            self.model.train(was_training)
        return self._epoch_logs(loss_sum, count, metrics)

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Model outputs for every sample of ``x``: an array, a tuple of input arrays, a
        DataLoader or a dataset (targets in its batches are ignored).

        Args:
            x: the inputs ``(N, ...)``, as above.
            batch_size: default 256 (Keras' is 32).

        Returns:
            The outputs of every batch concatenated on the first axis, ``(N, ...)``.

        Raises:
            ConfigError: ``x`` holds no data.
        """
        data = x
        loader = as_loader(data, batch_size, False, None, "Trainer.predict")
        inputs_only = hasattr(data, "shape") or _all_inputs(data)  # bare arrays: no target column
        outputs = []
        was_training = getattr(self.model, "training", True)
        like = self.params[0].data if self.params else None
        self.model.eval()
        try:
            with no_grad():
                for batch in loader:
                    if not isinstance(batch, (tuple, list)):
                        inputs: tuple[Any, ...] = (batch,)
                    elif inputs_only or len(batch) == 1:
                        inputs = tuple(batch)
                    else:
                        inputs = tuple(batch[:-1])
                    outputs.append(self.model(*to_model_device(inputs, like)))
        finally:
            self.model.train(was_training)
        if not outputs:
            raise ConfigError("Trainer.predict: no data")
        return get_array_module(outputs[0]).concatenate(outputs)


def _all_inputs(data: Any) -> bool:
    """True when ``predict`` got bare input arrays (a tuple of several model inputs)."""
    return isinstance(data, (tuple, list)) and all(hasattr(a, "shape") for a in data)
