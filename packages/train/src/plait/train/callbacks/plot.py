"""``PlotHistory``: a PNG of the loss and metric curves (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from plait.core import atomic_write_bytes

from .base import Callback

__all__ = ["PlotHistory", "plot_history"]


def _require_matplotlib() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            "PlotHistory needs matplotlib, an optional dependency: pip install 'plait-train[plot]'"
        ) from exc
    return Figure, FigureCanvasAgg


def plot_history(history: dict[str, list[float]], path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Draw one panel per quantity (``loss``, each metric, ``lr``), train and ``val_`` curves
    together, and write the PNG atomically. Uses the Agg canvas, never pyplot's global state.
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    bases = [k for k in history if not k.startswith("val_")]
    bases += [k[4:] for k in history if k.startswith("val_") and k[4:] not in bases]
    bases.sort(key=lambda k: (k != "loss", k))
    fig = Figure(figsize=(4.0 * max(len(bases), 1), 3.2), dpi=dpi)
    FigureCanvasAgg(fig)
    for i, base in enumerate(bases or ["loss"]):
        ax = fig.add_subplot(1, max(len(bases), 1), i + 1)
        for key, style in ((base, "-"), (f"val_{base}", "--")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, marker="o", markersize=3, label=key)
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


class PlotHistory(Callback):
    """Writes ``path`` (PNG) with the History's curves after every epoch (or only at the
    end with ``every_epoch=False``). Needs matplotlib (``plait-train[plot]``): a missing
    install is reported when the callback is created, not at the end of a long run.

    Args:
        path: default ``"history.png"``; the PNG file written (replaced each time).
        every_epoch: default True; False draws only once, when training ends.
        dpi: default 100; the image's resolution.

    Raises:
        ImportError: matplotlib is not installed.
    """

    main_process_only = True
    order = 60

    def __init__(self, path: str | os.PathLike[str] = "history.png", every_epoch: bool = True, dpi: int = 100) -> None:
        super().__init__()
        _require_matplotlib()
        self.path = Path(path)
        self.every_epoch = every_epoch
        self.dpi = dpi

    def _draw(self) -> None:
        history = self.trainer.history.history
        if any(history.values()):
            plot_history(history, self.path, self.dpi)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.every_epoch:
            self._draw()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._draw()
