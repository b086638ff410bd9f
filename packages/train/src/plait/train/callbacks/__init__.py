"""Training callbacks with Keras' hook names."""

from __future__ import annotations

from .base import Callback, CallbackList
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .lr_monitor import LearningRateMonitor
from .model_checkpoint import ModelCheckpoint
from .nan import TerminateOnNaN
from .plot import PlotHistory, plot_history
from .progress import ProgressBar

__all__ = [
    "CALLBACKS",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "PlotHistory",
    "ProgressBar",
    "TerminateOnNaN",
    "plot_history",
]

CALLBACKS: dict[str, type[Callback]] = {
    "progress_bar": ProgressBar,
    "early_stopping": EarlyStopping,
    "model_checkpoint": ModelCheckpoint,
    "csv_logger": CSVLogger,
    "terminate_on_nan": TerminateOnNaN,
    "learning_rate_monitor": LearningRateMonitor,
    "plot_history": PlotHistory,
}
