"""Finite differences in float64 on tiny versions of every architecture (inputs and all parameters)."""

from __future__ import annotations

import numpy as np
import pytest

import plait.zoo as zoo
from plait.core import manual_seed
from plait.core.testing import gradcheck

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape)


def _ids(high, *shape):
    return RNG.integers(0, high, shape)


CASES = {
    "mlp-layer-norm-gelu": (
        dict(architecture="mlp", sizes=[5, 6, 4, 3], activation="gelu", norm="layer_norm"), lambda: (_x(3, 5),)),
    "mlp-flattens": (dict(architecture="mlp", sizes=[6, 4, 2], activation="tanh"), lambda: (_x(2, 2, 3),)),
    "cnn": (dict(architecture="cnn", in_channels=2, num_classes=3, image_size=8, channels=[3, 4], kernel_size=3,
                 padding=1, hidden=[5], activation="tanh", pool="avg_pool2d"), lambda: (_x(2, 2, 8, 8),)),
    "cnn-batch-norm-max-pool": (dict(architecture="cnn", in_channels=1, num_classes=2, image_size=6, channels=[2],
                                     kernel_size=3, padding=1, hidden=[], batch_norm=True, activation="tanh"),
                                lambda: (_x(3, 1, 6, 6),)),
    "resnet": (dict(architecture="resnet", in_channels=1, num_classes=3, widths=[2, 3], blocks=[1, 1],
                    activation="tanh"), lambda: (_x(3, 1, 6, 6),)),
    "rnn_lm-lstm-2-layers": (dict(architecture="rnn_lm", vocab_size=7, embed_dim=4, hidden_size=5, num_layers=2),
                             lambda: (_ids(7, 2, 4),)),
    "rnn_lm-gru-tied": (dict(architecture="rnn_lm", vocab_size=7, embed_dim=5, hidden_size=5, cell="gru",
                             tie_weights=True), lambda: (_ids(7, 2, 4),)),
    "rnn_classifier-rnn-last-bidirectional": (
        dict(architecture="rnn_classifier", vocab_size=7, num_classes=3, embed_dim=4, hidden_size=5, cell="rnn",
             bidirectional=True, num_layers=2), lambda: (_ids(7, 2, 4),)),
    "rnn_classifier-lstm-mean": (
        dict(architecture="rnn_classifier", vocab_size=7, num_classes=3, embed_dim=4, hidden_size=5, pooling="mean"),
        lambda: (_ids(7, 2, 4),)),
    "gpt-rope-gqa": (dict(architecture="gpt", vocab_size=9, context_length=8, d_model=8, num_layers=2, num_heads=4,
                          num_kv_heads=2, ffn_dim=12), lambda: (_ids(9, 2, 5),)),
    "gpt-learned-rms-untied": (dict(architecture="gpt", vocab_size=9, context_length=8, d_model=8, num_layers=1,
                                    num_heads=2, ffn_dim=12, positional="learned", norm="rms_norm",
                                    activation="silu", tie_embeddings=False), lambda: (_ids(9, 2, 5),)),
    "transformer-rope": (dict(architecture="transformer", src_vocab_size=9, tgt_vocab_size=7, d_model=8,
                              num_heads=2, num_encoder_layers=1, num_decoder_layers=2, ffn_dim=12, max_len=8),
                         lambda: (np.array([[3, 4, 5, 0, 0], [6, 7, 8, 1, 2]]), _ids(7, 2, 4))),
    "transformer-sinusoidal-shared": (
        dict(architecture="transformer", src_vocab_size=9, d_model=8, num_heads=2, num_encoder_layers=2,
             num_decoder_layers=1, ffn_dim=12, max_len=8, positional="sinusoidal", share_embeddings=True,
             num_kv_heads=1), lambda: (_ids(9, 2, 5), _ids(9, 2, 3))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck_float64(case):
    args, make_inputs = CASES[case]
    args = dict(args)
    manual_seed(1)
    model = zoo.create(args.pop("architecture"), **args).astype(np.float64)
    inputs = tuple(a.astype(np.float64) if a.dtype.kind == "f" else a for a in make_inputs())
    gradcheck(model, *inputs, max_checks=12)
