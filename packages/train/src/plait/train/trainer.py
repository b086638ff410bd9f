"""``Trainer``: Keras-style ``fit`` / ``evaluate`` / ``predict`` over any Module.

One optimizer step::

    pred = model(*inputs)                 # forward caches
    value = loss(pred, target)            # float
    model.backward(loss.backward() * s)   # s = 1 / (batches in this accumulation group)
    strategy.average_gradients(params)    # identity for one process (MPI: mean over ranks)
    clip_grad_norm_(params, clip)         # optional
    optimizer.step(); model.zero_grad(); step-interval schedulers step

Non-finite losses are caught *before* backward, so a bad batch never reaches the
weights. Then ``on_batch_end`` runs with the NaN loss (``TerminateOnNaN`` stops training
there); otherwise ``nan_policy`` decides: ``"raise"`` (default) raises
:class:`NonFiniteLossError` naming the epoch, batch and global step; ``"skip"`` drops the
batch (counted in ``trainer.skipped_batches``) and goes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from plait.core import ConfigError, PlaitError, manual_seed

from ._batches import split_batch, to_model_device
from ._evaluation import Evaluation
from ._fit_inputs import fit_loaders, resolve_callback
from ._model_checks import check_output_activation
from ._trainer_state import TrainerState
from .callbacks.base import CallbackList
from .callbacks.progress import ProgressBar
from .distributed import get_strategy
from .history import History
from .metrics import get_metric

__all__ = ["NonFiniteLossError", "Trainer"]


class NonFiniteLossError(PlaitError, FloatingPointError):
    """The loss of a training batch was NaN or infinite (``nan_policy="raise"``)."""


class Trainer(TrainerState, Evaluation):
    """Trains ``model`` with ``loss`` and ``optimizer``.

    Args:
        model: any plait Module (forward caches, backward accumulates grads).
        loss: a Loss (``value = loss(pred, target)``, ``dpred = loss.backward()``).
        optimizer: ``step()``, ``zero_grad()``, ``state_dict()``, ``load_state_dict()``.
        metrics: default ``()``; Metric instances, classes or registered names (``"accuracy"``).
        scheduler: default None; an LR scheduler, or a list of them (e.g. per-step warm-up and
            per-epoch decay).
        scheduler_interval: default ``"epoch"``; ``"epoch"`` or ``"step"`` (or one per scheduler).
        scheduler_monitor: default None; epoch log key passed to epoch schedulers' ``step``
            (plateau schedules).
        clip_grad_norm: default None (no clipping); clip the global gradient norm to this
            value before each step.
        grad_accumulation: default 1; batches whose gradients add up (averaged) into one
            optimizer step (>= 1).
        callbacks: default ``()``; Callback instances, registered names (``"early_stopping"``)
            or configs ``{"type": "early_stopping", "patience": 2}`` (built by ``registry.build``).
        seed: default None; reseeds plait's global generator at the start of the first
            ``fit`` and seeds loaders built from arrays.
        nan_policy: default ``"raise"``; ``"raise"`` or ``"skip"`` for non-finite batch
            losses (see module doc).
        strategy: default None (one process); ``"mpi"`` or a strategy object (see
            ``distributed``).
        train_metrics: default True; also compute the metrics on the training batches
            (Keras always does).

    Raises:
        ConfigError: ``grad_accumulation < 1``, an unknown ``nan_policy`` or
            ``scheduler_interval``, or a metric/callback that cannot be resolved.
        RegistryError: an unknown metric or callback name.
    """

    def __init__(
        self,
        model: Any,
        loss: Any,
        optimizer: Any,
        metrics: Sequence[Any] = (),
        scheduler: Any = None,
        scheduler_interval: str | Sequence[str] = "epoch",
        clip_grad_norm: float | None = None,
        grad_accumulation: int = 1,
        callbacks: Sequence[Any] = (),
        seed: int | None = None,
        nan_policy: str = "raise",
        strategy: Any = None,
        scheduler_monitor: str | None = None,
        train_metrics: bool = True,
    ) -> None:
        if int(grad_accumulation) < 1:
            raise ConfigError(f"Trainer: grad_accumulation must be >= 1, got {grad_accumulation}")
        if nan_policy not in ("raise", "skip"):
            raise ConfigError(f"Trainer: nan_policy must be 'raise' or 'skip', got {nan_policy!r}")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.metrics = [get_metric(m) for m in metrics]
        self.schedulers = _pair_schedulers(scheduler, scheduler_interval)
        self.scheduler_monitor = scheduler_monitor
        self.clip_grad_norm = clip_grad_norm
        self.grad_accumulation = int(grad_accumulation)
        self.callbacks = [resolve_callback(cb) for cb in callbacks]
        self.seed = seed
        self.nan_policy = nan_policy
        self.strategy = get_strategy(strategy)
        self.train_metrics = train_metrics
        self.params = list(model.parameters())
        self.epoch = 0
        self.global_step = 0
        self.skipped_batches = 0
        self.history = History()
        self.stop_training = False
        self.stop_reason: str | None = None
        self.resumed = False
        self.initial_epoch = 0
        self.epochs = 0
        self.batches_per_epoch: int | None = None
        self.epoch_lrs: list[float] = []
        self._seeded = False
        self._in_epoch = False
        self._pending_grads = False
        self._loss_sum, self._count = 0.0, 0
        self._resume_progress: dict[str, Any] | None = None
        self._train_loader: Any = None
        self._callback_list: CallbackList | None = None
        self._has_validation = False
        check_output_activation(model, loss)

    # -- fit ---------------------------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int = 32,
        epochs: int = 1,
        verbose: bool = True,
        callbacks: Sequence[Any] = (),
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        *,
        val: Any = None,
        resume_from: str | Path | None = None,
    ) -> History:
        """Train until ``epochs`` epochs are done; returns the :class:`History`.

        Keras' arguments and order: ``x``/``y`` arrays (``x`` may be a tuple of inputs),
        or ``x`` alone as a DataLoader, a dataset or ``(x, y)`` arrays. Arrays are batched
        with ``batch_size`` and shuffled (``shuffle``) with the trainer's ``seed``.
        ``callbacks`` are used for this call besides the trainer's. Validation, evaluated
        after every epoch into ``val_*`` logs: ``validation_data`` (``(x_val, y_val)``, a
        loader or dataset; ``val`` is a synonym), or ``validation_split``, the *last*
        fraction of the arrays, split off before shuffling as in Keras.

        ``resume_from``: a checkpoint folder, or a run folder whose ``latest`` pointer names
        one; training continues after its epoch with identical weights, optimizer,
        schedules, data order and random state, so the result is bitwise that of an
        uninterrupted run.

        Args:
            x: default None; input array ``(N, ...)`` or a tuple of input arrays, or alone:
                a DataLoader, a dataset or an ``(x, y)`` tuple of arrays.
            y: default None; target array ``(N, ...)`` when ``x`` is arrays.
            batch_size: default 32 (Keras' default for None); used when batching arrays or a
                dataset.
            epochs: default 1; the total number of epochs (a resumed run continues up to
                it: resuming after epoch 3 with ``epochs=5`` runs 2 more).
            verbose: default True; a progress bar on the main process (Keras' default is
                ``"auto"``).
            callbacks: default ``()``; extra callbacks for this call only.
            validation_split: default 0.0; the last fraction of the arrays held out for
                validation, in [0, 1).
            validation_data: default None; ``(x_val, y_val)``, a DataLoader or a dataset.
            shuffle: default True; reshuffle array/dataset batches every epoch.
            val: default None (keyword-only); a synonym of ``validation_data``.
            resume_from: default None (keyword-only); a checkpoint or run folder to resume.

        Raises:
            ConfigError: no training data, ``x`` and ``y`` of different lengths, both ``val``
                and ``validation_data``, ``validation_split`` out of range, or batches that
                are not ``(inputs..., target)`` tuples.
            NonFiniteLossError: a batch loss is NaN or infinite with ``nan_policy="raise"``.
            CheckpointError: ``resume_from`` is missing, damaged or does not fit this
                trainer (model, optimizer, schedulers).
        """
        loader, val_loader = fit_loaders(
            x, y, val=val, validation_data=validation_data, validation_split=validation_split,
            batch_size=batch_size, shuffle=shuffle, seed=self.seed,
        )  # fmt: skip
        self._shard_for_ranks(loader, "Trainer.fit(x)")
        if val_loader is not None:
            self._shard_for_ranks(val_loader, "Trainer.fit(validation_data)")
        self._train_loader = loader
        self.batches_per_epoch = len(loader) if hasattr(loader, "__len__") else None
        self.epochs = int(epochs)
        self.stop_training, self.stop_reason = False, None
        self.history = History()
        self._has_validation = val_loader is not None
        callbacks = [*self.callbacks, *(resolve_callback(cb) for cb in callbacks)]
        callbacks = [cb for cb in callbacks if self.strategy.is_main or not getattr(cb, "main_process_only", False)]
        if verbose and self.strategy.is_main and not any(isinstance(cb, ProgressBar) for cb in callbacks):
            callbacks.append(ProgressBar())
        self._callback_list = cbs = CallbackList([*callbacks, self.history], self)
        cbs.set_params(self._fit_params(loader, batch_size, verbose))
        self.resumed = resume_from is not None
        if self.resumed:
            self.load_checkpoint(resume_from)
        else:
            self.epoch = 0
            if self.seed is not None and not self._seeded:
                manual_seed(self.seed)
            self._seeded = True
        self.initial_epoch = self.epoch
        self.strategy.broadcast_parameters(self.params)
        self.model.zero_grad()
        input_grad_was = getattr(self.model, "needs_input_grad", True)
        if hasattr(self.model, "requires_input_grad"):  # data needs no gradient: first layers skip dx
            self.model.requires_input_grad(False)
        cbs.call("on_train_begin", {})
        try:
            for epoch in range(self.epoch, self.epochs):
                logs = self._train_epoch(epoch, loader, cbs)
                if logs is None:
                    break
                if val_loader is not None:
                    logs.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()})
                self._step_epoch_schedulers(logs)
                self.epoch = epoch + 1
                cbs.call("on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
        finally:
            self._in_epoch = False
            if hasattr(self.model, "requires_input_grad"):
                self.model.requires_input_grad(input_grad_was)
            self.history.stop_reason = self.stop_reason
            cbs.call("on_train_end", {"epoch": self.epoch, "step": self.global_step})
        return self.history

    def _train_epoch(self, epoch: int, loader: Any, cbs: CallbackList) -> dict[str, Any] | None:
        self.model.train()
        start = self._restore_progress(loader)
        n = self.batches_per_epoch
        accum = self.grad_accumulation
        group_size = accum
        cbs.call("on_epoch_begin", epoch, {})
        i = start - 1
        self._in_epoch = True
        for i, batch in enumerate(loader, start=start):
            cbs.call("on_batch_begin", i, {})
            inputs, target = split_batch(batch, "Trainer.fit")
            inputs = to_model_device(inputs, self.params[0].data if self.params else None)
            target = to_model_device(target, self.params[0].data if self.params else None)
            if i % accum == 0:
                group_size = min(accum, n - i) if n is not None else accum
            step = self.global_step + 1
            pred = self.model(*inputs)
            value = float(self.loss(pred, target))
            size = len(target)
            if not self._finite_on_every_rank(value):
                self.model.clear_saved()
                cbs.call("on_batch_end", i, {"loss": value, "size": size, "step": step})
                if self.stop_training:
                    return None
                if self.nan_policy == "raise":
                    raise NonFiniteLossError(
                        f"loss is {value} at epoch {epoch + 1}, batch {i + 1} (global step {step}); "
                        "use Trainer(nan_policy='skip') to skip such batches or the TerminateOnNaN callback to stop"
                    )
                self.skipped_batches += 1
                if self._pending_grads and self._closes_group(i, n):
                    self._optimizer_step()
                continue
            dpred = self.loss.backward()
            scale = (1.0 / group_size) * self._rank_weight(loader)
            self.model.backward(dpred if scale == 1.0 else dpred * scale)
            self._pending_grads = True
            self._loss_sum += value * size
            self._count += size
            if self.train_metrics:
                for m in self.metrics:
                    m.update(pred, target)
            if self._closes_group(i, n):
                self._optimizer_step()
            cbs.call("on_batch_end", i, {"loss": value, "size": size, "step": step})
            if self.stop_training:
                return None
        if self._pending_grads:  # an iterable without len() ended inside a group
            self._optimizer_step()
        self._in_epoch = False
        return self._epoch_logs(self._loss_sum, self._count, self.metrics if self.train_metrics else [])

    # -- data parallelism -----------------------------------------------------------------------
    def _shard_for_ranks(self, loader: Any, who: str) -> None:
        """Under a multi-rank strategy, give each rank its part of every global batch."""
        world = self.strategy.world_size
        if world == 1:
            return
        if not hasattr(loader, "set_shard"):
            raise ConfigError(f"{who}: data-parallel training needs a DataLoader, dataset or arrays, not a plain iterable")
        if loader.seed is None:  # every rank must draw the same global order
            seed = self.strategy.broadcast_object(int(np.random.SeedSequence().entropy % 2**63))
            loader.seed, loader.generator = seed, np.random.default_rng(seed)
        loader.set_shard(self.strategy.rank, world)

    def _rank_weight(self, loader: Any) -> float:
        """world * (local samples / global batch): averaging the ranks' gradients then gives
        the gradient of the global batch's mean loss, also for an uneven last batch."""
        if self.strategy.world_size == 1:
            return 1.0
        return self.strategy.world_size * getattr(loader, "share_of_batch", 1.0 / self.strategy.world_size)

    def _finite_on_every_rank(self, value: float) -> bool:
        """One collective decision, so that all ranks skip or stop on the same batch."""
        if self.strategy.world_size == 1:
            return math.isfinite(value)
        return bool(math.isfinite(float(self.strategy.allreduce_sum([value if math.isfinite(value) else np.inf])[0])))

    def _closes_group(self, i: int, n: int | None) -> bool:
        """Whether batch ``i`` is the last of its gradient-accumulation group."""
        return (i + 1) % self.grad_accumulation == 0 or (n is not None and i + 1 == n)

    def _optimizer_step(self) -> None:
        self.strategy.average_gradients(self.params)
        if self.clip_grad_norm is not None:
            from plait.optim.clip import clip_grad_norm_  # noqa: PLC0415 - only when clipping

            clip_grad_norm_(self.params, self.clip_grad_norm)
        self.optimizer.step()
        self.model.zero_grad()
        self._pending_grads = False
        self.global_step += 1
        for scheduler, interval in self.schedulers:
            if interval == "step":
                scheduler.step()

    def _step_epoch_schedulers(self, logs: dict[str, Any]) -> None:
        self.epoch_lrs = self.current_lrs()
        for scheduler, interval in self.schedulers:
            if interval != "epoch":
                continue
            if self.scheduler_monitor is not None:
                if self.scheduler_monitor not in logs:
                    raise ConfigError(f"scheduler_monitor {self.scheduler_monitor!r} is not in the logs: {sorted(logs)}")
                scheduler.step(logs[self.scheduler_monitor])
            else:
                scheduler.step()

    def _epoch_logs(self, loss_sum: float, count: int, metrics: list[Any]) -> dict[str, Any]:
        total_loss, total_count = (float(v) for v in self.strategy.allreduce_sum([loss_sum, count]))
        logs: dict[str, Any] = {"loss": total_loss / total_count if total_count else math.nan}
        for m in metrics:
            if self.strategy.world_size > 1 and hasattr(m, "merge"):
                m.merge(self.strategy.allreduce_sum)
            logs[m.name] = float(m.compute())
        return logs

    # -- what callbacks can know ------------------------------------------------------------------
    def log_keys(self) -> list[str]:
        """The epoch-log entries the current ``fit`` produces: ``loss``, the metrics (with
        ``train_metrics``), ``val_*`` (with validation data) and whatever callbacks declare
        through a ``log_keys()`` method (``LearningRateMonitor``: ``lr``)."""
        names = [m.name for m in self.metrics]
        keys = ["loss", *(names if self.train_metrics else [])]
        if self._has_validation:
            keys += ["val_loss", *(f"val_{n}" for n in names)]
        for cb in self._callback_list or ():
            declared = getattr(cb, "log_keys", None)
            if callable(declared):
                keys += [k for k in declared() if k not in keys]
        return keys

    def _fit_params(self, loader: Any, batch_size: int, verbose: bool) -> dict[str, Any]:
        """Keras' ``callback.params`` (also ``history.params``)."""
        dataset = getattr(loader, "dataset", None)
        return {
            "epochs": self.epochs,
            "steps": self.batches_per_epoch,
            "batch_size": getattr(loader, "batch_size", batch_size),
            "samples": len(dataset) if hasattr(dataset, "__len__") else None,
            "verbose": verbose,
            "do_validation": self._has_validation,
            "metrics": self.log_keys(),
        }

    # -- learning rates --------------------------------------------------------------------------
    def current_lrs(self) -> list[float]:
        """The learning rate of every parameter group of the optimizer, now."""
        groups = getattr(self.optimizer, "param_groups", None)
        if groups:
            return [float(g["lr"]) for g in groups if "lr" in g]
        lr = getattr(self.optimizer, "lr", None)
        return [float(lr)] if lr is not None else []


def _pair_schedulers(scheduler: Any, interval: str | Sequence[str]) -> list[tuple[Any, str]]:
    if scheduler is None:
        return []
    schedulers = list(scheduler) if isinstance(scheduler, (list, tuple)) else [scheduler]
    intervals = [interval] * len(schedulers) if isinstance(interval, str) else list(interval)
    if len(intervals) != len(schedulers):
        raise ConfigError(f"Trainer: {len(schedulers)} schedulers but {len(intervals)} scheduler_interval values")
    for i in intervals:
        if i not in ("epoch", "step"):
            raise ConfigError(f"Trainer: scheduler_interval must be 'epoch' or 'step', got {i!r}")
    return list(zip(schedulers, intervals))
