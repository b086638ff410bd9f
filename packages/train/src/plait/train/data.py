"""Data pipeline: the ``Dataset`` protocol, ``ArrayDataset``, ``TensorDataset``, ``Subset``,
``random_split``, ``TextWindowDataset`` and the seeded, checkpointable ``DataLoader``.

As in torch, a dataset is indexed one sample at a time (``ds[i]``, ``i`` an ``int``) and
the samples are stacked by ``collate_fn`` (:func:`default_collate`). Array datasets take
a fast path found automatically (:func:`~plait.train.collate.indexes_batches`): arrays,
tuples of arrays and datasets declaring ``batched = True`` are indexed with a whole
*batch* of indices at once (an int64 array), one fancy-indexing operation instead of a
Python loop over samples. Indexing a ``np.memmap`` that way reads only the rows of the
batch: a loader over a memory-mapped file streams from disk and never copies the set.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from plait.core import ConfigError, ShapeError

from .collate import default_collate, indexes_batches
from .loader_state import check_loader_state

__all__ = [
    "ArrayDataset",
    "DataLoader",
    "Dataset",
    "Subset",
    "TensorDataset",
    "TextWindowDataset",
    "default_collate",
    "random_split",
]


@runtime_checkable
class Dataset(Protocol):
    """``len(ds)`` samples; ``ds[i]`` (``i`` an ``int``) returns sample ``i``, as in torch
    (subclass it like ``torch.utils.data.Dataset``, or just write the two methods).

    A dataset that can also return a whole batch for an int64 index array ``idx`` of
    shape (B,) (usually a tuple of arrays with leading dimension B, exactly what
    :func:`default_collate` makes of the B samples) sets ``batched = True``: the loader
    then takes one fancy index per batch instead of B calls.
    """

    def __len__(self) -> int: ...
    def __getitem__(self, index: Any) -> Any: ...


class ArrayDataset:
    """Several arrays (NumPy, CuPy or ``np.memmap``) sharing their first dimension.

    ``ds[idx]`` returns ``tuple(a[idx] for a in arrays)`` (a single array when there is
    only one; :class:`TensorDataset` always gives a tuple). Nothing is copied up front.

    Args:
        *arrays: one or more arrays ``(N, ...)`` with the same first dimension ``N``.

    Raises:
        ConfigError: no array.
        ShapeError: the first dimensions differ.
    """

    batched = True

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ConfigError("ArrayDataset needs at least one array")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ShapeError(f"ArrayDataset: arrays must share their first dimension, got lengths {lengths}")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> Any:
        if len(self.arrays) == 1:
            return self.arrays[0][index]
        return tuple(a[index] for a in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(a.shape)) for a in self.arrays)
        return f"{type(self).__name__}({shapes})"


class TensorDataset(ArrayDataset):
    """``torch.utils.data.TensorDataset``: ``ds[i]`` is ``tuple(t[i] for t in tensors)``, a
    tuple even for one array. ``tensors`` holds the arrays.

    Args:
        *tensors: one or more arrays ``(N, ...)`` with the same first dimension.

    Raises:
        ConfigError: no array.
        ShapeError: the first dimensions differ.
    """

    def __init__(self, *tensors: Any) -> None:
        super().__init__(*tensors)
        self.tensors = self.arrays

    def __getitem__(self, index: Any) -> Any:
        return tuple(a[index] for a in self.arrays)


class Subset:
    """The samples of ``dataset`` at ``indices`` (in that order).

    Args:
        dataset: the dataset to draw from (indexed per sample, or by an index array when
            it batches, as :class:`ArrayDataset`).
        indices: the sample indices, any integer sequence or array (kept as int64).
    """

    def __init__(self, dataset: Any, indices: Any) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batched = indexes_batches(dataset)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        picked = self.indices[index]
        return self.dataset[int(picked) if picked.ndim == 0 else picked]


def random_split(dataset: Any, lengths: Sequence[float], seed: int | None = None) -> list[Subset]:
    """Split into non-overlapping random subsets (like ``torch.utils.data.random_split``).

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder of the rounding goes to the first subsets, one sample each).

    Args:
        dataset: anything with ``len()`` and indexing.
        lengths: the subset sizes, as counts or fractions.
        seed: default None (fresh entropy); seeds the permutation. torch takes a
            ``generator`` and otherwise uses its global one; here Plait's global generator
            is not used.

    Raises:
        ConfigError: the lengths do not split ``len(dataset)`` (or are negative).
    """
    n = len(dataset)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1.0) and sum(lengths) != n:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(c) for c in lengths]
    if sum(counts) != n or any(c < 0 for c in counts):
        raise ConfigError(f"random_split: lengths {list(lengths)} do not split a dataset of {n} samples")
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class TextWindowDataset:
    """Language-modelling windows over a 1-D token-id array (may be a ``np.memmap``).

    Window ``i`` starts at ``i * stride`` and gives ``x = ids[s : s+block_size]`` and
    ``y = ids[s+1 : s+block_size+1]`` (the next token at every position). A batch of
    windows is one fancy index into ``ids``: ``x, y`` are int64 arrays (B, block_size).

    Args:
        ids: the token ids, a 1-D integer array of length >= ``block_size + 1``.
        block_size: the window length ``T`` (>= 1).
        stride: default 1 (every offset); the distance between window starts (>= 1).

    Raises:
        ShapeError: ``ids`` is not 1-D or is too short.
        ConfigError: ``ids`` is not integer, or ``block_size``/``stride`` below 1.
    """

    batched = True

    def __init__(self, ids: Any, block_size: int, stride: int = 1) -> None:
        if getattr(ids, "ndim", None) != 1:
            raise ShapeError(f"TextWindowDataset: ids must be a 1-D array, got shape {getattr(ids, 'shape', None)}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ConfigError(f"TextWindowDataset: ids must be integers, got dtype {ids.dtype}")
        if block_size < 1 or stride < 1:
            raise ConfigError(f"TextWindowDataset: block_size and stride must be >= 1, got {block_size}, {stride}")
        if len(ids) < block_size + 1:
            raise ShapeError(f"TextWindowDataset: need at least block_size+1 = {block_size + 1} ids, got {len(ids)}")
        self.ids = ids
        self.block_size = int(block_size)
        self.stride = int(stride)
        self._offsets = np.arange(self.block_size + 1, dtype=np.int64)

    def __len__(self) -> int:
        return (len(self.ids) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        starts = np.asarray(index, dtype=np.int64) * self.stride
        if starts.ndim == 0:
            window = np.asarray(self.ids[int(starts) : int(starts) + self.block_size + 1], dtype=np.int64)
            return window[:-1], window[1:]
        if starts.size and (starts.min() < 0 or starts.max() > len(self.ids) - self.block_size - 1):
            raise IndexError(f"TextWindowDataset: window index out of range [0, {len(self)})")
        windows = np.asarray(self.ids[starts[:, None] + self._offsets], dtype=np.int64)
        return windows[:, :-1], windows[:, 1:]


class DataLoader:
    """Batches of ``dataset`` in a reproducible order (``torch.utils.data.DataLoader``'s arguments).

    Args:
        dataset: anything following :class:`Dataset` (indexed per sample, as in torch), a
            list of samples, an array, or a tuple of arrays ``(x, y, ...)`` sharing their
            first dimension (taken as ``ArrayDataset(x, y, ...)``).
        batch_size: default 1 (as torch); samples per batch.
        shuffle: default False; draw a new permutation every epoch from the loader's own
            Generator.
        seed: default None (fresh entropy; still exact on resume because the generator's
            state is part of :meth:`state_dict`); seeds that Generator. Not in torch, which
            takes a ``generator``.
        drop_last: default False; drop the final batch when it is smaller than ``batch_size``.
        collate_fn: default None (:func:`default_collate`); turns the list of a batch's
            samples into the batch, as in torch.
        num_workers: default 0 (keyword-only here); accepted so torch code runs unchanged;
            samples are always loaded in the calling process.
        pin_memory: default False (keyword-only); accepted so torch code runs unchanged; it
            has no effect.

    Raises:
        ConfigError: ``batch_size`` is not an integer >= 1, ``collate_fn`` is not callable,
            or the dataset has no ``__len__``/``__getitem__``.

    Without ``collate_fn``, array datasets (see :func:`~plait.train.collate.indexes_batches`)
    give the same batches by one fancy index per batch instead of one call per sample.

    The loader checkpoints itself: :meth:`state_dict` holds the bit-generator state at
    the start of the current epoch and the number of batches already given out, so a
    restored loader replays exactly the batches an uninterrupted run would see.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        *,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError(f"DataLoader: batch_size must be an integer >= 1, got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise ConfigError(f"DataLoader: collate_fn must be callable (list of samples -> batch), got {collate_fn!r}")
        if isinstance(dataset, tuple) and dataset and all(hasattr(a, "shape") for a in dataset):
            dataset = ArrayDataset(*dataset)
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise ConfigError(f"DataLoader: the dataset needs __len__ and __getitem__, got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.generator = np.random.default_rng(seed)
        self._epoch_start_state: dict[str, Any] | None = None
        self._position = 0  # batches given out in the current epoch
        self._resume_position = 0
        self.shard: tuple[int, int] = (0, 1)  # (rank, world size): see set_shard
        self.share_of_batch = 1.0  # this rank's samples / the global batch's, for the last batch

    @property
    def batched(self) -> bool:
        """Whether batches come from one fancy index (True) or per-sample calls and ``collate_fn``."""
        return self.collate_fn is None and indexes_batches(self.dataset)

    def set_shard(self, rank: int, world_size: int) -> None:
        """Give this process only its part ``rank::world_size`` of every (global) batch.

        All ranks draw the same global order (same seed), so their parts are disjoint and
        together are exactly the batches a single process would see: data parallelism that
        is independent of the number of ranks, also across a resume.

        Args:
            rank: this process's rank, in ``[0, world_size)``.
            world_size: the number of processes.

        Raises:
            ConfigError: ``rank`` outside ``[0, world_size)``.
        """
        if not 0 <= rank < world_size:
            raise ConfigError(f"DataLoader.set_shard: rank {rank} is outside [0, {world_size})")
        self.shard = (int(rank), int(world_size))

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batch(self, idx: np.ndarray) -> Any:
        if self.batched:
            return self.dataset[idx]
        samples = [self.dataset[i] for i in idx.tolist()]
        return (self.collate_fn or default_collate)(samples)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        if self._resume_position and self._epoch_start_state is not None:
            self.generator.bit_generator.state = copy.deepcopy(self._epoch_start_state)
        start_batch, self._resume_position = self._resume_position, 0
        self._epoch_start_state = copy.deepcopy(self.generator.bit_generator.state)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n, dtype=np.int64)
        num_batches = len(self)
        self._position = start_batch
        for b in range(start_batch, num_batches):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            self._position = b + 1
            rank, world = self.shard
            if world > 1:
                self.share_of_batch = len(idx[rank::world]) / len(idx)
                idx = idx[rank::world]
            yield self._batch(idx)

    @property
    def resume_position(self) -> int:
        """Batches the next iteration skips (non-zero after restoring a mid-epoch state)."""
        return self._resume_position

    # -- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: generator state and batches done in the current epoch."""
        mid_epoch = self._epoch_start_state is not None and 0 < self._position < len(self)
        return {
            "generator": copy.deepcopy(self._epoch_start_state if mid_epoch else self.generator.bit_generator.state),
            "position": self._position if mid_epoch else 0,
            "num_samples": len(self.dataset),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next iteration continues where that one was.

        Every entry is checked first (see :func:`~plait.train.loader_state.check_loader_state`):
        a damaged or foreign state raises a PlaitError naming the entry, and leaves the
        loader as it was.

        Args:
            state: what :meth:`state_dict` returned (from a checkpoint file).

        Raises:
            SerializationError: a malformed state (not a dict, an unknown key, a bad
                generator state or position).
            ConfigError: a state saved by a loader set up differently (another dataset
                length, batch size, shuffle or drop_last).
        """
        generator, position = check_loader_state(self, state)
        self.generator.bit_generator.state = generator
        self._resume_position = position
        self._epoch_start_state = copy.deepcopy(generator) if position else None
        self._position = 0

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last})"
        )
