"""``ProgressBar``: a tqdm bar on a terminal, one plain line per epoch in logs."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from .base import Callback

__all__ = ["ProgressBar", "format_logs"]


def format_logs(logs: dict[str, Any]) -> str:
    parts = []
    for key, value in logs.items():
        if isinstance(value, float):
            parts.append(f"{key}: {value:.4g}")
        elif isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{key}: {value}")
    return " - ".join(parts)


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):
        return False


class ProgressBar(Callback):
    """Shows training progress.

    On a terminal (``file.isatty()``) a tqdm bar redraws in place during each epoch and
    is left as one line at its end. Anywhere else (a pipe, a log file, CI) nothing is
    drawn during the epoch and exactly one plain line per epoch is written, with no
    carriage returns, so logs stay readable (Keras' progress bar floods them).

    Args:
        file: default None: ``sys.stderr``, looked up when training starts; or a text stream.
        dynamic: default None: ask ``isatty``; True or False forces the in-place bar on or off.
    """

    main_process_only = True
    order = 50

    def __init__(self, file: IO[str] | None = None, dynamic: bool | None = None) -> None:
        super().__init__()
        self.file = file
        self.dynamic = dynamic
        self._bar: Any = None
        self._stream: Any = None
        self._t0 = 0.0
        self._loss_sum = 0.0
        self._count = 0
        self._epochs = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._stream = self.file if self.file is not None else sys.stderr
        self._epochs = getattr(self.trainer, "epochs", 0) or 0
        self._live = _is_tty(self._stream) if self.dynamic is None else self.dynamic

    def _desc(self, epoch: int) -> str:
        return f"epoch {epoch + 1}/{self._epochs}" if self._epochs else f"epoch {epoch + 1}"

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.perf_counter()
        self._loss_sum, self._count = 0.0, 0
        if self._live:
            from tqdm.auto import tqdm  # noqa: PLC0415 - only needed on a terminal

            total = getattr(self.trainer, "batches_per_epoch", None)
            self._bar = tqdm(total=total, desc=self._desc(epoch), file=self._stream, leave=True, dynamic_ncols=True)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        size = logs.get("size", 1)
        self._loss_sum += float(logs.get("loss", 0.0)) * size
        self._count += size
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(f"loss: {self._loss_sum / max(self._count, 1):.4g}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        text = format_logs(logs or {})
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)
            self._bar.close()
            self._bar = None
            return
        seconds = time.perf_counter() - self._t0
        self._stream.write(f"{self._desc(epoch)} - {seconds:.1f}s - {text}\n")
        self._stream.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None:  # training stopped mid-epoch
            self._bar.close()
            self._bar = None
