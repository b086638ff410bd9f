"""Typical torch / Keras training scripts, ported line for line, give torch's losses step by step.

Each test runs a small script in PyTorch, then the same script in Plait (same initial
weights copied from torch, same optimizer and schedule, same batches) and compares every
batch loss and the final weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import init
from plait.layers import CrossEntropyLoss, Linear, ReLU, Sequential
from plait.optim import Adam, NAdam, SequentialLR
from plait.optim import CosineAnnealingLR as PlaitCosine
from plait.optim import LinearLR as PlaitLinearLR
from plait.train import Callback, DataLoader, Dataset, EarlyStopping, Trainer

torch = pytest.importorskip("torch")
nn = torch.nn


def _blobs(n, dims, classes, seed=0):
    r = np.random.default_rng(seed)
    y = r.integers(0, classes, n)
    centers = r.standard_normal((classes, dims)) * 2.0
    x = (centers[y] + r.standard_normal((n, dims))).astype(np.float32)
    return x, y.astype(np.int64)


def _copy_weights(theirs, ours):
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


def _assert_close_weights(theirs, ours, rtol):
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.detach().numpy(), rtol=rtol, atol=1e-5, err_msg=k)


# -- script 1: an MLP classifier with a per-item Dataset, a DataLoader and a warm-up + cosine schedule
class TorchBlobs(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), int(self.y[i])


class PlaitBlobs(Dataset):  # the same class, with NumPy instead of torch.from_numpy
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def test_mlp_with_a_per_item_dataset_matches_torch_step_by_step():
    x, y = _blobs(200, 5, 4)
    epochs, batch = 3, 16

    torch.manual_seed(0)
    tmodel = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 4))
    model = Sequential(Linear(5, 32), ReLU(), Linear(32, 4))
    _copy_weights(tmodel, model)

    # ---- torch
    loader = torch.utils.data.DataLoader(TorchBlobs(x, y), batch_size=batch, shuffle=False, drop_last=True)
    opt = torch.optim.NAdam(tmodel.parameters(), lr=0.01, weight_decay=1e-3, decoupled_weight_decay=True)
    steps = epochs * len(loader)
    sched = torch.optim.lr_scheduler.SequentialLR(
        opt, [torch.optim.lr_scheduler.LinearLR(opt, 0.1, total_iters=5),
              torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps - 5)], milestones=[5])  # fmt: skip
    loss_fn = nn.CrossEntropyLoss()
    theirs = []
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(tmodel(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            theirs.append(loss.item())

    # ---- Plait: the same lines
    loader = DataLoader(PlaitBlobs(x, y), batch_size=batch, shuffle=False, drop_last=True)
    opt = NAdam(model.parameters(), lr=0.01, weight_decay=1e-3, decoupled_weight_decay=True)
    sched = SequentialLR(opt, [PlaitLinearLR(opt, 0.1, total_iters=5), PlaitCosine(opt, T_max=steps - 5)], milestones=[5])
    loss_fn = CrossEntropyLoss()
    ours = []
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            model.backward(loss_fn.backward())
            opt.step()
            sched.step()
            ours.append(float(loss))

    assert len(ours) == len(theirs) == epochs * (200 // batch)
    np.testing.assert_allclose(ours, theirs, rtol=2e-4)
    assert ours[-1] < 0.5 * ours[0]  # it learned
    _assert_close_weights(tmodel, model, rtol=1e-3)


# -- script 2: Keras-style fit with validation_split, EarlyStopping and a batch-loss callback
class BatchLosses(Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def _torch_keras_fit(tmodel, x, y, *, batch_size, epochs, validation_split, seed, patience, min_delta, lr):
    """What ``fit(x, y, validation_split=..., callbacks=[EarlyStopping(...)])`` does, written out in torch:
    the last fraction is split off before shuffling; the training part is reshuffled every epoch."""
    split_at = int(len(x) * (1 - validation_split))
    xt, yt, xv, yv = (torch.from_numpy(a) for a in (x[:split_at], y[:split_at], x[split_at:], y[split_at:]))
    opt = torch.optim.Adam(tmodel.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(seed)  # the order Plait's loader draws for this seed
    batch_losses, history = [], {"loss": [], "val_loss": []}
    best, wait = np.inf, 0
    for _ in range(epochs):
        perm = torch.from_numpy(order.permutation(split_at))
        total = 0.0
        for i in range(0, split_at, batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(tmodel(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            batch_losses.append(loss.item())
            total += loss.item() * len(idx)
        with torch.no_grad():
            val = loss_fn(tmodel(xv), yv).item()
        history["loss"].append(total / split_at)
        history["val_loss"].append(val)
        if val < best - min_delta:
            best, wait = val, 0
        else:
            wait += 1
            if wait >= patience:
                break
    return batch_losses, history


def test_keras_style_fit_with_validation_split_and_callbacks_matches_torch():
    x, y = _blobs(300, 6, 3, seed=1)
    kwargs = {"batch_size": 32, "epochs": 30, "validation_split": 0.2}
    torch.manual_seed(1)
    tmodel = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    model = Sequential(Linear(6, 16), ReLU(), Linear(16, 3))
    _copy_weights(tmodel, model)
    theirs_batches, theirs = _torch_keras_fit(tmodel, x, y, seed=7, patience=2, min_delta=0.01, lr=0.01, **kwargs)

    recorder = BatchLosses()
    trainer = Trainer(model, CrossEntropyLoss(), Adam(model.parameters(), lr=0.01), metrics=["accuracy"], seed=7,
                      callbacks=[{"type": "early_stopping", "monitor": "val_loss", "patience": 2, "min_delta": 0.01}])  # fmt: skip
    history = trainer.fit(x, y, **kwargs, callbacks=[recorder], verbose=False)

    assert len(history.epoch) == len(theirs["loss"]) < 30  # stopped early, at the same epoch
    assert isinstance(trainer.callbacks[0], EarlyStopping) and "EarlyStopping" in history.stop_reason
    np.testing.assert_allclose(recorder.losses, theirs_batches, rtol=2e-4)
    np.testing.assert_allclose(history.history["loss"], theirs["loss"], rtol=2e-4)
    np.testing.assert_allclose(history.history["val_loss"], theirs["val_loss"], rtol=2e-4)
    assert history.params["samples"] == 240 and history.params["steps"] == 8
    _assert_close_weights(tmodel, model, rtol=1e-3)


def test_init_recipe_ports():
    """``model.apply(init_fn)`` with init.* gives weights with torch's recipe statistics."""
    model = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))

    def init_fn(m):
        if isinstance(m, Linear):
            init.kaiming_normal_(m.weight, nonlinearity="relu", generator=0)
            init.zeros_(m.bias)

    model.apply(init_fn)
    assert model[0].weight.data.std() == pytest.approx(np.sqrt(2 / 64), rel=0.05)
    assert not model[2].bias.data.any()
