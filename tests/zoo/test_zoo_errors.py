"""Wrong inputs and arguments fail with errors that name the model, what it expected and what it got."""

from __future__ import annotations

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import ConfigError, DTypeError, RegistryError, ShapeError


def test_image_models_name_the_expected_shape():
    with pytest.raises(ShapeError, match=r"cnn: expected input with size 28 on axis 2, got shape \(2, 1, 32, 32\)"):
        zoo.create("lenet5")(np.zeros((2, 1, 32, 32), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"resnet: expected input with size 3 on axis 1"):
        zoo.create("resnet8")(np.zeros((2, 1, 32, 32), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"mlp: expected input \(B, 784\)"):
        zoo.create("mlp-mnist")(np.zeros((2, 780), dtype=np.float32))
    with pytest.raises(DTypeError, match="mlp: expected input as a floating-point array"):
        zoo.create("mlp-mnist")(np.zeros((2, 784), dtype=np.int64))


def test_sequence_models_check_ids_and_lengths():
    with pytest.raises(ShapeError, match=r"gpt: token ids values must lie in \[0, 65\)"):
        zoo.create("gpt-nano")(np.array([[1, 70]]))
    with pytest.raises(DTypeError, match="rnn_lm: expected token ids as an integer array"):
        zoo.create("char-lstm")(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ShapeError, match="transformer: source ids of length 200 exceed max_len 128"):
        zoo.create("seq2seq-mini")(np.ones((1, 200), dtype=np.int64), np.ones((1, 3), dtype=np.int64))


def test_bad_architecture_arguments():
    with pytest.raises(ConfigError, match="gpt: positional must be 'rope' or 'learned'"):
        zoo.create("gpt-nano", positional="alibi")
    with pytest.raises(ConfigError, match="rnn_lm: cell must be one of rnn, lstm, gru"):
        zoo.create("char-lstm", cell="transformer")
    with pytest.raises(ConfigError, match="tie_weights needs embed_dim == hidden_size"):
        zoo.create("char-lstm", tie_weights=True)
    with pytest.raises(ConfigError, match="resnet: widths .* and blocks .* need the same"):
        zoo.create("resnet", widths=[8, 16], blocks=[1])
    with pytest.raises(ConfigError, match="cnn: kernel_size needs one value per conv layer"):
        zoo.create("cnn", kernel_size=[3])
    with pytest.raises(RegistryError, match="unknown layer 'relux'; did you mean 'relu'"):
        zoo.create("mlp", activation="relux")
    with pytest.raises(ConfigError, match="a layer must be a registered name or a"):
        zoo.create("mlp", activation=3)
