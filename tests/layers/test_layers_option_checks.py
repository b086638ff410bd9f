"""Constructor options that are not numbers get a ConfigError naming the layer and the argument
(never a bare ValueError from ``int("abc")`` / ``float("abc")``)."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import ConfigError
from plait.layers import (
    ELU,
    AvgPool2d,
    CrossEntropyLoss,
    FeedForward,
    Flatten,
    Hardtanh,
    HuberLoss,
    LeakyReLU,
    Reshape,
    Softplus,
    Unflatten,
)

CASES = [
    (lambda: Reshape("a", 2), "Reshape: shape"),
    (lambda: Reshape((2, 2.5)), "Reshape: shape"),
    (lambda: Flatten("1"), "Flatten: start_dim"),
    (lambda: Flatten(1, None), "Flatten: end_dim"),
    (lambda: Unflatten(1, "ab"), "Unflatten: unflattened_size"),
    (lambda: Unflatten(1.5, (2, 2)), "Unflatten: dim"),
    (lambda: AvgPool2d(2, divisor_override="x"), "AvgPool2d: divisor_override"),
    (lambda: AvgPool2d(2, divisor_override=0), "AvgPool2d: divisor_override"),
    (lambda: FeedForward("4", 8), "FeedForward: embed_dim"),
    (lambda: FeedForward(4, 0), "FeedForward: hidden_dim"),
    (lambda: LeakyReLU("0.1"), "LeakyReLU: negative_slope"),
    (lambda: ELU(None), "ELU: alpha"),
    (lambda: Hardtanh("a", 1.0), "Hardtanh: min_val"),
    (lambda: Hardtanh(-1.0, float("nan")), "Hardtanh: max_val"),
    (lambda: Softplus(beta="2"), "Softplus: beta"),
    (lambda: Softplus(threshold=[1]), "Softplus: threshold"),
    (lambda: CrossEntropyLoss(label_smoothing="0.1"), "CrossEntropyLoss: label_smoothing"),
    (lambda: CrossEntropyLoss(label_smoothing=1.5), "CrossEntropyLoss: label_smoothing"),
    (lambda: CrossEntropyLoss(ignore_index="x"), "CrossEntropyLoss: ignore_index"),
    (lambda: HuberLoss(delta="1"), "HuberLoss: delta"),
    (lambda: HuberLoss(delta=0.0), "HuberLoss: delta"),
]


@pytest.mark.parametrize("make, match", CASES, ids=[m for _, m in CASES])
def test_a_bad_option_is_a_config_error_naming_layer_and_argument(make, match):
    with pytest.raises(ConfigError, match=f"^{match}"):
        make()


def test_integers_of_any_kind_are_accepted():
    assert Reshape((np.int64(2), -1)).shape == (2, -1)
    assert Unflatten(-1, [2, np.int32(3)]).unflattened_size == (2, 3)
    assert AvgPool2d(2, divisor_override=np.int64(-3)).divisor_override == -3
