"""Keras habits: fit(x, y), evaluate(x, y), predict(x), validation_split / validation_data,
callbacks by registered name or config, History.params, EarlyStopping's reasons; the
double-softmax warning."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr

import numpy as np
import pytest

from plait.core import ConfigError, RegistryError, manual_seed
from plait.layers import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Linear,
    LogSoftmax,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
)
from plait.optim import SGD
from plait.train import (
    Callback,
    DataLoader,
    DoubleActivationWarning,
    EarlyStopping,
    LearningRateMonitor,
    TensorDataset,
    Trainer,
)


def _data(n=50, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 3)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def _trainer(**kwargs):
    manual_seed(0)
    model = Sequential(Linear(3, 8), ReLU(), Linear(8, 2))
    return model, Trainer(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1), metrics=["accuracy"], seed=0, **kwargs)


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_fit_x_y_is_the_tuple_form_and_evaluate_predict_take_x_y():
    x, y = _data()
    model_a, a = _trainer()
    model_b, b = _trainer()
    ha = a.fit(x, y, 8, 3, False)  # Keras' positional order: x, y, batch_size, epochs, verbose
    hb = b.fit((x, y), batch_size=8, epochs=3, verbose=False)
    assert ha.history == hb.history
    for k, v in _weights(model_a).items():
        np.testing.assert_array_equal(v, model_b.state_dict()[k])
    assert a.evaluate(x, y) == a.evaluate((x, y)) == a.evaluate(TensorDataset(x, y))
    assert a.evaluate(x, y, batch_size=7)["loss"] == pytest.approx(a.evaluate(x, y)["loss"], rel=1e-6)
    np.testing.assert_array_equal(a.predict(x), a.predict(DataLoader(TensorDataset(x, y), 16)))
    with pytest.raises(ConfigError, match="same number of samples"):
        a.evaluate(x, y[:-1])
    with pytest.raises(ConfigError, match="without y"):
        a.fit(DataLoader(TensorDataset(x, y), 8), y, verbose=False)


def test_validation_split_takes_the_last_fraction_before_shuffling():
    x, y = _data(50)
    model, trainer = _trainer()
    history = trainer.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, verbose=False)
    assert history.params["samples"] == 40 and history.params["do_validation"]
    # the same as training on the first 40 and validating on the last 10 explicitly
    model_b, other = _trainer()
    expected = other.fit(x[:40], y[:40], batch_size=8, epochs=2, validation_data=(x[40:], y[40:]), verbose=False)
    assert history.history == expected.history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # validation_data wins over validation_split, as in Keras
    _, third = _trainer()
    assert third.fit(x[:40], y[:40], batch_size=8, epochs=2, validation_split=0.5, validation_data=(x[40:], y[40:]),
                     verbose=False).history == expected.history  # fmt: skip
    with pytest.raises(ConfigError, match="validation_split must be a number in"):
        trainer.fit(x, y, validation_split=1.0, verbose=False)
    with pytest.raises(ConfigError, match="not enough for validation_split"):
        trainer.fit(x[:1], y[:1], validation_split=0.5, verbose=False)
    with pytest.raises(ConfigError, match="needs array data"):
        trainer.fit(DataLoader(TensorDataset(x, y), 8), validation_split=0.1, verbose=False)
    with pytest.raises(ConfigError, match="give one of them"):
        trainer.fit(x, y, val=(x, y), validation_data=(x, y), verbose=False)


def test_history_params_like_keras():
    x, y = _data(50)
    _, trainer = _trainer(callbacks=[LearningRateMonitor()])
    history = trainer.fit(x, y, batch_size=8, epochs=3, verbose=False)
    p = history.params
    assert p["epochs"] == 3 and p["steps"] == 7 and p["batch_size"] == 8 and p["samples"] == 50
    assert p["verbose"] is False and p["do_validation"] is False
    assert p["metrics"] == ["loss", "accuracy", "lr"]


def test_callbacks_by_registered_name_and_config():
    x, y = _data()
    _, trainer = _trainer(callbacks=[{"type": "early_stopping", "monitor": "loss", "patience": 0, "min_delta": 10.0}])
    stop = trainer.callbacks[0]
    assert isinstance(stop, EarlyStopping) and stop.monitor == "loss"
    with redirect_stderr(io.StringIO()):
        history = trainer.fit(x, y, batch_size=8, epochs=5)
    assert history.epoch == [0, 1]  # nothing beats the first epoch by 10
    _, trainer = _trainer(callbacks=["learning_rate_monitor"])
    history = trainer.fit(x, y, epochs=1, verbose=False, callbacks=[{"type": "terminate_on_nan"}])
    assert "lr" in history.history
    with pytest.raises(RegistryError, match="early_stoping"):
        _trainer(callbacks=[{"type": "early_stoping"}])
    with pytest.raises(ConfigError, match="cannot build callback 'early_stopping'"):
        _trainer(callbacks=[{"type": "early_stopping", "patiense": 2}])
    with pytest.raises(ConfigError, match="is not a callback"):
        _trainer(callbacks=[3])


def test_early_stopping_says_why_and_refuses_a_monitor_that_never_appears():
    x, y = _data()
    _, trainer = _trainer(callbacks=[EarlyStopping(monitor="loss", patience=1, min_delta=10.0, restore_best_weights=True)])
    err = io.StringIO()
    with redirect_stderr(err):
        history = trainer.fit(x, y, batch_size=8, epochs=5)
    said = err.getvalue()
    assert "Epoch 2: EarlyStopping: loss did not improve for 1 epoch(s) (patience 1, min_delta 10" in said
    assert "restored the weights of epoch 1" in said and history.stop_reason in said
    quiet = EarlyStopping(monitor="loss", patience=0, min_delta=10.0, verbose=False)
    _, trainer = _trainer(callbacks=[quiet])
    err = io.StringIO()
    with redirect_stderr(err):
        trainer.fit(x, y, epochs=3, verbose=False)
    assert err.getvalue() == "" and quiet.stopped_epoch == 1

    _, trainer = _trainer(callbacks=[EarlyStopping()])  # monitor="val_loss" but no validation data
    before = trainer.global_step
    with pytest.raises(ConfigError, match=r"monitor='val_loss' never appears .*validation_split.*: loss, accuracy"):
        trainer.fit(x, y, epochs=2, verbose=False)
    assert trainer.global_step == before  # refused before any step
    history = trainer.fit(x, y, epochs=2, validation_split=0.2, verbose=False)  # now it can appear
    assert "val_loss" in history.history
    _, trainer = _trainer(callbacks=[EarlyStopping(monitor="lr")])
    with pytest.raises(ConfigError, match="'lr'"):
        trainer.fit(x, y, epochs=1, verbose=False)
    _, trainer = _trainer(callbacks=[LearningRateMonitor(), EarlyStopping(monitor="lr")])
    trainer.fit(x, y, epochs=1, verbose=False)


@pytest.mark.parametrize(
    "last, loss, match",
    [
        (Softmax, CrossEntropyLoss, "double softmax"),
        (LogSoftmax, CrossEntropyLoss, "applied twice"),
        (Sigmoid, BCEWithLogitsLoss, "double sigmoid"),
    ],
)
def test_double_activation_warns_once(last, loss, match):
    inner = Sequential(Linear(3, 2), last())
    model = Sequential(Linear(3, 3), inner)  # nested Sequentials are followed to the output
    with pytest.warns(DoubleActivationWarning, match=match):
        Trainer(model, loss(), SGD(model.parameters(), lr=0.1))


def test_no_warning_for_the_right_pairs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model, loss in [
            (Sequential(Linear(3, 2), LogSoftmax()), NLLLoss()),
            (Sequential(Linear(3, 2), Softmax(), Linear(2, 2)), CrossEntropyLoss()),
            (Sequential(Linear(3, 2)), CrossEntropyLoss()),
        ]:
            Trainer(model, loss, SGD(model.parameters(), lr=0.1))


class AddsScore(Callback):
    """A user callback that puts its own entry into the epoch logs (before EarlyStopping)."""

    order = -20

    def __init__(self, declare):
        super().__init__()
        if declare:
            self.log_keys = lambda: ["score"]

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = 1.0 / (epoch + 1)


def test_keys_added_by_user_callbacks_can_be_monitored():
    x, y = _data()
    for declare in (True, False):
        stop = EarlyStopping(monitor="score", mode="max", patience=1, verbose=False)
        _, trainer = _trainer(callbacks=[AddsScore(declare), stop])
        history = trainer.fit(x, y, epochs=5, verbose=False)
        assert history.epoch == [0, 1]  # the score falls after the first epoch
        assert ("score" in history.params["metrics"]) == declare
    _, trainer = _trainer(callbacks=[AddsScore(True), EarlyStopping(monitor="scores")])
    with pytest.raises(ConfigError, match="it can monitor: loss, accuracy, score"):
        trainer.fit(x, y, epochs=1, verbose=False)
    _, trainer = _trainer(callbacks=[AddsScore(False), EarlyStopping(monitor="scores")])
    with pytest.raises(ConfigError, match="'scores' is not in the logs"):  # undeclared: checked at the epoch's end
        trainer.fit(x, y, epochs=1, verbose=False)
