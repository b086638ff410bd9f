"""Data-parallel training over MPI (mpi4py over Open MPI or MPICH).

Every rank holds a full copy of the model and trains on its own shard of each batch.
After backward, gradients are averaged across ranks with in-place ``Allreduce`` on a few
large flat buckets (not one message per parameter), so every rank applies the same update
and the replicas stay identical. Parameters are broadcast from rank 0 at the start.

    strategy = MPIStrategy()                 # or Trainer(..., strategy="mpi")
    strategy.broadcast_parameters(model.parameters())
    ...
    model.backward(loss.backward())
    strategy.average_gradients(model.parameters())
    optimizer.step()

Run under ``mpirun -n 2 python train.py``; alone, :class:`SingleProcess` does nothing.
A rank that dies or stalls makes the others stop with a clear error instead of hanging:
collectives are polled with a deadline (``PLAIT_MPI_TIMEOUT`` seconds, default 300), and an
uncaught exception on any rank aborts the whole job.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from plait.core import Param, PlaitError, get_array_module

__all__ = [
    "DistributedError",
    "DistributedSampler",
    "MPIStrategy",
    "SingleProcess",
    "get_strategy",
]


class DistributedError(PlaitError, RuntimeError):
    """A peer rank died, stalled, or MPI is unusable."""


class SingleProcess:
    """The strategy of a plain run: one rank, every collective is the identity."""

    rank = 0
    world_size = 1
    is_main = True
    bytes_communicated = 0

    def broadcast_parameters(self, params: Iterable[Param]) -> None:
        return None

    def average_gradients(self, params: Iterable[Param]) -> None:
        return None

    def allreduce_sum(self, values: Any) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def broadcast_object(self, obj: Any) -> Any:
        return obj

    def barrier(self) -> None:
        return None


def _require_host(params: list[Param]) -> None:
    if any(get_array_module(p.data) is not np for p in params):
        raise DistributedError("MPIStrategy works on host (NumPy) parameters; the model is on the GPU: "
                               "move it with model.to('cpu') (multi-GPU data parallelism is not supported)")


class _Bucket:
    """A flat buffer holding the gradients of consecutive parameters of one dtype."""

    def __init__(self, params: list[Param], dtype: Any) -> None:
        self.params = params
        self.sizes = [p.size for p in params]
        self.buffer = np.empty(sum(self.sizes), dtype=dtype)

    def pack(self) -> None:
        offset = 0
        for p, n in zip(self.params, self.sizes):
            view = self.buffer[offset : offset + n]
            if p.grad is None:
                view.fill(0)
            else:
                np.copyto(view, np.asarray(p.grad).reshape(-1))
            offset += n

    def unpack(self, scale: float) -> None:
        """``grad = scale * (the reduced slice)`` for every parameter: one pass each."""
        offset = 0
        for p, n in zip(self.params, self.sizes):
            view = self.buffer[offset : offset + n].reshape(p.shape)
            if p.grad is None:
                p.grad = view * scale
            else:
                np.multiply(view, scale, out=p.grad, casting="same_kind")
            offset += n


class MPIStrategy:
    """Data parallelism over ``MPI.COMM_WORLD`` (or a given communicator).

    ``bucket_mb`` bounds the size of one Allreduce message; ``timeout`` (seconds) bounds how
    long a collective may wait for a peer before :class:`DistributedError` aborts the job.
    """

    def __init__(self, comm: Any = None, bucket_mb: float = 25.0, timeout: float | None = None) -> None:
        try:
            from mpi4py import MPI  # noqa: PLC0415 - optional dependency (plait-train[mpi])
        except ImportError as exc:
            raise DistributedError(
                "strategy 'mpi' needs mpi4py and an MPI library: pip install 'plait-train[mpi]' "
                "(and e.g. apt-get install openmpi-bin libopenmpi-dev)"
            ) from exc
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()
        self.is_main = self.rank == 0
        self.bucket_bytes = int(bucket_mb * 1024 * 1024)
        self.timeout = float(timeout if timeout is not None else os.environ.get("PLAIT_MPI_TIMEOUT", 300))
        self.bytes_communicated = 0
        self._buckets: list[_Bucket] | None = None
        self._bucket_key: tuple[int, ...] = ()
        self._watchdog = _Watchdog(self.comm, self.timeout)
        _install_abort_on_exception(self.comm)

    # -- collectives with a deadline ---------------------------------------------------
    def _allreduce_inplace(self, buffer: np.ndarray, what: str) -> None:
        with self._watchdog.guard(what):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.bytes_communicated += buffer.nbytes

    # -- what a trainer calls ------------------------------------------------------------
    def broadcast_parameters(self, params: Iterable[Param]) -> None:
        """Make every rank start from rank 0's weights."""
        params = list(params)
        _require_host(params)
        for p in params:
            data = np.ascontiguousarray(p.data)
            with self._watchdog.guard("broadcasting parameters"):
                self.comm.Bcast(data, root=0)
            if data is not p.data:
                p.data[...] = data

    def _buckets_for(self, params: list[Param]) -> list[_Bucket]:
        key = tuple(id(p) for p in params)
        if self._buckets is None or key != self._bucket_key:
            buckets: list[_Bucket] = []
            current: list[Param] = []
            size = 0
            for p in params:
                if current and (size + p.data.nbytes > self.bucket_bytes or p.dtype != current[0].dtype):
                    buckets.append(_Bucket(current, current[0].dtype))
                    current, size = [], 0
                current.append(p)
                size += p.data.nbytes
            if current:
                buckets.append(_Bucket(current, current[0].dtype))
            self._buckets, self._bucket_key = buckets, key
        return self._buckets

    def average_gradients(self, params: Iterable[Param]) -> None:
        """Replace every ``p.grad`` by its mean over the ranks (in place, bucketed)."""
        plist = [p for p in params if p.requires_grad]
        _require_host(plist)
        for bucket in self._buckets_for(plist):
            bucket.pack()
            self._allreduce_inplace(bucket.buffer, "averaging gradients")
            bucket.unpack(1.0 / self.world_size)

    def allreduce_sum(self, values: Any) -> np.ndarray:
        """Sum a small float vector (loss sums, metric counts) over the ranks."""
        buffer = np.array(values, dtype=np.float64, copy=True).reshape(-1)
        self._allreduce_inplace(buffer, "reducing metrics")
        return buffer.reshape(np.shape(values))

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's JSON-able value on every rank (e.g. a resume position)."""
        with self._watchdog.guard("broadcasting a value"):
            return self.comm.bcast(obj, root=0)

    def barrier(self) -> None:
        with self._watchdog.guard("waiting at a barrier"):
            self.comm.Barrier()


class _Watchdog:
    """A daemon thread that aborts the job when one collective outlasts ``timeout`` seconds.

    Collectives themselves stay blocking (full MPI speed); the thread only looks at the
    deadline of the collective in progress, a few times per second.
    """

    def __init__(self, comm: Any, timeout: float) -> None:
        self.comm, self.timeout = comm, timeout
        self.deadline: float | None = None
        self.what = ""
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="plait-mpi-watchdog", daemon=True)
            self._thread.start()
        self.what, self.deadline = what, time.monotonic() + self.timeout
        try:
            yield
        finally:
            self.deadline = None

    def _watch(self) -> None:
        period = min(1.0, max(self.timeout / 20, 0.05))
        while True:
            time.sleep(period)
            deadline = self.deadline
            if deadline is not None and time.monotonic() > deadline:
                rank, size = self.comm.Get_rank(), self.comm.Get_size()
                print(
                    f"rank {rank}/{size}: {self.what} got no answer from the other ranks within {self.timeout:.0f} s "
                    "(PLAIT_MPI_TIMEOUT); a peer rank has probably died or hangs — aborting the job",
                    file=sys.stderr,
                    flush=True,
                )
                self.comm.Abort(1)


def _install_abort_on_exception(comm: Any) -> None:
    """An uncaught exception on one rank aborts all ranks instead of leaving them hanging."""
    if getattr(sys.excepthook, "_plait_mpi", False) or comm.Get_size() == 1:
        return
    previous = sys.excepthook

    def hook(exc_type: Any, exc: Any, tb: Any) -> None:
        previous(exc_type, exc, tb)
        sys.stderr.write(f"rank {comm.Get_rank()}: uncaught {exc_type.__name__}; aborting all ranks\n")
        sys.stderr.flush()
        comm.Abort(1)

    hook._plait_mpi = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def get_strategy(strategy: Any) -> Any:
    """``None``/``"single"`` -> SingleProcess, ``"mpi"`` -> MPIStrategy, or the object itself."""
    if strategy is None or strategy == "single":
        return SingleProcess()
    if strategy == "mpi":
        return MPIStrategy()
    if isinstance(strategy, str):
        raise PlaitError(f"unknown training strategy {strategy!r}; expected 'single' or 'mpi'")
    return strategy


class DistributedSampler:
    """Indices of one rank's shard: disjoint across ranks, together covering the dataset.

    Each epoch (``set_epoch``) reshuffles with ``seed + epoch`` — the same permutation on every
    rank — then pads by wrapping around (or, with ``drop_last``, trims) to a multiple of
    ``num_replicas`` and gives rank ``r`` the positions ``r, r + R, r + 2R, ...``.
    """

    def __init__(self, dataset_size: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if not 0 <= rank < num_replicas:
            raise PlaitError(f"DistributedSampler: rank {rank} is outside [0, {num_replicas})")
        self.dataset_size = int(dataset_size)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.epoch = 0
        if drop_last:
            self.num_samples = self.dataset_size // self.num_replicas
        else:
            self.num_samples = -(-self.dataset_size // self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(self.dataset_size)
        else:
            order = np.arange(self.dataset_size)
        total = self.num_samples * self.num_replicas
        if total > len(order):
            order = np.resize(order, total)  # wrap around
        order = order[:total]
        return order[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
