"""DataLoader, ArrayDataset, random_split, TextWindowDataset, memmap streaming."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from plait.core import ConfigError, ShapeError
from plait.train import ArrayDataset, DataLoader, Subset, TextWindowDataset, random_split


def _epoch(loader):
    """The input arrays of one epoch (copied)."""
    return [(b[0] if isinstance(b, tuple) else b).copy() for b in loader]


def test_shuffle_is_reproducible_by_seed_and_covers_every_sample_once():
    x = np.arange(50)
    ds = ArrayDataset(x, x * 10)
    a = _epoch(DataLoader(ds, 8, shuffle=True, seed=3))
    b = _epoch(DataLoader(ds, 8, shuffle=True, seed=3))
    c = _epoch(DataLoader(ds, 8, shuffle=True, seed=4))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))
    assert sorted(np.concatenate(a).tolist()) == list(range(50))
    loader = DataLoader(ds, 8, shuffle=True, seed=3)
    first, second = _epoch(loader), _epoch(loader)
    assert not all(np.array_equal(u, v) for u, v in zip(first, second))  # a new order every epoch
    for bx, by in DataLoader(ds, 8, shuffle=True, seed=3):
        assert np.array_equal(by, bx * 10)  # inputs and targets stay paired


def test_no_shuffle_keeps_order_and_drop_last():
    ds = ArrayDataset(np.arange(10))
    assert [b.tolist() for b in DataLoader(ds, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in DataLoader(ds, 4, drop_last=True)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(ds, 4)) == 3 and len(DataLoader(ds, 4, drop_last=True)) == 2
    shuffled = list(DataLoader(ds, 4, shuffle=True, seed=0, drop_last=True))
    assert len(shuffled) == 2 and all(len(b) == 4 for b in shuffled)
    with pytest.raises(ConfigError, match="batch_size"):
        DataLoader(ds, 0)
    with pytest.raises(ShapeError, match="first dimension"):
        ArrayDataset(np.zeros(3), np.zeros(4))


def test_loader_state_resumes_mid_epoch_and_between_epochs():
    ds = ArrayDataset(np.arange(40))
    loader = DataLoader(ds, 5, shuffle=True, seed=9)
    _epoch(loader)
    it = iter(loader)
    seen = [next(it).copy() for _ in range(3)]
    state = loader.state_dict()
    rest = [b.copy() for b in it]
    following = _epoch(loader)
    assert state["position"] == 3

    other = DataLoader(ds, 5, shuffle=True, seed=12345)
    other.load_state_dict(state)
    resumed = _epoch(other)
    assert len(resumed) == len(rest)
    assert all(np.array_equal(u, v) for u, v in zip(resumed, rest))
    assert all(np.array_equal(u, v) for u, v in zip(_epoch(other), following))
    assert sorted(np.concatenate(seen + rest).tolist()) == list(range(40))
    with pytest.raises(ConfigError, match="batch_size"):
        DataLoader(ds, 4).load_state_dict(state)


def test_memmap_is_streamed_not_copied(tmp_path):
    n, d = 20_000, 100  # 8 MB of float32 on disk
    path = tmp_path / "x.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, d))
    mm[:] = np.arange(n, dtype=np.float32)[:, None]
    mm.flush()
    del mm
    data = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
    labels = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))[:, 0]
    ds = ArrayDataset(data, labels)
    assert ds.arrays[0] is data  # no copy up front
    loader = DataLoader(ds, 256, shuffle=True, seed=0)
    tracemalloc.start()
    total = 0
    for x, y in loader:
        assert isinstance(x, np.ndarray) and x.shape[1] == d
        assert np.array_equal(x[:, 0], y)
        total += len(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == n
    assert peak < 0.2 * data.nbytes, f"peak {peak} bytes while streaming a {data.nbytes}-byte memmap"


def test_text_windows_are_shifted_by_one_and_batched(tmp_path):
    ids = np.arange(100, 130, dtype=np.uint16)
    path = tmp_path / "ids.u16"
    ids.tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    ds = TextWindowDataset(mm, block_size=8)
    assert len(ds) == 30 - 8
    x, y = ds[np.array([0, 5, 21])]
    assert x.dtype == np.int64 and x.shape == (3, 8) and y.shape == (3, 8)
    for row, start in enumerate([0, 5, 21]):
        assert np.array_equal(x[row], ids[start : start + 8])
        assert np.array_equal(y[row], ids[start + 1 : start + 9])
    x0, y0 = ds[21]  # a single window, the last one
    assert np.array_equal(y0, ids[22:30])
    strided = TextWindowDataset(mm, block_size=8, stride=8)
    assert len(strided) == 3
    sx, _ = strided[np.arange(3)]
    assert np.array_equal(sx.ravel(), ids[:24])
    batches = list(DataLoader(ds, 4, shuffle=True, seed=1))
    assert sum(len(b[0]) for b in batches) == len(ds)
    with pytest.raises(IndexError):
        ds[np.array([22])]
    with pytest.raises(ShapeError, match="block_size"):
        TextWindowDataset(ids[:5], block_size=8)


def test_random_split_is_disjoint_covering_and_seeded():
    ds = ArrayDataset(np.arange(103))
    parts = random_split(ds, [0.8, 0.2], seed=0)
    assert [len(p) for p in parts] == [83, 20]
    got = np.concatenate([p[np.arange(len(p))] for p in parts])
    assert sorted(got.tolist()) == list(range(103))
    again = random_split(ds, [83, 20], seed=0)
    assert np.array_equal(again[1].indices, parts[1].indices)
    assert isinstance(parts[0], Subset)
    assert sum(len(b) for b in DataLoader(parts[0], 10)) == 83
    with pytest.raises(ConfigError, match="do not split"):
        random_split(ds, [50, 50])


class PerSample:
    """A dataset that only returns one sample at a time."""

    batched = False

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.full(3, i, dtype=np.float32), i


def test_per_sample_datasets_are_collated():
    batches = list(DataLoader(PerSample(), 3))
    x, y = batches[0]
    assert x.shape == (3, 3) and y.tolist() == [0, 1, 2]
    assert len(batches) == 3 and batches[-1][1].tolist() == [6]
