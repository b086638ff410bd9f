"""Trainer(strategy="mpi") under mpirun, or alone: a small float64 MLP, SGD with momentum.

Usage: python trainer_dp.py OUT.npz EPOCHS [--ckpt DIR] [--resume DIR]
97 samples with batch 15 leave an uneven last batch (7 = 4 + 3 on two ranks).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from plait.core import manual_seed
from plait.layers import Linear, MSELoss, Sequential, Tanh
from plait.optim import SGD
from plait.train import Callback, ModelCheckpoint, Trainer


class WriterLog(Callback):
    """Appends this process's rank to a file at every epoch end (main process only, like a checkpoint writer)."""

    main_process_only = True

    def __init__(self, path: str) -> None:
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(os.environ.get("OMPI_COMM_WORLD_RANK", "0") + "\n")


def main() -> None:
    out, epochs = sys.argv[1], int(sys.argv[2])
    ckpt = sys.argv[sys.argv.index("--ckpt") + 1] if "--ckpt" in sys.argv else None
    resume = sys.argv[sys.argv.index("--resume") + 1] if "--resume" in sys.argv else None
    distributed = "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ

    manual_seed(int(os.environ.get("OMPI_COMM_WORLD_RANK", "0")) + 11)  # different init per rank: broadcast fixes it
    model = Sequential(Linear(5, 16), Tanh(), Linear(16, 2)).astype(np.float64)
    data = np.random.default_rng(0)
    x, y = data.standard_normal((97, 5)), data.standard_normal((97, 2))
    callbacks = [WriterLog(out + ".writers")]
    if ckpt:
        callbacks.append(ModelCheckpoint(ckpt, save_last=True))
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.05, momentum=0.9), metrics=["mae"],
                      callbacks=callbacks, seed=3, strategy="mpi" if distributed else None)
    history = trainer.fit((x, y), val=(x, y), epochs=epochs, batch_size=15, resume_from=resume, verbose=False)
    if trainer.strategy.is_main:
        np.savez(out, **model.state_dict(), loss=np.array(history.history["loss"]),
                 val_mae=np.array(history.history["val_mae"]))


if __name__ == "__main__":
    main()
