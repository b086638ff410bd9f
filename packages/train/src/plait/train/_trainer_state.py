"""Saving and restoring a Trainer's complete state (mixed into :class:`~plait.train.Trainer`)."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plait.core import CheckpointError, ConfigError, PlaitError, describe_model, get_rng
from plait.core.random import check_rng_state, set_rng_state

from . import checkpoint as ckpt

_KNOWN_KEYS = frozenset({"epoch", "step", "skipped_batches", "schedulers", "loader", "global_rng", "seeded",
                         "callbacks", "epoch_progress"})
_MAX_COUNT = 2**62


def _field_error(file: Path, field: str, expected: str, got: Any) -> CheckpointError:
    return CheckpointError(f"{file}: trainer.{field}: expected {expected}, got {repr(got)[:80]}")


def _count(state: dict[str, Any], key: str, file: Path, default: int | None = None) -> int:
    value = state.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise _field_error(file, key, "an integer from 0 to 2**62", value)
    return value


def _check_progress(progress: Any, metrics: list[Any], file: Path) -> None:
    if progress is None:
        return
    if not isinstance(progress, dict) or set(progress) != {"loss_sum", "count", "metrics"}:
        raise _field_error(file, "epoch_progress", "null or {loss_sum, count, metrics}", progress)
    loss = progress["loss_sum"]
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
        raise _field_error(file, "epoch_progress.loss_sum", "a finite number", loss)
    _count(progress, "count", file)
    saved = progress["metrics"]
    if not isinstance(saved, list) or len(saved) != len(metrics):
        raise _field_error(file, "epoch_progress.metrics", f"a list of {len(metrics)} metric states", saved)
    for i, (m, values) in enumerate(zip(metrics, saved)):
        allowed = set(getattr(m, "state_names", ()))
        if not isinstance(values, dict) or not set(values) <= allowed:
            raise _field_error(file, f"epoch_progress.metrics[{i}]", f"an object with keys from {sorted(allowed)}",
                               values)


def _describe(model: Any) -> dict[str, Any] | None:
    """How the checkpoint's config.json names the model (None for a model without a registered name)."""
    try:
        return describe_model(model)
    except (PlaitError, TypeError, ValueError):  # not registered, or arguments without a JSON form
        return None

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

        Args:
            path: the checkpoint folder to write (replaced in one step).

        Returns:
            The checkpoint folder.

        Raises:
            CheckpointError: inside a gradient-accumulation group, or the write failed.
        """
        if self._pending_grads:
            raise CheckpointError(
                f"{path}: cannot checkpoint in the middle of a gradient-accumulation group "
                f"(grad_accumulation={self.grad_accumulation}); save after an optimizer step"
            )
        state = {
            "epoch": self.epoch,
            "step": self.global_step,
            "skipped_batches": self.skipped_batches,
            **self._component_states(),
            "seeded": self._seeded,
            "epoch_progress": self._progress_state(),
        }
        return ckpt.save_checkpoint(path, self.model.state_dict(), self.optimizer.state_dict(), state,
                                    model_description=_describe(self.model))

    def load_checkpoint(self, path: str | Path) -> ckpt.Checkpoint:
        """Restore model, optimizer, schedulers, loader, RNG, history and callback states.

        Args:
            path: a checkpoint folder, or a run folder whose ``latest`` pointer names one.

        Returns:
            The loaded :class:`~plait.train.Checkpoint`.

        Raises:
            CheckpointError: the checkpoint is missing or damaged, or does not fit this
                trainer (another model, optimizer or number of schedulers). Loading is all
                or nothing: when any part is refused (the model, the optimizer, a scheduler,
                the loader or a callback), every part restored before it is put back, so the
                trainer is exactly as it was before the call.
        """
        loaded = ckpt.load_checkpoint(path)
        state = loaded.trainer_state
        where = loaded.path
        file = where / ckpt.STATE_FILE
        unknown = set(state) - _KNOWN_KEYS
        if unknown:
            raise CheckpointError(f"{file}: trainer: unknown key(s) {', '.join(sorted(map(repr, unknown)))[:200]}")
        epoch, step = _count(state, "epoch", file), _count(state, "step", file)
        skipped = _count(state, "skipped_batches", file, 0)
        rng_state = check_rng_state(state.get("global_rng"), source=f"{file}: trainer.global_rng", error=CheckpointError)
        _check_progress(state.get("epoch_progress"), self.metrics, file)
        if not isinstance(state.get("callbacks"), dict) or not isinstance(state.get("schedulers"), list):
            raise _field_error(file, "callbacks/schedulers", "an object and a list", state.get("callbacks"))
        # everything the loads below change, copied, to put back if any part is refused
        before = copy.deepcopy((self.model.state_dict(), self.optimizer.state_dict(), self._component_states()))
        try:
            self._restore(loaded.model_state, loaded.optimizer_state, {**state, "global_rng": rng_state}, file)
            self.epoch, self.global_step, self.skipped_batches = epoch, step, skipped
            self._seeded = bool(state.get("seeded", True))
            self._resume_progress = state.get("epoch_progress")
        except (PlaitError, KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError,
                OverflowError) as exc:
            self._restore(*before)
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{where}: cannot resume from this checkpoint: {type(exc).__name__}: "
                                  f"{str(exc)[:300]}") from exc
        return loaded

    def _component_states(self) -> dict[str, Any]:
        """The schedulers', training loader's, global RNG's and callbacks' states (not copied)."""
        loader = self._train_loader
        callbacks = self._callback_list.keyed() if self._callback_list is not None else {}
        return {
            "schedulers": [s.state_dict() for s, _ in self.schedulers],
            "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
            "global_rng": get_rng().bit_generator.state,
            "callbacks": {k: cb.state_dict() for k, cb in callbacks.items() if hasattr(cb, "state_dict")},
        }

    def _restore(self, model_state: Any, optimizer_state: Any, state: Mapping[str, Any],
                 file: Path | None = None) -> None:
        """Load every part of a trainer's state: a checkpoint's (its RNG state already checked),
        or the copy :meth:`load_checkpoint` takes before loading one."""
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)
        saved_schedulers = state["schedulers"]
        if len(saved_schedulers) != len(self.schedulers):
            raise ConfigError(f"it holds {len(saved_schedulers)} scheduler states, this trainer has {len(self.schedulers)}")
        for (scheduler, _), s in zip(self.schedulers, saved_schedulers):
            scheduler.load_state_dict(s)
        if state.get("loader") is not None and hasattr(self._train_loader, "load_state_dict"):
            self._train_loader.load_state_dict(state["loader"])
        set_rng_state(state["global_rng"])
        callbacks = self._callback_list.keyed() if self._callback_list is not None else {}
        for key, cb_state in state["callbacks"].items():
            if key in callbacks and hasattr(callbacks[key], "load_state_dict"):
                try:
                    callbacks[key].load_state_dict(cb_state)
                except (PlaitError, KeyError, TypeError, ValueError, AttributeError, IndexError,
                        OverflowError) as exc:
                    raise CheckpointError(f"{file}: trainer.callbacks.{key[:80]}: "
                                          f"{type(exc).__name__}: {str(exc)[:400]}") from exc

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
