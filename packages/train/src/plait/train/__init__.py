"""plait-train: Trainer, data loading, metrics, callbacks and exact checkpoint/resume.

Keras style::

    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3),
                      metrics=["accuracy"], callbacks=[ModelCheckpoint("runs/a")], seed=0)
    history = trainer.fit(x, y, batch_size=128, epochs=5, validation_split=0.1)
    trainer.fit(x, y, epochs=10, resume_from="runs/a")   # continues bitwise-exactly

PyTorch style, with the same pieces::

    for x, y in DataLoader(ArrayDataset(x_all, y_all), 128, shuffle=True, seed=0):
        value = loss(model(x), y); model.backward(loss.backward())
        optimizer.step(); model.zero_grad()
"""

from __future__ import annotations

from ._model_checks import DoubleActivationWarning
from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    PlotHistory,
    ProgressBar,
    TerminateOnNaN,
)
from .checkpoint import Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from .data import (
    ArrayDataset,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    TextWindowDataset,
    default_collate,
    random_split,
)
from .history import History
from .metrics import MAE, MSE, Accuracy, F1Score, Metric, Perplexity, Precision, Recall, TopKAccuracy
from .trainer import NonFiniteLossError, Trainer

__version__ = "0.1.0"

__all__ = [
    "MAE",
    "MSE",
    "Accuracy",
    "ArrayDataset",
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "CheckpointError",
    "DataLoader",
    "Dataset",
    "DoubleActivationWarning",
    "EarlyStopping",
    "F1Score",
    "History",
    "LearningRateMonitor",
    "Metric",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "Perplexity",
    "PlotHistory",
    "Precision",
    "ProgressBar",
    "Recall",
    "Subset",
    "TensorDataset",
    "TerminateOnNaN",
    "TextWindowDataset",
    "TopKAccuracy",
    "Trainer",
    "default_collate",
    "latest_checkpoint",
    "load_checkpoint",
    "random_split",
    "save_checkpoint",
]
