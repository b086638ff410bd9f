"""RNG states read back from a file: every field checked, a PlaitError naming it, nothing half-set."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import SerializationError, check_rng_state, set_rng_state


def _state(**changes):
    state = np.random.default_rng(3).bit_generator.state
    inner = dict(state["state"])
    for key in ("state", "inc"):
        if key in changes:
            inner[key] = changes.pop(key)
    return {**state, "state": inner, **changes}


def test_a_valid_state_round_trips_and_continues_the_stream():
    gen = np.random.default_rng(0)
    gen.random(5)
    saved = gen.bit_generator.state
    expected = gen.random(4)
    other = np.random.default_rng(99)
    set_rng_state(saved, other)
    assert np.array_equal(other.random(4), expected)


@pytest.mark.parametrize(
    ("state", "field"),
    [
        (_state(state=-1), "state.state"),
        (_state(state=2**128), "state.state"),
        (_state(state=10**400), "state.state"),
        (_state(state=1.5), "state.state"),
        (_state(state=True), "state.state"),
        (_state(state="12"), "state.state"),
        (_state(inc=4), "state.inc"),
        (_state(has_uint32=2), "has_uint32"),
        (_state(has_uint32=-1), "has_uint32"),
        (_state(uinteger=2**32), "uinteger"),
        (_state(uinteger=float("inf")), "uinteger"),
        (_state(bit_generator="MT19937"), "bit_generator"),
        (_state(extra=1), "unknown RNG state keys"),
        ({**_state(), "state": [1, 2]}, "'state' must be a mapping"),
        ({**_state(), "state": {"state": 1}}, "'state' must be a mapping"),
        ([1, 2, 3], "must be a mapping"),
        (None, "must be a mapping"),
    ],
)
def test_hostile_states_name_the_field_and_change_nothing(state, field):
    gen = np.random.default_rng(7)
    before = gen.bit_generator.state
    with pytest.raises(SerializationError, match=field) as info:
        set_rng_state(state, gen, source="trainer_state.json")
    assert str(info.value).startswith("trainer_state.json: ")
    assert gen.bit_generator.state == before


def test_other_bit_generators_are_checked_by_numpy():
    gen = np.random.Generator(np.random.MT19937(1))
    good = gen.bit_generator.state
    assert check_rng_state(good, gen)["bit_generator"] == "MT19937"
    with pytest.raises(SerializationError, match="not a valid MT19937 state"):
        check_rng_state({"bit_generator": "MT19937", "state": {"key": [1, 2], "pos": 0}}, gen)
