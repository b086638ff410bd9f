"""Param's deferred zeroing: ``zero_grad()`` then ``accumulate(g)`` writes g in one pass, and
every way of looking at ``grad`` sees exactly what a fill with zeros and an add would give."""

from __future__ import annotations

import numpy as np
import pytest

from plait.core import Param
from plait.core.errors import ShapeError


def _param():
    p = Param(np.ones((2, 3), np.float32))
    p.accumulate(np.full((2, 3), 5.0, np.float32))
    return p


def test_zeroed_gradient_reads_as_zeros_in_the_same_buffer():
    p = _param()
    buffer = p.grad
    p.zero_grad()
    assert p.grad is buffer
    np.testing.assert_array_equal(p.grad, np.zeros((2, 3)))


def test_accumulate_after_zero_grad_gives_the_gradient_then_sums():
    p = _param()
    buffer = p.grad
    p.zero_grad()
    g1, g2 = np.arange(6, dtype=np.float32).reshape(2, 3), np.full((2, 3), 0.5, np.float32)
    p.accumulate(g1)
    np.testing.assert_array_equal(p.grad, g1)
    p.accumulate(g2)
    np.testing.assert_array_equal(p.grad, g1 + g2)
    assert p.grad is buffer and p.grad.dtype == np.float32
    g1[...] = 99  # the gradient is copied, never aliased
    np.testing.assert_array_equal(p.grad, np.arange(6).reshape(2, 3) + 0.5)


def test_a_float64_gradient_is_cast_like_an_add():
    p = _param()
    p.zero_grad()
    p.accumulate(np.full((2, 3), 1 / 3))
    assert p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, np.float32(0) + np.full((2, 3), 1 / 3).astype(np.float32))


def test_set_to_none_and_assignment():
    p = _param()
    p.zero_grad(set_to_none=True)
    assert p.grad is None
    p = _param()
    p.zero_grad()
    replacement = np.full((2, 3), 7.0, np.float32)
    p.grad = replacement
    assert p.grad is replacement
    np.testing.assert_array_equal(p.grad, 7.0)


def test_shape_check_and_frozen_params_after_zero_grad():
    p = _param()
    p.zero_grad()
    with pytest.raises(ShapeError):
        p.accumulate(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(p.grad, 0.0)
    p.requires_grad = False
    p.zero_grad()
    p.accumulate(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(p.grad, 0.0)


# -- a handed-over gradient (``owned=True``) becomes ``grad`` without a copy -------------------------
def test_an_owned_fresh_gradient_is_kept_without_a_copy_and_later_ones_add_into_it():
    p = _param()
    p.zero_grad()
    g1, g2 = np.array([[0, 1, 2], [3, 4, 5]], np.float32), np.full((2, 3), 0.5, np.float32)
    p.accumulate(g1, owned=True)
    assert p.grad is g1
    p.accumulate(g2, owned=True)  # a second use of the parameter (tied weights) adds into it
    np.testing.assert_array_equal(p.grad, np.arange(6).reshape(2, 3) + 0.5)
    np.testing.assert_array_equal(g2, 0.5)
    p.zero_grad()
    np.testing.assert_array_equal(p.grad, 0.0)
    fresh = Param(np.ones(3, np.float32))  # no gradient yet: the first one is kept too
    g = np.ones(3, np.float32)
    fresh.accumulate(g, owned=True)
    assert fresh.grad is g


@pytest.mark.parametrize("make", [
    lambda: np.arange(12, dtype=np.float32).reshape(2, 6)[:, :3],  # a view of another array
    lambda: np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),  # not C-contiguous
    lambda: np.arange(6, dtype=np.float64).reshape(2, 3),  # another dtype: cast like an add
    lambda: np.broadcast_to(np.float32(2), (2, 3)),  # read-only
])
def test_an_owned_gradient_that_cannot_serve_as_grad_is_copied(make):
    p = _param()
    p.zero_grad()
    g = make()
    p.accumulate(g, owned=True)
    assert not np.shares_memory(p.grad, g) and p.grad.dtype == np.float32 and p.grad.flags.c_contiguous
    np.testing.assert_array_equal(p.grad, np.asarray(g, np.float32))


def test_a_gradient_without_owned_is_never_kept_while_a_gradient_exists():
    p = _param()
    held = p.grad
    g = np.full((2, 3), 2.0, np.float32)
    p.accumulate(g, owned=True)  # not zeroed: added into the existing gradient
    assert p.grad is held
    np.testing.assert_array_equal(p.grad, 7.0)
    np.testing.assert_array_equal(g, 2.0)
