"""Exact resume: a run SIGKILLed mid-epoch and resumed from its last checkpoint ends with
weights bitwise-equal to an uninterrupted run with the same seed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from plait.train import ArrayDataset, CheckpointError, DataLoader
from plait.train.checkpoint import read_pointer

# Written to a file and run in a subprocess; also exec'd here to build the same setup.
SCRIPT = r'''
import sys
import time

import numpy as np

from plait.core import manual_seed
from plait.layers import CrossEntropyLoss, Dropout, Linear, ReLU, Sequential
from plait.optim import Adam, ExponentialLR, StepLR
from plait.train import ArrayDataset, Callback, DataLoader, ModelCheckpoint, Trainer

EPOCHS = 5


def build(run_dir, extra_callbacks=()):
    manual_seed(0)
    model = Sequential(Linear(8, 32), ReLU(), Dropout(0.25), Linear(32, 3))   # Dropout draws from the global RNG
    optimizer = Adam(model.parameters(), lr=0.01)
    schedulers = [ExponentialLR(optimizer, gamma=0.995), StepLR(optimizer, step_size=2, gamma=0.5)]
    data = np.random.default_rng(1)
    x = data.standard_normal((300, 8)).astype(np.float32)
    y = ((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)).astype(np.int64)
    loader = DataLoader(ArrayDataset(x, y), batch_size=16, shuffle=True, seed=123)
    trainer = Trainer(
        model, CrossEntropyLoss(), optimizer, metrics=["accuracy"],
        scheduler=schedulers, scheduler_interval=["step", "epoch"], clip_grad_norm=5.0,
        callbacks=[ModelCheckpoint(run_dir, monitor="loss"), *extra_callbacks], seed=7,
    )
    return model, trainer, loader


class HangAt(Callback):
    """Prints a line and sleeps at (epoch, batch), so the parent can SIGKILL us mid-epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            print("mid-epoch", self.epoch, batch, flush=True)
            time.sleep(600)


if __name__ == "__main__":
    model, trainer, loader = build(sys.argv[1], [HangAt(int(sys.argv[2]), int(sys.argv[3]))])
    trainer.fit(loader, epochs=EPOCHS, verbose=False)
    print("finished without being killed", flush=True)
'''


def _namespace() -> dict:
    ns: dict = {"__name__": "resume_script"}
    exec(compile(SCRIPT, "resume_script", "exec"), ns)
    return ns


def test_sigkill_mid_epoch_then_resume_is_bitwise_exact(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "run"
    kill_epoch, kill_batch = 2, 6  # after epoch 2's checkpoint (epochs are 0-based here)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(run_dir), str(kill_epoch), str(kill_batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    timer = threading.Timer(120, proc.kill)  # never hang the suite
    timer.start()
    try:
        line = proc.stdout.readline()
        assert line.split() == ["mid-epoch", str(kill_epoch), str(kill_batch)], (line, proc.stderr.read())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        timer.cancel()
    assert proc.returncode == -signal.SIGKILL
    assert read_pointer(run_dir).name == f"epoch-{kill_epoch:04d}"  # epochs 1..2 saved, the 3rd was cut off

    ns = _namespace()
    model, trainer, loader = ns["build"](run_dir)
    history = trainer.fit(loader, epochs=ns["EPOCHS"], resume_from=run_dir, verbose=False)

    ref_model, ref_trainer, ref_loader = ns["build"](tmp_path / "ref")
    ref_history = ref_trainer.fit(ref_loader, epochs=ns["EPOCHS"], verbose=False)

    resumed, reference = model.state_dict(), ref_model.state_dict()
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert np.array_equal(resumed[key], reference[key]), key
    assert history.history == ref_history.history  # the resumed History carries the first epochs too
    assert history.epoch == list(range(ns["EPOCHS"]))
    assert trainer.global_step == ref_trainer.global_step
    assert trainer.current_lrs() == ref_trainer.current_lrs()
    # The reference really differs from the point where the kill happened: the weights moved.
    first = ns["build"](tmp_path / "unused")[0].state_dict()
    assert not np.array_equal(first["0.weight"], reference["0.weight"])


def test_resume_with_a_different_loader_is_refused(tmp_path):
    ns = _namespace()
    model, trainer, loader = ns["build"](tmp_path / "run")
    trainer.fit(loader, epochs=1, verbose=False)
    _, trainer2, _ = ns["build"](tmp_path / "run")
    other = DataLoader(ArrayDataset(np.zeros((10, 8), np.float32), np.zeros(10, np.int64)), batch_size=16)
    with pytest.raises(CheckpointError, match="num_samples"):
        trainer2.fit(other, epochs=2, resume_from=tmp_path / "run", verbose=False)


def test_checkpoint_saved_mid_epoch_resumes_exactly(tmp_path):
    ns = _namespace()
    from plait.train import Callback

    class SaveAt(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 7):
                self.trainer.save_checkpoint(tmp_path / "mid")

    model, trainer, loader = ns["build"](tmp_path / "a", [SaveAt()])
    history = trainer.fit(loader, epochs=3, verbose=False)
    resumed_model, resumed, resumed_loader = ns["build"](tmp_path / "b", [SaveAt()])
    resumed_history = resumed.fit(resumed_loader, epochs=3, resume_from=tmp_path / "mid", verbose=False)
    for key, value in model.state_dict().items():
        assert np.array_equal(resumed_model.state_dict()[key], value), key
    assert resumed_history.history == history.history  # epoch 2's averages include its first 8 batches


def test_saving_inside_an_accumulation_group_is_refused(tmp_path):
    ns = _namespace()
    from plait.train import Callback

    class SaveEveryBatch(Callback):
        def on_batch_end(self, batch, logs=None):
            self.trainer.save_checkpoint(tmp_path / f"b{batch}")

    _, trainer, loader = ns["build"](tmp_path / "a", [SaveEveryBatch()])
    trainer.grad_accumulation = 2
    with pytest.raises(CheckpointError, match="accumulation"):
        trainer.fit(loader, epochs=1, verbose=False)
    assert not (tmp_path / "b0").exists()  # batch 0 left its gradients pending: nothing written
