"""``ModelCheckpoint``: save a checkpoint folder at the end of epochs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from plait.core import ConfigError

from ..checkpoint import LATEST, remove_stale_temporaries, write_pointer
from .base import Callback
from .early_stopping import Improvement

__all__ = ["ModelCheckpoint"]

BEST = "best"


class ModelCheckpoint(Callback):
    """Writes ``dirpath/epoch-NNNN/`` checkpoints (see :mod:`plait.train.checkpoint`).

    Args:
        dirpath: the run folder. ``dirpath/latest`` names the newest complete checkpoint
            (what ``Trainer.fit(resume_from=dirpath)`` loads), ``dirpath/best`` the best.
        monitor, mode, min_delta: what "best" means (``mode="auto"``: max for
            accuracy-like names, min otherwise).
        save_best_only: save only epochs that improve ``monitor``.
        save_last: also save every epoch as the newest checkpoint (kept for resuming);
            with ``save_best_only`` older non-best folders are then deleted.
        max_to_keep: keep at most this many epoch folders (the best one is never deleted).

    Runs after every other callback, so the state it saves (callbacks included) is the
    state at the end of the epoch; it writes only on the main process.
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
        max_to_keep: int | None = None,
    ) -> None:
        super().__init__()
        if not save_best_only and not save_last:
            save_last = True
        if max_to_keep is not None and max_to_keep < 1:
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
            shutil.rmtree(self.dirpath / name, ignore_errors=True)
            self.saved.remove(name)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.tracker.best,
            "saved": list(self.saved),
            "best_path": None if self.best_path is None else self.best_path.name,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]
        self.saved = list(state["saved"])
        self.best_path = None if state["best_path"] is None else self.dirpath / state["best_path"]
