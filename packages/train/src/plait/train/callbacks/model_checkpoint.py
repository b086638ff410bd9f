"""``ModelCheckpoint``: save a checkpoint folder at the end of epochs."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from plait.core import CheckpointError, ConfigError

from ..checkpoint import LATEST, check_child_name, remove_checkpoint, remove_stale_temporaries, write_pointer
from .base import Callback
from .early_stopping import Improvement

__all__ = ["ModelCheckpoint"]

BEST = "best"


class ModelCheckpoint(Callback):
    """Writes ``dirpath/epoch-NNNN/`` checkpoints (see :mod:`plait.train.checkpoint`).

    Each checkpoint folder is also a model folder: ``plait.zoo.load(dirpath / "best")``
    (or ``plait.core.load_model``) opens it when the model has a registered name.

    Args:
        dirpath: the run folder. ``dirpath/latest`` is a symbolic link to the newest complete
            checkpoint (what ``Trainer.fit(resume_from=dirpath)`` loads), ``dirpath/best`` to the best.
        monitor: the logged value that decides what "best" means (default ``"val_loss"``).
        mode: default ``"auto"`` (max for accuracy-like names, min otherwise); or ``"min"``,
            ``"max"``.
        min_delta: default 0.0; the smallest change of ``monitor`` that counts as an
            improvement.
        save_best_only: default False; save only epochs that improve ``monitor``.
        save_last: default True; also save every epoch as the newest checkpoint (kept for
            resuming); with ``save_best_only`` older non-best folders are then deleted.
            False is ignored unless ``save_best_only`` (something must be saved).
        max_to_keep: keep at most this many epoch folders (default 5; the best and the newest
            are never deleted); None keeps every one.

    Runs after every other callback, so the state it saves (callbacks included) is the
    state at the end of the epoch; it writes only on the main process. Unlike Keras'
    ``ModelCheckpoint(filepath)`` it writes whole checkpoint folders, not weight files.

    Raises:
        ConfigError: ``max_to_keep`` is not an integer >= 1 or None, or an unknown ``mode``.
    """

    order = 100
    main_process_only = True

    def __init__(
        self,
        dirpath: str | os.PathLike[str],
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
        save_last: bool = True,
        min_delta: float = 0.0,
        max_to_keep: int | None = 5,
    ) -> None:
        super().__init__()
        if not save_best_only and not save_last:
            save_last = True
        if max_to_keep is not None and (isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int)
                                        or max_to_keep < 1):
            raise ConfigError(f"ModelCheckpoint: max_to_keep must be >= 1 or None, got {max_to_keep}")
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.tracker = Improvement(monitor, mode, min_delta)
        self.save_best_only = save_best_only
        self.save_last = save_last
        self.max_to_keep = max_to_keep
        self.best_path: Path | None = None
        self.last_path: Path | None = None
        self.saved: list[str] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.dirpath)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        improved = False
        if self.monitor in logs or self.save_best_only:
            current = self.tracker.value(logs, "ModelCheckpoint")  # raises naming a missing key
            improved = self.tracker.improves(current)
            if improved:
                self.tracker.best = current
        if not (improved or self.save_last):
            return
        name = f"epoch-{epoch + 1:04d}"
        if name not in self.saved:
            self.saved.append(name)
        if improved:
            self.best_path = self.dirpath / name
        self.last_path = self.dirpath / name
        self.trainer.save_checkpoint(self.dirpath / name)
        if improved:
            write_pointer(self.dirpath, name, BEST)
        write_pointer(self.dirpath, name, LATEST)
        self._prune()

    def _prune(self) -> None:
        keep = {p.name for p in (self.best_path, self.last_path) if p is not None}
        candidates = [n for n in self.saved if n not in keep]
        if self.save_best_only:
            doomed = candidates
        elif self.max_to_keep is not None:
            doomed = candidates[: max(0, len(self.saved) - self.max_to_keep)]
        else:
            doomed = []
        for name in doomed:
            remove_checkpoint(self.dirpath, name)  # checks again that it is a plain child of dirpath
            self.saved.remove(name)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.tracker.best,
            "saved": list(self.saved),
            "best_path": None if self.best_path is None else self.best_path.name,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint; every folder name in ``state`` must be a plain child of ``dirpath``."""
        where = f"ModelCheckpoint state ({self.dirpath})"
        if not isinstance(state, dict) or set(state) != {"best", "saved", "best_path"}:
            raise CheckpointError(f"{where}: expected the keys best, saved, best_path, got {str(state)[:120]}")
        best, saved, best_path = state["best"], state["saved"], state["best_path"]
        if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))
                                 or (math.isnan(best))):
            raise CheckpointError(f"{where}: 'best' must be a number or null, got {str(best)[:80]}")
        if not isinstance(saved, list) or len(saved) > 100_000:
            raise CheckpointError(f"{where}: 'saved' must be a list of folder names")
        names = [check_child_name(n, self.dirpath, f"{where}: saved") for n in saved]
        if best_path is not None:
            check_child_name(best_path, self.dirpath, f"{where}: best_path")
        self.tracker.best = best
        self.saved = names
        self.best_path = None if best_path is None else self.dirpath / best_path
