"""DataLoader, ArrayDataset, random_split, TextWindowDataset, memmap streaming."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from plait.core import ConfigError, SerializationError, ShapeError
from plait.train import (
    ArrayDataset,
    DataLoader,
    Subset,
    TensorDataset,
    TextWindowDataset,
    default_collate,
    random_split,
)


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


# -- torch semantics: per-item datasets, default_collate, TensorDataset --------------------------
class Squares:
    """A torch-style map dataset: ``ds[i]`` takes a Python int and returns one sample."""

    def __init__(self, n=11):
        self.n = n
        self.calls = []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        assert type(i) is int  # torch passes a Python int, never an index array
        self.calls.append(i)
        return np.array([i, i * i], dtype=np.float32), i % 3


def _torch_batches(dataset, **kwargs):
    torch = pytest.importorskip("torch")
    return list(torch.utils.data.DataLoader(dataset, **kwargs))


def _same(ours, theirs, exact_type=True):
    """Batches equal leaf by leaf, with the same structure and torch's dtypes (a tuple
    may stand for torch's list unless ``exact_type``)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            _same(ours[k], theirs[k], exact_type)
    elif isinstance(theirs, (tuple, list)) and not isinstance(theirs, str) and not (theirs and isinstance(theirs[0], str)):
        assert (type(ours) is type(theirs) or not exact_type) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b, exact_type)
    elif isinstance(theirs, list):
        assert ours == theirs
    else:
        b = theirs.numpy()
        assert ours.shape == b.shape and str(ours.dtype) == str(b.dtype), (ours.dtype, b.dtype)
        np.testing.assert_array_equal(ours, b)


@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (4, False), (4, True), (11, False), (20, True)])
def test_per_item_dataset_gives_torchs_batches(batch_size, drop_last):
    ours = list(DataLoader(Squares(), batch_size=batch_size, drop_last=drop_last))
    theirs = _torch_batches(Squares(), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs) == len(DataLoader(Squares(), batch_size, drop_last=drop_last))
    for a, b in zip(ours, theirs):
        _same(a, b)


def test_default_collate_matches_torch_for_tuples_dicts_lists_numbers_and_strings():
    samples = [
        {"x": np.full((2, 3), i, dtype=np.float32), "label": i, "w": 0.5 * i, "ok": i % 2 == 0, "name": f"s{i}",
         "pair": (np.int64(i), [float(i), 2.0 * i])}
        for i in range(5)
    ]  # fmt: skip
    for batch_size in (2, 5):
        ours = list(DataLoader(samples, batch_size=batch_size))
        theirs = _torch_batches(samples, batch_size=batch_size)
        for a, b in zip(ours, theirs):
            _same(a, b)
    Point = __import__("collections").namedtuple("Point", "x y")
    got = default_collate([Point(np.zeros(2), 1), Point(np.ones(2), 2)])
    assert type(got) is Point and got.x.shape == (2, 2) and got.y.tolist() == [1, 2]


def test_lists_and_arrays_as_datasets():
    pairs = [(np.full(2, i, dtype=np.float64), i) for i in range(6)]  # a plain list of (x, y), as in torch
    x, y = next(iter(DataLoader(pairs, batch_size=4)))
    assert x.shape == (4, 2) and y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3]
    arr = np.arange(12.0).reshape(6, 2)
    loader = DataLoader(arr, batch_size=4)
    assert loader.batched and [b.shape for b in loader] == [(4, 2), (2, 2)]
    cols = DataLoader((arr, np.arange(6)), batch_size=4, shuffle=True, seed=0)  # a tuple of arrays: columns
    assert cols.batched and all(np.array_equal(bx[:, 0] / 2, by) for bx, by in cols)


def test_tensor_dataset_like_torch_and_the_fast_path_gives_the_same_batches():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    y = np.arange(10)
    ds = TensorDataset(x, y)
    assert isinstance(ds[3], tuple) and np.array_equal(ds[3][0], x[3]) and ds[3][1] == 3
    assert isinstance(TensorDataset(x)[0], tuple) and len(TensorDataset(x).tensors) == 1
    fast = list(DataLoader(ds, 4))
    slow = list(DataLoader(ds, 4, collate_fn=default_collate))  # forces per-item calls
    assert DataLoader(ds, 4).batched and not DataLoader(ds, 4, collate_fn=default_collate).batched
    theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), 4))
    for a, b, c in zip(fast, slow, theirs):
        _same(a, c, exact_type=False)  # the fast path gives the dataset's tuple
        _same(b, c)
    fast_shuffled = [b[1].tolist() for b in DataLoader(ds, 3, shuffle=True, seed=5)]
    slow_shuffled = [b[1].tolist() for b in DataLoader(ds, 3, shuffle=True, seed=5, collate_fn=default_collate)]
    assert fast_shuffled == slow_shuffled  # the same order either way


def test_collate_fn_gets_the_list_of_samples_as_in_torch():
    seen = []

    def collate(samples):
        seen.append(len(samples))
        return len(samples)

    assert list(DataLoader(ArrayDataset(np.arange(5)), 2, collate_fn=collate)) == [2, 2, 1]
    assert seen == [2, 2, 1]


def test_shuffled_per_item_loader_resumes_exactly():
    ds = Squares(23)
    loader = DataLoader(ds, 4, shuffle=True, seed=1, num_workers=2, pin_memory=True)  # torch's knobs are accepted
    it = iter(loader)
    [next(it) for _ in range(2)]
    state = loader.state_dict()
    rest = [b[1].tolist() for b in it]
    other = DataLoader(Squares(23), 4, shuffle=True, seed=99)
    other.load_state_dict(state)
    assert [b[1].tolist() for b in other] == rest
    assert DataLoader(ds).batch_size == 1  # torch's default


def test_bad_samples_and_arguments_name_the_problem():
    with pytest.raises(ShapeError, match="equal shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ConfigError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(ShapeError, match="sequence of 2 items"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(ConfigError, match="__len__ and __getitem__"):
        DataLoader(5)
    with pytest.raises(ConfigError, match="batch_size"):
        DataLoader([1, 2], batch_size=2.5)
    with pytest.raises(ConfigError, match="collate_fn must be callable"):
        DataLoader([1, 2], collate_fn=3)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda s: "not a dict", SerializationError, "expected a dict"),
        (lambda s: {**s, "epoch": 3}, SerializationError, r"unknown key\(s\) \['epoch'\]"),
        (lambda s: {k: v for k, v in s.items() if k != "generator"}, SerializationError, "no 'generator'"),
        (lambda s: {**s, "position": -1}, SerializationError, "position must be an integer"),
        (lambda s: {**s, "position": 99}, SerializationError, "position must be an integer in"),
        (lambda s: {**s, "position": "2"}, SerializationError, "position"),
        (lambda s: {**s, "shuffle": 1}, SerializationError, "shuffle must be True or False"),
        (lambda s: {**s, "num_samples": 7}, ConfigError, "num_samples=7"),
        (lambda s: {**s, "generator": {"bit_generator": "MT19937"}}, SerializationError, "PCG64 bit-generator"),
        (lambda s: {**s, "generator": {**s["generator"], "state": {"state": -5, "inc": 1}}}, SerializationError,
         "generator state is malformed"),
        (lambda s: {**s, "generator": {**s["generator"], "state": None}}, SerializationError, "generator state"),
    ],
)
def test_loader_state_is_validated_before_use(change, error, match):
    loader = DataLoader(ArrayDataset(np.arange(20)), 4, shuffle=True, seed=0)
    it = iter(loader)
    next(it)
    good = loader.state_dict()
    before = loader.generator.bit_generator.state
    with pytest.raises(error, match=match):
        loader.load_state_dict(change(good))
    assert loader.generator.bit_generator.state == before  # left as it was
    loader.load_state_dict(good)
