"""``Callback``: hooks the Trainer calls, with Keras' names.

Every hook receives a ``logs`` dict. Batch hooks see ``{"loss", "size", "step"}``
(``loss`` is the batch loss; ``step`` the number of optimizer steps taken so far); epoch
hooks see the epoch's averages, metrics and ``val_*`` entries. A callback can stop
training with ``self.trainer.stop_training = True``.

Callbacks run in increasing ``order`` (stable): ``LearningRateMonitor`` (-10) adds to the
epoch logs before they are recorded in the History (-5); ``ModelCheckpoint`` (100) runs
after everyone else so the state it saves is the state at the end of the epoch.
Callbacks with ``main_process_only = True`` (those that print or write files) run only on
the main process of a data-parallel strategy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Base class: override the hooks you need. ``self.trainer`` is set by the Trainer."""

    order = 0
    main_process_only = False

    def __init__(self) -> None:
        self.trainer: Any = None
        self.params: dict[str, Any] = {}

    def set_trainer(self, trainer: Any) -> None:
        """Called by the Trainer before training: ``self.trainer`` (and :attr:`model`) become available.

        Args:
            trainer: the :class:`~plait.train.Trainer` running this callback.
        """
        self.trainer = trainer

    def set_params(self, params: dict[str, Any]) -> None:
        """Keras' ``params`` of the current ``fit``: ``epochs``, ``steps`` (batches per
        epoch, None for an iterable without length), ``batch_size``, ``samples``,
        ``verbose``, ``do_validation`` and ``metrics`` (every epoch-log key that can appear).

        Args:
            params: that dict (copied).
        """
        self.params = dict(params)

    @property
    def model(self) -> Any:
        return self.trainer.model if self.trainer is not None else None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Once, before the first epoch of ``fit`` (also when resuming).

        Args:
            logs: default None; an empty dict from the Trainer.
        """

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Once, after the last epoch (or an early stop).

        Args:
            logs: default None; ``{"epoch", "step"}`` from the Trainer: the epochs completed
                and the optimizer steps taken.
        """

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Before each epoch.

        Args:
            epoch: the epoch index, from 0 (as Keras).
            logs: default None; an empty dict from the Trainer.
        """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """After each epoch, validation included.

        Args:
            epoch: the epoch index, from 0.
            logs: default None; the epoch's averages: ``loss``, every metric and the
                ``val_*`` entries (callbacks with a lower ``order`` may have added more,
                e.g. ``lr``). A callback may add entries.
        """

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Before each training batch.

        Args:
            batch: the batch index within the epoch, from 0.
            logs: default None; an empty dict from the Trainer.
        """

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """After each training batch.

        Args:
            batch: the batch index within the epoch, from 0.
            logs: default None; ``{"loss", "size", "step"}``: the batch loss (a float, NaN
                or inf included), its sample count and the 1-based optimizer step it
                belongs to.
        """

    # -- checkpointing: what must survive a resume (JSON-able values and arrays) ------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (from a checkpoint: validate before use).

        Args:
            state: the saved dict (JSON values and arrays, read back from a file).

        Raises:
            CheckpointError: (in subclasses) a missing or malformed entry.
        """
        return None


class CallbackList:
    """Calls a hook on every callback in ``order``."""

    def __init__(self, callbacks: Iterable[Callback], trainer: Any) -> None:
        self.callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
        for cb in self.callbacks:
            if hasattr(cb, "set_trainer"):
                cb.set_trainer(trainer)
            else:
                cb.trainer = trainer

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def set_params(self, params: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if hasattr(cb, "set_params"):
                cb.set_params(params)
            else:
                cb.params = dict(params)

    def call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            method = getattr(cb, hook, None)
            if method is not None:
                method(*args)

    def keyed(self) -> dict[str, Callback]:
        """Stable names for checkpointing: ``<ClassName>-<n>`` (n-th callback of that class)."""
        seen: dict[str, int] = {}
        out = {}
        for cb in self.callbacks:
            name = type(cb).__name__
            out[f"{name}-{seen.get(name, 0)}"] = cb
            seen[name] = seen.get(name, 0) + 1
        return out
