"""Checkpoint folders: round trips, validation, atomicity under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from plait.core import CheckpointError, load_model, manual_seed
from plait.layers import Linear, MSELoss, ReLU, Sequential
from plait.optim import SGD
from plait.train import ArrayDataset, DataLoader, Trainer, load_checkpoint
from plait.train.checkpoint import (
    pack_state,
    read_pointer,
    remove_stale_temporaries,
    save_checkpoint,
    unpack_state,
    write_pointer,
)


def test_pack_unpack_round_trip_keeps_types():
    tree = {
        "state": {0: {"momentum": np.arange(6.0).reshape(2, 3), "step": 3}, 1: {"v": np.ones(2, np.float32)}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "nesterov": False, "name": None}],
        "rng": np.random.default_rng(5).bit_generator.state,
        "scalar": np.float64(2.5),
    }
    arrays: dict = {}
    packed = pack_state(tree, arrays, "optimizer")
    text = json.dumps(packed)  # really JSON
    back = unpack_state(json.loads(text), arrays)
    assert set(back["state"]) == {0, 1}  # integer keys survive JSON
    assert np.array_equal(back["state"][0]["momentum"], tree["state"][0]["momentum"])
    assert back["state"][0]["step"] == 3
    assert back["param_groups"][0]["betas"] == (0.9, 0.999)  # tuples survive JSON
    assert back["rng"] == tree["rng"]
    assert back["scalar"] == 2.5 and type(back["scalar"]) is float
    with pytest.raises(CheckpointError, match="cannot store"):
        pack_state({"f": object()}, {}, "x")


def _trainer(tmp_path):
    manual_seed(0)
    model = Sequential(Linear(4, 8), ReLU(), Linear(8, 1))
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    loader = DataLoader(ArrayDataset(x, x[:, :1] * 2), batch_size=16, shuffle=True, seed=1)
    return model, opt, Trainer(model, MSELoss(), opt, seed=0), loader


def test_trainer_checkpoint_round_trip(tmp_path):
    model, opt, trainer, loader = _trainer(tmp_path)
    trainer.fit(loader, epochs=2, verbose=False)
    folder = trainer.save_checkpoint(tmp_path / "ck")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "optimizer.safetensors",
                                                        "trainer_state.json"]
    same = load_model(folder)  # a checkpoint folder is also a model folder
    x = np.ones((2, 4), np.float32)
    assert np.array_equal(same(x), model.eval()(x))
    loaded = load_checkpoint(folder)
    for k, v in model.state_dict().items():
        assert np.array_equal(loaded.model_state[k], v)
    state = opt.state_dict()
    assert set(loaded.optimizer_state["state"]) == set(state["state"])
    for i, s in state["state"].items():
        for name, value in s.items():
            assert np.array_equal(loaded.optimizer_state["state"][i][name], value)
    assert loaded.trainer_state["epoch"] == 2 and loaded.trainer_state["step"] == 8


def test_corrupt_or_missing_checkpoint_raises_naming_the_path(tmp_path):
    model, _, trainer, loader = _trainer(tmp_path)
    trainer.fit(loader, epochs=1, verbose=False)
    folder = trainer.save_checkpoint(tmp_path / "ck")
    weights = folder / "model.safetensors"
    good = weights.read_bytes()
    raw = bytearray(good)
    raw[-3] ^= 0xFF  # flip bits in the last weight
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="model.safetensors.*SHA-256"):
        load_checkpoint(folder)
    weights.write_bytes(good)
    load_checkpoint(folder)
    (folder / "optimizer.safetensors").unlink()
    with pytest.raises(CheckpointError, match="optimizer.safetensors"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "nothing")
    write_pointer(tmp_path, "gone")
    with pytest.raises(CheckpointError, match="gone"):
        load_checkpoint(tmp_path)


def test_weights_that_do_not_fit_the_model_raise_checkpoint_error(tmp_path):
    save_checkpoint(tmp_path / "ck", {"0.weight": np.zeros((3, 3), np.float32)}, {"state": {}, "param_groups": []}, {})
    _, _, trainer, loader = _trainer(tmp_path)
    with pytest.raises(CheckpointError, match="ck"):
        trainer.fit(loader, epochs=1, resume_from=tmp_path / "ck", verbose=False)


KILLED_SAVE = r'''
import sys, time
from pathlib import Path
import numpy as np
import plait.train.checkpoint as ck

root = Path(sys.argv[1])
target = sys.argv[2]
good = {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}
ck.save_checkpoint(root / "epoch-0001", good, {"state": {}, "param_groups": []}, {"epoch": 1})
ck.write_pointer(root, "epoch-0001")

real_save = ck.save_safetensors
calls = []

def half_then_hang(path, arrays, metadata=None):
    calls.append(path)
    if len(calls) == 1:  # the optimizer file (the model file is core's): write half of it, then stall
        real_save(path, arrays, metadata)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        print("mid-write", flush=True)
        time.sleep(600)
    return real_save(path, arrays, metadata)

ck.save_safetensors = half_then_hang
bad = {"w": np.full((3, 4), 7.0, dtype=np.float32)}
ck.save_checkpoint(root / target, bad, {"state": {0: {"m": np.ones(4)}}, "param_groups": []}, {"epoch": 2})
ck.write_pointer(root, target)
print("not killed", flush=True)
'''


@pytest.mark.parametrize("target", ["epoch-0002", "epoch-0001"])  # a new folder, or overwriting the same one
def test_save_killed_mid_write_leaves_previous_checkpoint_loadable(tmp_path, target):
    script = tmp_path / "save.py"
    script.write_text(KILLED_SAVE)
    root = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(root), target], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(120, proc.kill)
    timer.start()
    try:
        line = proc.stdout.readline()
        assert line.strip() == "mid-write", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        timer.cancel()
    assert proc.returncode == -signal.SIGKILL
    assert read_pointer(root).name == "epoch-0001"
    loaded = load_checkpoint(root)
    assert loaded.path.name == "epoch-0001"
    assert np.array_equal(loaded.model_state["w"], np.arange(12, dtype=np.float32).reshape(3, 4))
    assert loaded.trainer_state == {"epoch": 1}
    assert not (root / "epoch-0002").exists()
    leftovers = [p for p in root.iterdir() if p.name.startswith(".")]
    assert leftovers  # the half-written temporary folder is there, ignored ...
    remove_stale_temporaries(root)  # ... and cleaned up by the next run
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert load_checkpoint(root).path.name == "epoch-0001"


def test_a_refused_checkpoint_leaves_the_trainer_as_it_was(tmp_path):
    """Loading is all or nothing: the weights (loaded first) are put back when a later part is refused."""
    from plait.optim import StepLR

    model, opt, trainer, loader = _trainer(tmp_path)
    trainer.fit(loader, epochs=1, verbose=False)
    folder = trainer.save_checkpoint(tmp_path / "ck")  # no scheduler in this run
    manual_seed(5)
    other_model = Sequential(Linear(4, 8), ReLU(), Linear(8, 1))
    other_opt = SGD(other_model.parameters(), lr=0.05, momentum=0.9)
    other = Trainer(other_model, MSELoss(), other_opt, scheduler=StepLR(other_opt, step_size=1), seed=0)
    weights = {k: v.copy() for k, v in other_model.state_dict().items()}
    assert any(not np.array_equal(weights[k], v) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="scheduler states"):
        other.load_checkpoint(folder)
    for k, v in other_model.state_dict().items():
        assert np.array_equal(v, weights[k]), k
    assert other_opt.state_dict()["state"] == {} and other.epoch == 0
