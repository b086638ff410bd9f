"""Data-parallel training over MPI: equivalence with one process, sharding, dead peers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plait.train.distributed import DistributedSampler, SingleProcess, get_strategy

SCRIPT = Path(__file__).parent / "mpi_scripts" / "dp_equivalence.py"


def _mpirun(n: int, *args: str, timeout: float = 120, script: Path = SCRIPT, **env: str) -> subprocess.CompletedProcess:
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)")
    pytest.importorskip("mpi4py")
    cmd = ["mpirun", "--oversubscribe", "-n", str(n)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return subprocess.run([*cmd, sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **env))


@pytest.mark.parametrize("size,replicas,drop_last", [(10, 2, False), (11, 2, False), (11, 3, True), (7, 4, False)])
def test_sampler_shards_are_disjoint_and_covering(size, replicas, drop_last):
    shards = [DistributedSampler(size, replicas, r, seed=3, drop_last=drop_last) for r in range(replicas)]
    for s in shards:
        s.set_epoch(2)
    parts = [s.indices() for s in shards]
    assert len({len(p) for p in parts}) == 1
    flat = np.concatenate(parts)
    if drop_last:
        assert len(set(flat.tolist())) == len(flat) == (size // replicas) * replicas
    else:
        assert set(flat.tolist()) == set(range(size))
        # padding only repeats the wrap-around, and only when the size does not divide
        assert len(flat) - size == (-size) % replicas
    for a in range(replicas):
        for b in range(a + 1, replicas):
            if drop_last or size % replicas == 0:
                assert not set(parts[a].tolist()) & set(parts[b].tolist())


def test_sampler_reshuffles_per_epoch_identically_on_every_rank():
    s = DistributedSampler(100, 1, 0, seed=1)
    first = s.indices().copy()
    s.set_epoch(1)
    assert not np.array_equal(first, s.indices())
    s.set_epoch(0)
    assert np.array_equal(first, s.indices())


def test_single_process_strategy_is_identity():
    s = get_strategy(None)
    assert isinstance(s, SingleProcess) and s.world_size == 1 and s.is_main
    assert s.allreduce_sum([1.0, 2.0]).tolist() == [1.0, 2.0]


@pytest.mark.mpi
def test_two_ranks_equal_one_process_with_the_full_batch(tmp_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    subprocess.run([sys.executable, str(SCRIPT), str(one)], check=True, timeout=120)
    result = _mpirun(2, str(two))
    assert result.returncode == 0, result.stderr
    a, b = np.load(one), np.load(two)
    for key in ("w1", "b1", "w2", "b2"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-12)
    # 20 steps of one bucket holding all 8*6+8+3*8+3 = 83 float64 gradients
    assert int(b["bytes"]) == 20 * 83 * 8


@pytest.mark.mpi
@pytest.mark.parametrize("failure", ["--die-at", "--raise-at", "--stall-at"])
def test_a_failing_rank_stops_the_others_with_a_clear_error(tmp_path, failure):
    result = _mpirun(2, str(tmp_path / "x.npz"), failure, "3", timeout=90, PLAIT_MPI_TIMEOUT="5")
    assert result.returncode != 0
    text = result.stdout + result.stderr
    expected = {
        "--die-at": "exited with non-zero status",
        "--raise-at": "uncaught RuntimeError; aborting all ranks",
        "--stall-at": "no answer from the other ranks within 5 s",
    }[failure]
    assert expected in text


TRAINER_SCRIPT = Path(__file__).parent / "mpi_scripts" / "trainer_dp.py"


def _trainer_run(tmp_path: Path, name: str, ranks: int, epochs: int, *extra: str) -> dict[str, np.ndarray]:
    out = str(tmp_path / f"{name}.npz")
    args = [str(TRAINER_SCRIPT), out, str(epochs), *extra]
    if ranks == 1:
        subprocess.run([sys.executable, *args], check=True, timeout=120)
    else:
        result = _mpirun(ranks, *args[1:], script=TRAINER_SCRIPT)
        assert result.returncode == 0, result.stderr
    return dict(np.load(out))


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-12, err_msg=key)


@pytest.mark.mpi
def test_trainer_with_two_ranks_equals_one_process_and_only_rank0_writes(tmp_path):
    one = _trainer_run(tmp_path, "one", 1, 3)
    two = _trainer_run(tmp_path, "two", 2, 3, "--ckpt", str(tmp_path / "ckpt"))
    _assert_same(one, two)  # weights, per-epoch loss and validation metric (uneven last batch included)
    assert (tmp_path / "two.npz.writers").read_text().split() == ["0", "0", "0"]
    assert (tmp_path / "ckpt" / "latest").is_symlink()  # a link to the newest checkpoint folder
    assert (tmp_path / "ckpt" / "latest" / "trainer_state.json").is_file()


@pytest.mark.mpi
@pytest.mark.parametrize("first,second", [(2, 1), (1, 2)])
def test_resume_with_a_different_number_of_ranks(tmp_path, first, second):
    straight = _trainer_run(tmp_path, "straight", 1, 4)
    ckpt = str(tmp_path / "ckpt")
    _trainer_run(tmp_path, "part1", first, 2, "--ckpt", ckpt)
    resumed = _trainer_run(tmp_path, "part2", second, 4, "--resume", ckpt)
    _assert_same(straight, resumed)  # weights, and the history restored from the checkpoint plus epochs 3-4
