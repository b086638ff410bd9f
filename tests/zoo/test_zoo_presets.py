"""Every preset builds, runs forward and backward on a small batch, and round-trips through save/load."""

from __future__ import annotations

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import manual_seed, no_grad

PRESETS = ["mlp-mnist", "lenet5", "cnn-digits", "resnet8", "resnet8-mnist", "char-lstm", "char-gru", "gpt-nano", "gpt-mini",
           "seq2seq-mini"]


def sample_inputs(model, architecture: str, rng: np.random.Generator) -> tuple:
    """A batch of two small inputs that fits ``model``."""
    if architecture == "mlp":
        return (rng.standard_normal((2, model.sizes[0])).astype(np.float32),)
    if architecture == "cnn":
        s = model.image_size
        return (rng.standard_normal((2, model.in_channels, s, s)).astype(np.float32),)
    if architecture == "resnet":
        s = 28 if model.in_channels == 1 else 32
        return (rng.standard_normal((2, model.in_channels, s, s)).astype(np.float32),)
    if architecture in ("rnn_lm", "rnn_classifier", "gpt"):
        return (rng.integers(0, model.vocab_size, (2, 9)),)
    if architecture == "transformer":
        return rng.integers(1, model.src_vocab_size, (2, 7)), rng.integers(1, model.tgt_vocab_size, (2, 6))
    raise AssertionError(architecture)


def test_the_issue_presets_are_registered():
    assert set(PRESETS) <= set(zoo.list_models(presets=True))
    assert {"resnet-mini", "transformer-seq2seq-mini"} <= set(zoo.list_models(presets=True))


def test_gpt_mini_has_about_3_2m_parameters():
    cfg = zoo.model_config("gpt-mini")["model_args"]
    assert (cfg["vocab_size"], cfg["num_layers"], cfg["d_model"], cfg["num_heads"], cfg["num_kv_heads"],
            cfg["ffn_dim"], cfg["positional"]) == (512, 4, 256, 8, 4, 1024, "rope")
    assert 3.1e6 < zoo.create("gpt-mini").num_parameters() < 3.3e6


@pytest.mark.parametrize("name", PRESETS)
def test_preset_forward_backward_and_round_trip(name, tmp_path):
    manual_seed(0)
    rng = np.random.default_rng(0)
    model = zoo.create(name)
    architecture = zoo.model_config(name)["architecture"]
    inputs = sample_inputs(model, architecture, rng)
    out = model(*inputs)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    model.backward(rng.standard_normal(out.shape).astype(np.float32))
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert np.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
        assert np.any(p.grad != 0), f"{name}: {pname} has an all-zero gradient"

    model.eval()
    with no_grad():
        expected = model(*inputs)
    same = zoo.load(zoo.save(model, tmp_path / name))
    assert type(same) is type(model)
    assert same.num_parameters() == model.num_parameters()
    with no_grad():
        np.testing.assert_array_equal(same(*inputs), expected)
