"""Saving and restoring a Trainer's complete state (mixed into :class:`~plait.train.Trainer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plait.core import CheckpointError, ConfigError, PlaitError, get_rng

from . import checkpoint as ckpt

__all__ = ["TrainerState"]


class TrainerState:
    """What makes ``fit(resume_from=...)`` exact: every piece of state that decides the
    next update is written by :meth:`save_checkpoint` and restored by :meth:`load_checkpoint`."""

    # Set by Trainer.__init__ / fit.
    model: Any
    optimizer: Any
    schedulers: list[tuple[Any, str]]
    metrics: list[Any]
    grad_accumulation: int
    epoch: int
    global_step: int
    skipped_batches: int
    _seeded: bool
    _in_epoch: bool
    _pending_grads: bool
    _loss_sum: float
    _count: int
    _resume_progress: dict[str, Any] | None
    _train_loader: Any
    _callback_list: Any

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> Path:
        """Write everything needed to resume exactly (see :mod:`plait.train.checkpoint`).

        Usually called at the end of an epoch (``ModelCheckpoint``). A save from inside an
        epoch (e.g. a callback's ``on_batch_end``) is exact too: the epoch's running loss
        and metric sums and the loader's position are saved, and resuming continues with
        the next batch. It must fall on an optimizer-step boundary: gradients accumulated
        for a step not yet taken are not saved, so such a save raises.
        """
        if self._pending_grads:
            raise CheckpointError(
                f"{path}: cannot checkpoint in the middle of a gradient-accumulation group "
                f"(grad_accumulation={self.grad_accumulation}); save after an optimizer step"
            )
        loader = self._train_loader
        callbacks = self._callback_list.keyed() if self._callback_list is not None else {}
        state = {
            "epoch": self.epoch,
            "step": self.global_step,
            "skipped_batches": self.skipped_batches,
            "schedulers": [s.state_dict() for s, _ in self.schedulers],
            "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
            "global_rng": get_rng().bit_generator.state,
            "seeded": self._seeded,
            "callbacks": {k: cb.state_dict() for k, cb in callbacks.items() if hasattr(cb, "state_dict")},
            "epoch_progress": self._progress_state(),
        }
        return ckpt.save_checkpoint(path, self.model.state_dict(), self.optimizer.state_dict(), state)

    def load_checkpoint(self, path: str | Path) -> ckpt.Checkpoint:
        """Restore model, optimizer, schedulers, loader, RNG, history and callback states."""
        loaded = ckpt.load_checkpoint(path)
        state = loaded.trainer_state
        where = loaded.path
        try:
            self.model.load_state_dict(loaded.model_state)
            self.optimizer.load_state_dict(loaded.optimizer_state)
            saved_schedulers = state["schedulers"]
            if len(saved_schedulers) != len(self.schedulers):
                raise ConfigError(f"it holds {len(saved_schedulers)} scheduler states, this trainer has {len(self.schedulers)}")
            for (scheduler, _), s in zip(self.schedulers, saved_schedulers):
                scheduler.load_state_dict(s)
            if state.get("loader") is not None and hasattr(self._train_loader, "load_state_dict"):
                self._train_loader.load_state_dict(state["loader"])
            get_rng().bit_generator.state = state["global_rng"]
            callbacks = self._callback_list.keyed() if self._callback_list is not None else {}
            for key, cb_state in state["callbacks"].items():
                if key in callbacks and hasattr(callbacks[key], "load_state_dict"):
                    callbacks[key].load_state_dict(cb_state)
            self.epoch = int(state["epoch"])
            self.global_step = int(state["step"])
            self.skipped_batches = int(state.get("skipped_batches", 0))
            self._seeded = bool(state.get("seeded", True))
            self._resume_progress = state.get("epoch_progress")
        except CheckpointError:
            raise
        except (PlaitError, KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
            raise CheckpointError(f"{where}: cannot resume from this checkpoint: {type(exc).__name__}: {exc}") from exc
        return loaded

    def _restore_progress(self, loader: Any) -> int:
        """Reset the epoch's running sums, or restore them after a mid-epoch checkpoint;
        returns the index of the first batch to run."""
        progress, self._resume_progress = self._resume_progress, None
        for m in self.metrics:
            m.reset()
        if progress is None:
            self._loss_sum, self._count = 0.0, 0
            return 0
        self._loss_sum, self._count = float(progress["loss_sum"]), int(progress["count"])
        for m, saved in zip(self.metrics, progress["metrics"]):
            for key, value in saved.items():
                setattr(m, key, value.copy() if hasattr(value, "copy") else value)
        return int(getattr(loader, "resume_position", 0))

    def _progress_state(self) -> dict[str, Any] | None:
        """The running sums of an epoch in progress (for a checkpoint saved mid-epoch)."""
        if not self._in_epoch:
            return None
        return {
            "loss_sum": self._loss_sum,
            "count": self._count,
            "metrics": [{k: getattr(m, k) for k in getattr(m, "state_names", ())} for m in self.metrics],
        }
