"""``CSVLogger``: one CSV row of epoch logs per epoch."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from plait.core import SerializationError, read_text

from .base import Callback

__all__ = ["CSVLogger"]

#: The largest existing log a resumed or appending run reads back (one row per epoch: ample).
CSV_MAX_BYTES = 64 * 1024 * 1024


class CSVLogger(Callback):
    """Appends ``epoch`` (1-based) and every epoch log value to ``filename``.

    The columns are fixed by the first row written. A fresh run truncates the file
    (unless ``append``); a resumed run keeps the rows of the epochs it resumes after and
    drops any later ones a killed run may have written, so the file matches the History.

    Args:
        filename: the CSV file (missing parent folders are created).
        separator: default ``","`` (as Keras); the field delimiter.
        append: default False (as Keras); True keeps the rows already in the file.

    Raises:
        SerializationError: (when training begins) an existing file to keep is unreadable,
            too large, not UTF-8 or not CSV.
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
        if (self.append or resumed) and os.path.lexists(self.filename):
            rows = self._read_rows()
            if resumed and rows:
                done = getattr(self.trainer, "initial_epoch", 0)
                rows = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= done]
        self._file = open(self.filename, "w", newline="")
        self._writer = csv.writer(self._file, delimiter=self.separator)
        self._columns: list[str] | None = rows[0] if rows else None
        self._writer.writerows(rows)
        self._file.flush()

    def _read_rows(self) -> list[list[str]]:
        """The rows of the existing log: one bounded read of a regular file, strict UTF-8."""
        text = read_text(self.filename, component="CSVLogger", max_bytes=CSV_MAX_BYTES)
        try:
            return list(csv.reader(io.StringIO(text, newline=""), delimiter=self.separator))
        except csv.Error as exc:
            raise SerializationError(f"CSVLogger: {self.filename} is not a readable CSV file: {exc}") from None

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
