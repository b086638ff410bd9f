"""Trainer: fit/evaluate/predict, grad accumulation, clipping, schedulers, non-finite losses."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import ConfigError, Module, Param, is_grad_enabled, manual_seed
from plait.layers import CrossEntropyLoss, Linear, MSELoss, ReLU, Sequential
from plait.optim import SGD, Adam
from plait.train import ArrayDataset, DataLoader, NonFiniteLossError, Trainer


def _blobs(n=240, seed=0):
    r = np.random.default_rng(seed)
    y = r.integers(0, 3, n)
    centers = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])
    x = (centers[y] + 0.5 * r.standard_normal((n, 2))).astype(np.float32)
    return x, y.astype(np.int64)


def _mlp():
    manual_seed(0)
    return Sequential(Linear(2, 16), ReLU(), Linear(16, 3))


def test_fit_learns_and_evaluate_predict_agree():
    x, y = _blobs()
    model = _mlp()
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.05), metrics=["accuracy", "f1"], seed=0)
    history = trainer.fit((x, y), val=(x[:60], y[:60]), epochs=4, batch_size=32, verbose=False)
    assert history.epoch == [0, 1, 2, 3]
    assert set(history.history) == {"loss", "accuracy", "f1", "val_loss", "val_accuracy", "val_f1"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = trainer.evaluate((x, y))
    assert result["accuracy"] > 0.95
    pred = trainer.predict(x)
    assert pred.shape == (240, 3)
    assert np.mean(pred.argmax(1) == y) == pytest.approx(result["accuracy"])
    assert np.array_equal(trainer.predict(DataLoader(ArrayDataset(x, y), 50)), pred)
    assert trainer.global_step == 4 * 8


class Probe(Module):
    """Records the mode and grad state each forward sees."""

    def __init__(self):
        super().__init__()
        self.w = Param(np.ones((2, 3), np.float32))
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, is_grad_enabled()))
        self.save_for_backward(x)
        return x @ self.w.data

    def backward(self, dy):
        x = self.saved()
        self.w.accumulate(x.T @ dy)
        return dy @ self.w.data.T


def test_evaluate_runs_in_eval_mode_without_grad_and_restores_mode():
    x, y = _blobs(40)
    model = Probe()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1))
    trainer.fit((x, y), val=(x, y), epochs=1, batch_size=40, verbose=False)
    assert model.seen == [(True, True), (False, False)]
    assert model.training
    assert model.__dict__["_saved_stack"] == []  # nothing left cached by evaluation


def test_grad_accumulation_equals_one_big_batch():
    x, y = _blobs(64)
    results = []
    for batch, accum in ((32, 1), (8, 4)):
        model = _mlp()
        trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), grad_accumulation=accum)
        trainer.fit(DataLoader(ArrayDataset(x, y), batch), epochs=2, verbose=False)
        results.append((model.state_dict(), trainer.global_step))
    (big, steps_big), (small, steps_small) = results
    assert steps_big == steps_small == 4
    for k in big:
        np.testing.assert_allclose(small[k], big[k], rtol=1e-5, atol=1e-6)
    # A final partial group (5 batches, groups of 2) is averaged over its own size.
    model = _mlp()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), grad_accumulation=2)
    trainer.fit(DataLoader(ArrayDataset(x[:40], y[:40]), 8), epochs=1, verbose=False)
    assert trainer.global_step == 3


def test_clip_grad_norm_bounds_the_update():
    x, y = _blobs(32)
    steps = []
    for clip in (None, 1e-3):
        model = _mlp()
        before = {k: v.copy() for k, v in model.state_dict().items()}
        Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=1.0), clip_grad_norm=clip).fit(
            (x, y), epochs=1, batch_size=32, verbose=False, shuffle=False
        )
        delta = np.sqrt(sum(float(((model.state_dict()[k] - before[k]) ** 2).sum()) for k in before))
        steps.append(delta)
    assert steps[1] == pytest.approx(1e-3, rel=1e-3)  # lr 1: the step is the clipped gradient
    assert steps[0] > 10 * steps[1]


class Counting:
    """A scheduler that counts its steps (and what it was given)."""

    def __init__(self):
        self.calls = []

    def step(self, *args):
        self.calls.append(args)

    def get_last_lr(self):
        return [0.0]

    def state_dict(self):
        return {"calls": len(self.calls)}

    def load_state_dict(self, state):
        self.calls = [()] * state["calls"]


def test_step_and_epoch_schedulers_mix():
    x, y = _blobs(40)
    model = _mlp()
    per_step, per_epoch, plateau = Counting(), Counting(), Counting()
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1),
                      scheduler=[per_step, per_epoch], scheduler_interval=["step", "epoch"])
    trainer.fit((x, y), epochs=3, batch_size=10, verbose=False)
    assert len(per_step.calls) == 12 and len(per_epoch.calls) == 3
    trainer = Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), scheduler=plateau,
                      scheduler_monitor="val_loss")
    history = trainer.fit((x, y), val=(x, y), epochs=2, batch_size=10, verbose=False)
    assert [c[0] for c in plateau.calls] == history.history["val_loss"]
    with pytest.raises(ConfigError, match="scheduler_interval"):
        Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), scheduler=per_step, scheduler_interval="batch")


class NaNAfter(Module):
    """Identity-ish linear model whose output becomes NaN from the k-th forward on."""

    def __init__(self, k):
        super().__init__()
        self.w = Param(np.eye(2, dtype=np.float32))
        self.k, self.calls = k, 0

    def forward(self, x):
        self.calls += 1
        self.save_for_backward(x)
        out = x @ self.w.data
        return out * np.nan if self.calls >= self.k else out

    def backward(self, dy):
        x = self.saved()
        self.w.accumulate(x.T @ dy)
        return dy @ self.w.data.T


def test_non_finite_loss_raises_naming_the_step_or_is_skipped():
    x = np.ones((40, 2), np.float32)
    model = NaNAfter(k=7)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01))
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 2 \(global step 7\)"):
        trainer.fit((x, x), epochs=3, batch_size=8, shuffle=False, verbose=False)
    assert np.isfinite(model.w.data).all()
    model = NaNAfter(k=7)
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01), nan_policy="skip")
    trainer.fit((x, x), epochs=2, batch_size=8, shuffle=False, verbose=False)
    assert trainer.skipped_batches == 4 and trainer.global_step == 6
    assert np.isfinite(model.w.data).all()
    with pytest.raises(ConfigError, match="nan_policy"):
        Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01), nan_policy="ignore")


def test_pytorch_style_loop_with_the_same_pieces():
    x, y = _blobs(96)
    model = _mlp()
    loss, opt = CrossEntropyLoss(), Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(3):
        for bx, by in DataLoader(ArrayDataset(x, y), 32, shuffle=True, seed=0):
            value = loss(model(bx), by)
            first = value if first is None else first
            model.backward(loss.backward())
            opt.step()
            model.zero_grad()
    assert value < first


class NaNOnCalls(NaNAfter):
    """NaN output exactly on the listed forward calls (1-based)."""

    def __init__(self, calls):
        super().__init__(k=10**9)
        self.bad = set(calls)

    def forward(self, x):
        out = super().forward(x)
        return out * np.nan if self.calls in self.bad else out


def test_skipped_batch_at_the_end_of_an_accumulation_group_still_steps():
    x = np.ones((32, 2), np.float32)
    model = NaNOnCalls({2})  # batches (1, 2) form a group; batch 2 is NaN
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=0.01), grad_accumulation=2, nan_policy="skip")
    trainer.fit((x, 2 * x), epochs=1, batch_size=8, shuffle=False, verbose=False)
    assert trainer.skipped_batches == 1 and trainer.global_step == 2
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())  # nothing carried over
