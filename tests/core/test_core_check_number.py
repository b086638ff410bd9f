"""check_number: a constructor's real-valued option, or a ConfigError naming component and argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plait.core import ConfigError, check_number
from plait.core.initializers import Normal


@pytest.mark.parametrize("value", [0, 0.5, 1, np.float32(0.25), np.int64(1)])
def test_real_numbers_in_range_come_back_as_floats(value):
    got = check_number(value, "Layer", "p", low=0.0, high=1.0)
    assert type(got) is float and got == float(value)


@pytest.mark.parametrize("value, match", [
    ("0.5", "p must be a real number, got '0.5' \\(str\\)"), (True, "real number"), (None, "real number"),
    (1 + 2j, "real number"), (math.nan, "finite"), (math.inf, "finite"),
    (-0.1, r"in \[0, 1\), got -0.1"), (1.0, r"in \[0, 1\), got 1"),
])
def test_anything_else_is_a_config_error_naming_both(value, match):
    with pytest.raises(ConfigError, match=f"^Layer: {match}" if match.startswith("p ") else match):
        check_number(value, "Layer", "p", low=0.0, high=1.0, high_open=True)


def test_open_lower_bound_and_one_sided_ranges():
    with pytest.raises(ConfigError, match=r"in \(0, inf\)"):
        check_number(0.0, "Huber", "delta", low=0.0, low_open=True)
    assert check_number(-5, "X", "y") == -5.0
    with pytest.raises(ConfigError, match=r"in \(-inf, 2\]"):
        check_number(3, "X", "y", high=2)


def test_normal_initializer_refuses_a_negative_std():
    with pytest.raises(ConfigError, match="Normal: std"):
        Normal(std=-1.0)
    assert Normal(0, 0).std == 0.0
