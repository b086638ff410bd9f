"""The CuPy stand-in (tests/_device/fake_cupy.py) keeps CuPy's rules: if it got lax, every
device check in this suite would pass without proving anything."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Param, device_of, to_device, to_numpy

pytestmark = pytest.mark.gpu


@pytest.fixture
def cp(host_syncs):  # host_syncs: only on the stand-in (skipped on a real GPU)
    import cupy

    return cupy


def test_no_implicit_conversion_and_no_numpy_arrays_in_device_calls(cp):
    a = cp.asarray(np.arange(4, dtype=np.float32))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(4, np.float32)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.where(np.ones(4, bool), a, 0)
    assert device_of(a * 2.0) == "cuda" and device_of(np.exp(a)) == "cuda"  # NumPy ufuncs dispatch to CuPy


def test_only_cupy_names_and_keywords(cp):
    a = cp.ones(3, dtype=cp.float32)
    with pytest.raises(AttributeError):
        cp.errstate  # noqa: B018 - CuPy has no errstate
    with pytest.raises(TypeError, match="where"):
        a.sum(where=True)
    with pytest.raises(TypeError, match="where"):
        np.exp(a, where=True)


def test_reductions_stay_on_the_device_and_syncs_are_counted(cp, host_syncs):
    a = cp.asarray(np.arange(6.0).reshape(2, 3))
    total = a.sum()
    assert device_of(total) == "cuda" and device_of(a[0, 0]) == "cuda" and not host_syncs
    assert float(total) == 15.0 and bool(a[1, 2] > 4) and a.max().item() == 5.0
    a[a > 2]  # a boolean mask needs the count on the host
    assert host_syncs == {"float": 1, "bool": 1, "item": 1, "boolean mask": 1}


def test_params_move_and_come_back(cp):
    p = Param(to_device(np.ones((2, 2), np.float32), "cuda"))
    assert device_of(p.data) == "cuda"
    np.testing.assert_array_equal(to_numpy(p.data), np.ones((2, 2)))
