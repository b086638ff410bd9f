"""``CSVLogger``: one CSV row of epoch logs per epoch."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from .base import Callback

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Appends ``epoch`` (1-based) and every epoch log value to ``filename``.

    The columns are fixed by the first row written. A fresh run truncates the file
    (unless ``append``); a resumed run keeps the rows of the epochs it resumes after and
    drops any later ones a killed run may have written, so the file matches the History.
    """

    main_process_only = True

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._file: Any = None
        self._writer: Any = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        resumed = getattr(self.trainer, "resumed", False)
        rows: list[list[str]] = []
        if (self.append or resumed) and self.filename.is_file():
            with open(self.filename, newline="") as f:
                rows = list(csv.reader(f, delimiter=self.separator))
            if resumed and rows:
                done = getattr(self.trainer, "initial_epoch", 0)
                rows = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= done]
        self._file = open(self.filename, "w", newline="")
        self._writer = csv.writer(self._file, delimiter=self.separator)
        self._columns: list[str] | None = rows[0] if rows else None
        self._writer.writerows(rows)
        self._file.flush()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {"epoch": epoch + 1, **(logs or {})}
        if self._columns is None:
            self._columns = list(row)
            self._writer.writerow(self._columns)
        self._writer.writerow([_fmt(row.get(c, "")) for c in self._columns])
        self._file.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
