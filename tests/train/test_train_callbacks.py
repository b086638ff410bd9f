"""Every callback has a test that could fail."""

from __future__ import annotations

import csv
import io
import os
import sys

import numpy as np
import pytest

from plait.core import ConfigError, Module, Param, load_model, manual_seed, registry
from plait.layers import CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential
from plait.optim import SGD, StepLR
from plait.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    PlotHistory,
    ProgressBar,
    TerminateOnNaN,
    Trainer,
    load_checkpoint,
)
from plait.train.checkpoint import read_pointer


class Scripted(Callback):
    """Overwrites ``val_loss`` with a scripted sequence and snapshots the weights per epoch."""

    order = -20

    def __init__(self, values):
        super().__init__()
        self.values = values
        self.snapshots = []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.snapshots.append({k: v.copy() for k, v in self.model.state_dict().items()})


def _setup(callbacks, lr=0.1):
    manual_seed(0)
    model = Sequential(Linear(3, 8), ReLU(), Linear(8, 2))
    r = np.random.default_rng(0)
    x = r.standard_normal((48, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=lr), metrics=["accuracy"],
                      callbacks=callbacks, seed=0)
    return model, trainer, (x, y)


def test_early_stopping_stops_at_the_right_epoch_and_restores_best_weights():
    script = Scripted([1.0, 0.8, 0.5, 0.52, 0.6, 0.7, 0.9, 1.0])  # best at epoch index 2
    stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model, trainer, data = _setup([script, stop])
    history = trainer.fit(data, epochs=8, batch_size=16, verbose=False)
    assert stop.best_epoch == 2 and stop.stopped_epoch == 5  # 3 epochs without improvement
    assert history.epoch == [0, 1, 2, 3, 4, 5]
    assert "EarlyStopping" in history.stop_reason
    for k, v in model.state_dict().items():
        assert np.array_equal(v, script.snapshots[2][k])
        assert not np.array_equal(v, script.snapshots[5][k])


def test_early_stopping_min_delta_mode_and_missing_monitor():
    script = Scripted([0.5, 0.5, 0.5, 0.5])  # accuracy-like "max" mode would never improve on equal values
    stop = EarlyStopping(monitor="val_loss", patience=1, min_delta=0.01)
    _, trainer, data = _setup([script, stop])
    trainer.fit(data, epochs=4, batch_size=16, verbose=False)
    assert stop.stopped_epoch == 1
    assert EarlyStopping(monitor="val_accuracy").tracker.mode == "max"
    _, trainer, data = _setup([EarlyStopping(monitor="val_nothing")])
    with pytest.raises(ConfigError, match="val_nothing"):
        trainer.fit(data, epochs=1, batch_size=16, verbose=False)


def test_model_checkpoint_writes_loadable_folders_and_pointers(tmp_path):
    script = Scripted([1.0, 0.5, 0.7, 0.4])
    ckpt = ModelCheckpoint(tmp_path / "run", monitor="val_loss", save_best_only=True, save_last=True)
    model, trainer, data = _setup([script, ckpt])
    trainer.fit(data, epochs=4, batch_size=16, verbose=False)
    run = tmp_path / "run"
    assert read_pointer(run).name == "epoch-0004"
    assert read_pointer(run, "best").name == "epoch-0004"
    assert sorted(p.name for p in run.iterdir() if p.is_dir() and not p.is_symlink()) == ["epoch-0004"]  # pruned
    for pointer in ("latest", "best"):  # symbolic links that open as model folders
        assert (run / pointer).is_symlink() and os.readlink(run / pointer) == "epoch-0004"
        same = load_model(run / pointer)
        for k, v in model.state_dict().items():
            assert np.array_equal(same.state_dict()[k], v)
    loaded = load_checkpoint(run)
    for k, v in model.state_dict().items():
        assert np.array_equal(loaded.model_state[k], v)
    assert loaded.trainer_state["epoch"] == 4

    script = Scripted([1.0, 0.5, 0.7, 0.9])
    ckpt = ModelCheckpoint(tmp_path / "all", monitor="val_loss")
    _, trainer, data = _setup([script, ckpt])
    trainer.fit(data, epochs=4, batch_size=16, verbose=False)
    names = sorted(p.name for p in (tmp_path / "all").iterdir() if p.is_dir() and not p.is_symlink())
    assert names == ["epoch-0001", "epoch-0002", "epoch-0003", "epoch-0004"]
    assert read_pointer(tmp_path / "all", "best").name == "epoch-0002"
    best = load_checkpoint(tmp_path / "all" / "epoch-0002")
    for k, v in best.model_state.items():
        assert np.array_equal(v, script.snapshots[1][k])


class NaNAt(Module):
    def __init__(self, k):
        super().__init__()
        self.w = Param(np.eye(2, dtype=np.float32))
        self.k, self.calls = k, 0

    def forward(self, x):
        self.calls += 1
        self.save_for_backward(x)
        return x @ self.w.data * (np.inf if self.calls == self.k else 1.0)

    def backward(self, dy):
        x = self.saved()
        self.w.accumulate(x.T @ dy)
        return dy @ self.w.data.T


def test_terminate_on_nan_stops_naming_the_step(capsys):
    x = np.ones((32, 2), np.float32)
    model = NaNAt(k=6)
    stop = TerminateOnNaN()
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01), callbacks=[stop])
    history = trainer.fit((x, 2 * x), epochs=5, batch_size=8, shuffle=False, verbose=False)
    assert "epoch 2, batch 2 (global step 6)" in stop.message
    assert stop.message in capsys.readouterr().err
    assert history.stop_reason == stop.message
    assert history.epoch == [0]  # the interrupted epoch is not recorded
    assert model.calls == 6 and trainer.global_step == 5  # stopped right there, update not applied
    assert np.isfinite(model.w.data).all()


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_writes_one_plain_line_per_epoch_off_a_terminal():
    stream = io.StringIO()
    _, trainer, data = _setup([ProgressBar(file=stream)])
    trainer.fit(data, val=data, epochs=3, batch_size=8)
    out = stream.getvalue()
    assert "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 3 and out.endswith("\n")
    assert lines[0].startswith("epoch 1/3") and "loss:" in lines[0] and "val_accuracy:" in lines[0]

    tty = FakeTTY()
    _, trainer, data = _setup([ProgressBar(file=tty)])
    trainer.fit(data, epochs=2, batch_size=8)
    assert "\r" in tty.getvalue()  # on a terminal tqdm redraws in place


def test_progress_bar_is_added_by_default_on_stderr(capsys):
    _, trainer, data = _setup([])
    trainer.fit(data, epochs=2, batch_size=16)
    err = capsys.readouterr().err  # pytest's capture is not a terminal
    assert "\r" not in err and len(err.splitlines()) == 2


def test_csv_logger_rows(tmp_path):
    path = tmp_path / "log.csv"
    _, trainer, data = _setup([CSVLogger(path)])
    history = trainer.fit(data, val=data, epochs=3, batch_size=16, verbose=False)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [float(r["loss"]) for r in rows] == history.history["loss"]
    assert [float(r["val_accuracy"]) for r in rows] == history.history["val_accuracy"]
    # A new run truncates the file.
    _, trainer, data = _setup([CSVLogger(path)])
    trainer.fit(data, epochs=1, batch_size=16, verbose=False)
    assert len(path.read_text().splitlines()) == 2


def test_learning_rate_monitor_records_the_schedule():
    monitor = LearningRateMonitor()
    model, trainer, data = _setup([monitor])
    trainer.schedulers = [(StepLR(trainer.optimizer, step_size=1, gamma=0.5), "epoch")]
    history = trainer.fit(data, epochs=3, batch_size=16, verbose=False)
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    per_step = LearningRateMonitor(interval="step")
    _, trainer, data = _setup([per_step])
    trainer.fit(data, epochs=1, batch_size=16, verbose=False)
    assert [s for s, _ in per_step.history] == [1, 2, 3]


def test_plot_history_writes_a_png(tmp_path):
    path = tmp_path / "curves.png"
    _, trainer, data = _setup([PlotHistory(path)])
    trainer.fit(data, val=data, epochs=2, batch_size=16, verbose=False)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 2000


def test_plot_history_without_matplotlib_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"plait-train\[plot\]"):
        PlotHistory("x.png")


def test_callbacks_are_registered_and_buildable_by_name():
    for name in ("progress_bar", "early_stopping", "model_checkpoint", "csv_logger", "terminate_on_nan",
                 "learning_rate_monitor", "plot_history"):
        assert name in registry.callbacks.names()
    _, trainer, _ = _setup(["terminate_on_nan"])
    assert isinstance(trainer.callbacks[0], TerminateOnNaN)


def test_csv_logger_on_resume_keeps_earlier_rows_and_drops_later_ones(tmp_path):
    path, run = tmp_path / "log.csv", tmp_path / "run"
    _, trainer, data = _setup([CSVLogger(path), ModelCheckpoint(run, monitor="loss")])
    trainer.fit(data, epochs=3, batch_size=16, verbose=False)  # rows 1..3; checkpoints after each epoch
    _, resumed, data = _setup([CSVLogger(path), ModelCheckpoint(run, monitor="loss")])
    history = resumed.fit(data, epochs=4, batch_size=16, verbose=False, resume_from=run / "epoch-0002")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]  # the old row 3 was replaced, not duplicated
    assert [float(r["loss"]) for r in rows] == history.history["loss"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_csv_logger_reads_an_existing_log_bounded_and_validated(tmp_path, monkeypatch):
    from plait.core import SerializationError
    from plait.train.callbacks import csv_logger

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    _, trainer, data = _setup([CSVLogger(fifo, append=True)])
    with pytest.raises(SerializationError, match=r"CSVLogger.*fifo\.csv.*FIFO"):  # not a hang
        trainer.fit(data, epochs=1, batch_size=16, verbose=False)
    cases = [(b"epoch,loss\n1,caf\xe9\n", "not UTF-8"), (b'epoch,loss\n1,"' + b"a" * 200_000 + b'"\n', "not a readable CSV"),
             (b"epoch,loss\n" + b"1,0.5\n" * 20, "limit of 64 bytes")]
    monkeypatch.setattr(csv_logger, "CSV_MAX_BYTES", 64)
    for content, problem in cases[2:]:
        path = tmp_path / "big.csv"
        path.write_bytes(content)
        _, trainer, data = _setup([CSVLogger(path, append=True)])
        with pytest.raises(SerializationError, match=rf"big\.csv.*{problem}"):
            trainer.fit(data, epochs=1, batch_size=16, verbose=False)
    monkeypatch.setattr(csv_logger, "CSV_MAX_BYTES", 1 << 20)
    for content, problem in cases[:2]:
        path = tmp_path / "bad.csv"
        path.write_bytes(content)
        _, trainer, data = _setup([CSVLogger(path, append=True)])
        with pytest.raises(SerializationError, match=rf"bad\.csv.*{problem}"):
            trainer.fit(data, epochs=1, batch_size=16, verbose=False)
        assert path.read_bytes() == content  # the refused log is left as it was
