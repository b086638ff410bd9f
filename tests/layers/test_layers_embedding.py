"""Embedding: repeated ids accumulate, padding_idx, parity with torch.nn.Embedding, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plait.core import DTypeError, PlaitError, ShapeError, manual_seed, registry
from plait.core.testing import gradcheck, on_test_device
from plait.layers import Embedding


def _pair(num, dim, padding_idx, dtype):
    ref = torch.nn.Embedding(num, dim, padding_idx=padding_idx).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = Embedding(num, dim, padding_idx=padding_idx).astype(dtype)
    ours.load_state_dict({"weight": ref.weight.detach().numpy()})
    return on_test_device(ours), ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ids_shape", [(7,), (3, 5), (2, 3, 4), ()])
@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
def test_parity_with_torch(dtype, ids_shape, padding_idx):
    rng = np.random.default_rng(0)
    ours, ref = _pair(6, 4, padding_idx, dtype)
    ids = rng.integers(0, 6, size=ids_shape)
    if ids.ndim:
        ids.flat[-1] = ids.flat[0]  # a repeated id
        ids.flat[len(ids.flat) // 2] = 5  # and the padding row for padding_idx=-1
    dy = rng.standard_normal((*ids_shape, 4)).astype(dtype)
    y = ours(ids)
    assert ours.backward(dy) is None
    y_ref = ref(torch.tensor(ids))
    y_ref.backward(torch.tensor(dy))
    assert y.dtype == dtype and y.shape == (*ids_shape, 4)
    tol = dict(rtol=1e-6, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(y, y_ref.detach().numpy(), **tol)
    np.testing.assert_allclose(ours.grads()["weight"], ref.weight.grad.numpy(), **tol)


def test_repeated_ids_accumulate():
    emb = Embedding(4, 2)
    emb(np.array([[1, 1], [1, 2]]))
    emb.backward(np.ones((2, 2, 2)))
    np.testing.assert_array_equal(emb.weight.grad, [[0, 0], [3, 3], [1, 1], [0, 0]])


def test_padding_row_is_zero_and_gets_no_grad():
    emb = Embedding(5, 3, padding_idx=2)
    np.testing.assert_array_equal(emb.weight.data[2], 0)
    emb(np.array([2, 2, 1]))
    emb.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(emb.weight.grad[2], 0)
    np.testing.assert_array_equal(emb.weight.grad[1], 1)


def test_init_is_standard_normal():
    manual_seed(0)
    w = Embedding(400, 50).weight.data
    assert w.dtype == np.float32
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02


def test_gradcheck():
    """(Without padding_idx: its row is frozen on purpose, so finite differences disagree there.)"""
    emb = Embedding(5, 3).astype(np.float64)
    gradcheck(emb, np.array([[0, 1, 4], [4, 4, 2]]))


def test_weight_sharing_two_calls():
    emb = Embedding(4, 2)
    emb(np.array([0, 1]))
    emb(np.array([1, 3]))
    emb.backward(np.full((2, 2), 2.0))
    emb.backward(np.ones((2, 2)))
    np.testing.assert_array_equal(emb.weight.grad, [[1, 1], [3, 3], [0, 0], [2, 2]])


def test_config_round_trip():
    emb = Embedding(7, 3, padding_idx=-1)
    cfg = emb.config()
    rebuilt = registry.build(cfg)
    assert isinstance(rebuilt, Embedding) and rebuilt.config() == cfg and rebuilt.padding_idx == 6
    assert rebuilt.weight.shape == (7, 3)


def test_errors():
    emb = Embedding(5, 3)
    with pytest.raises(ShapeError, match=r"Embedding.*\[0, 5\).*\[0, 5\]"):
        emb(np.array([0, 5]))
    with pytest.raises(ShapeError, match="Embedding"):
        emb(np.array([-1, 2]))
    with pytest.raises(DTypeError, match="Embedding.*integer"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(DTypeError, match="Embedding"):
        emb(np.array([True, False]))
    with pytest.raises(PlaitError, match="without a matching forward"):
        Embedding(5, 3).backward(np.ones((2, 3)))
    emb(np.array([1, 2]))
    with pytest.raises(ShapeError, match=r"Embedding\.backward.*\(2, 3\)"):
        emb.backward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="Embedding.*padding_idx"):
        Embedding(5, 3, padding_idx=5)


@pytest.mark.parametrize(("vocab", "n"), [(5, 0), (5, 1), (7, 40), (300, 64)])
def test_scatter_add_rows_sums_repeated_ids_like_add_at(vocab, n):
    """The CPU path sorts the ids and sums each run with reduceat; it must equal add.at."""
    from plait.layers._embedding_maths import scatter_add_rows

    rng = np.random.default_rng(n)
    rows = rng.integers(0, vocab, n)
    values = rng.standard_normal((n, 3))
    start = rng.standard_normal((vocab, 3))
    ours, ref = start.copy(), start.copy()
    scatter_add_rows(ours, rows, values)
    np.add.at(ref, rows, values)
    np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=1e-13)
