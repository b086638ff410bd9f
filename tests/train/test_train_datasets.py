"""Dataset loaders: IDX files, search order, checked downloads from a local HTTP server."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.core import SerializationError
from plait.train.datasets import (
    DownloadError,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_text,
    read_idx,
    write_idx,
)
from plait.train.datasets import mnist as mnist_module

REPO = Path(__file__).resolve().parents[2]
PARTS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _write_fake_set(folder: Path, gz: bool = True, n_train: int = 12, n_test: int = 5) -> dict[str, bytes]:
    """Small synthetic IDX files; returns {file name: bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    r = np.random.default_rng(0)
    arrays = [
        r.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        r.integers(0, 10, n_train, dtype=np.uint8),
        r.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        r.integers(0, 10, n_test, dtype=np.uint8),
    ]
    out = {}
    for part, arr in zip(PARTS, arrays):
        name = part + (".gz" if gz else "")
        write_idx(folder / name, arr)
        out[name] = (folder / name).read_bytes()
    return out


def test_idx_round_trip_and_bad_files(tmp_path):
    for dtype in (np.uint8, np.int16, np.int32, np.float32, np.float64):
        arr = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
        for name in ("a.idx", "a.idx.gz"):
            write_idx(tmp_path / name, arr)
            back = read_idx(tmp_path / name)
            assert back.dtype == dtype and np.array_equal(back, arr)
    assert gzip.decompress((tmp_path / "a.idx.gz").read_bytes()) == (tmp_path / "a.idx").read_bytes()
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(SerializationError, match="not an IDX"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(SerializationError, match="needs 5 bytes"):
        read_idx(tmp_path / "short")


def test_load_from_explicit_path_raw_or_gz(tmp_path):
    _write_fake_set(tmp_path / "gz", gz=True)
    _write_fake_set(tmp_path / "raw", gz=False)
    for folder in ("gz", "raw"):
        (x, y), (xt, yt) = load_fashion_mnist(tmp_path / folder)
        assert x.shape == (12, 28, 28) and x.dtype == np.float32 and yt.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    (xf, _), _ = load_mnist(tmp_path / "gz", flatten=True)
    assert xf.shape == (12, 784)
    assert np.array_equal(xf.reshape(12, 28, 28), x)
    raw = read_idx(tmp_path / "gz" / "train-images-idx3-ubyte.gz")
    np.testing.assert_allclose(x, raw / 255.0, rtol=0, atol=1e-7)
    assert np.array_equal(y, read_idx(tmp_path / "raw" / "train-labels-idx1-ubyte"))
    with pytest.raises(FileNotFoundError, match="lacks"):
        load_fashion_mnist(tmp_path / "nowhere")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/data"
    server.shutdown()
    server.server_close()


def test_download_is_checked_cached_and_a_corrupt_file_is_not_kept(tmp_path, http_dir, monkeypatch):
    www, url = http_dir
    files = _write_fake_set(www / "data")
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    source = dataclasses.replace(mnist_module.FASHION_MNIST, sha256=hashes, system_dirs=())
    monkeypatch.setattr(mnist_module, "FASHION_MNIST", source)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PLAIT_DATA", str(cache))

    # A corrupted copy on the server: rejected, and nothing is left in the cache.
    good = files["t10k-images-idx3-ubyte.gz"]
    (www / "data" / "t10k-images-idx3-ubyte.gz").write_bytes(good[:-10] + b"0123456789")
    with pytest.raises(DownloadError, match="t10k-images.*SHA-256"):
        load_fashion_mnist(base_url=url)
    folder = cache / "fashion-mnist"
    assert not (folder / "t10k-images-idx3-ubyte.gz").exists()
    assert not list(folder.glob(".*part"))  # no temporary file left either
    assert (folder / "train-images-idx3-ubyte.gz").read_bytes() == files["train-images-idx3-ubyte.gz"]

    (www / "data" / "t10k-images-idx3-ubyte.gz").write_bytes(good)
    (x, y), (xt, yt) = load_fashion_mnist(base_url=url)
    assert xt.shape == (5, 28, 28)
    for name, data in files.items():
        assert (folder / name).read_bytes() == data

    for name in files:  # served no more: the cache answers
        (www / "data" / name).unlink()
    (x2, _), _ = load_fashion_mnist(base_url=url)
    assert np.array_equal(x2, x)

    monkeypatch.setenv("PLAIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("PLAIT_FASHION_MNIST_URL", url)  # the environment can name a mirror too
    with pytest.raises(DownloadError, match="failed"):
        load_fashion_mnist()
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_fashion_mnist(download=False)


def test_the_canonical_checksums_are_pinned():
    assert mnist_module.FASHION_MNIST.url.startswith("http://fashion-mnist.s3-website")
    for source in (mnist_module.FASHION_MNIST, mnist_module.MNIST):
        assert set(source.sha256) == {p + ".gz" for p in PARTS}
        assert all(len(h) == 64 for h in source.sha256.values())


def test_debian_package_folder_is_found(monkeypatch, tmp_path):
    folder = Path("/usr/share/datasets/fashion-mnist")
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist is not installed")
    monkeypatch.setenv("PLAIT_DATA", str(tmp_path / "empty-cache"))
    found = mnist_module._locate(mnist_module.FASHION_MNIST, None, download_ok=False, base_url=None)
    assert [p.parent for p in found] == [folder] * 4
    labels = read_idx(found[3])
    assert labels.shape == (10_000,) and set(np.unique(labels).tolist()) == set(range(10))


def test_load_digits_and_its_missing_dependency(monkeypatch):
    x, y = load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.max() == 1.0 and x.min() == 0.0
    assert load_digits(flatten=True)[0].shape == (1797, 64)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"plait-train\[digits\]"):
        load_digits()


def test_load_text(tmp_path):
    (tmp_path / "t.txt").write_text("héllo\nworld", encoding="utf-8")
    assert load_text(tmp_path / "t.txt") == "héllo\nworld"
    with pytest.raises(FileNotFoundError):
        load_text(tmp_path / "missing.txt")
    shakespeare = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
    if not shakespeare.is_file():
        pytest.skip("tinyshakespeare.txt is not present")
    assert load_text(shakespeare).startswith("First Citizen")


# -- the cache folder -----------------------------------------------------------------------------
def test_data_home_follows_plait_data_then_the_platform_cache(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.setenv("PLAIT_DATA", str(tmp_path / "mine"))
    assert mnist_module.data_home() == tmp_path / "mine"
    monkeypatch.setenv("PLAIT_DATA", "~/plait-data")
    assert mnist_module.data_home() == Path.home() / "plait-data"
    monkeypatch.delenv("PLAIT_DATA")
    assert mnist_module.data_home() == Path(platformdirs.user_cache_dir("plait", appauthor=False))
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert mnist_module.data_home() == tmp_path / "xdg" / "plait"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert mnist_module.data_home() == Path.home() / ".cache" / "plait"


# -- hostile files ----------------------------------------------------------------------------------
def _special(tmp_path: Path, kind: str) -> Path:
    import os

    path = tmp_path / "special-idx3-ubyte"
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs os.mkfifo")
        os.mkfifo(path)
    else:
        if not os.path.exists("/dev/zero"):
            pytest.skip("needs /dev/zero")
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["directory", "FIFO", "symlink to /dev/zero"])
@pytest.mark.parametrize("reader", [read_idx, load_text], ids=["read_idx", "load_text"])
def test_special_files_are_refused_without_blocking(tmp_path, within_deadline, kind, reader):
    path = _special(tmp_path, kind)
    outcome = within_deadline(reader, path)
    assert isinstance(outcome, SerializationError), repr(outcome)
    assert str(path) in str(outcome)


def test_idx_reads_are_bounded_before_and_after_decompression(tmp_path):
    arr = np.zeros((100, 28, 28), np.uint8)  # 78 kB that compress to a few hundred bytes
    write_idx(tmp_path / "a.gz", arr)
    assert (tmp_path / "a.gz").stat().st_size < 1000
    with pytest.raises(SerializationError, match="decompresses to more than the limit of 10000 bytes"):
        read_idx(tmp_path / "a.gz", max_bytes=10_000)
    write_idx(tmp_path / "a.idx", arr)
    with pytest.raises(SerializationError, match="more than the limit of 10000 bytes"):
        read_idx(tmp_path / "a.idx", max_bytes=10_000)
    assert read_idx(tmp_path / "a.gz", max_bytes=arr.nbytes + 100).shape == arr.shape


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")[:-12], "truncated"),
        (b"\x1f\x8b" + b"\x00" * 20, "not a valid gzip file"),
        (b"\x00\x00\x08\x04" + b"\xff" * 16, "needs"),  # 4 dimensions of 2**32-1: refused from the header
        (b"\x00\x00\x08\xff", "truncated IDX header"),
        (b"", "not an IDX file"),
    ],
    ids=["truncated gzip", "bad gzip", "absurd shape", "255 dimensions, no sizes", "empty"],
)
def test_damaged_idx_files(tmp_path, blob, match):
    (tmp_path / "bad").write_bytes(blob)
    with pytest.raises(SerializationError, match=match):
        read_idx(tmp_path / "bad")


def test_load_text_refuses_bad_encodings_and_oversized_files(tmp_path):
    (tmp_path / "t.txt").write_bytes(b"caf\xe9")
    with pytest.raises(SerializationError, match="not utf-8 text"):
        load_text(tmp_path / "t.txt")
    assert load_text(tmp_path / "t.txt", encoding="latin-1") == "café"
    with pytest.raises(SerializationError, match="limit of 2 bytes"):
        load_text(tmp_path / "t.txt", max_bytes=2)


def test_download_larger_than_the_bound_is_not_kept(tmp_path, http_dir):
    from plait.train.datasets import download

    www, url = http_dir
    (www / "data").mkdir()
    (www / "data" / "big.bin").write_bytes(b"x" * 5000)
    with pytest.raises(DownloadError, match="larger than the limit of 1000 bytes"):
        download(url + "/big.bin", tmp_path / "cache" / "big.bin", None, max_bytes=1000)
    assert not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_idx_file_loads_exactly_or_raises(tmp_path, compressed, data):
    """Random byte damage: a SerializationError naming the file, or an array whose size is
    exactly what its header declares (never a numpy error, never more data than the file has)."""
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    good = tmp_path / "good.idx"
    write_idx(good, arr, compress=compressed)
    blob = bytearray(good.read_bytes())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        pos = data.draw(st.integers(0, max(len(blob) - 1, 0)), label="pos")
        op = data.draw(st.sampled_from(["flip", "truncate", "insert"]), label="op")
        if op == "flip" and blob:
            blob[pos] ^= data.draw(st.integers(1, 255), label="mask")
        elif op == "truncate":
            del blob[pos:]
        else:
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=6), label="bytes")
    path = tmp_path / "damaged.idx"
    path.write_bytes(bytes(blob))
    try:
        out = read_idx(path, max_bytes=4096)
    except SerializationError as exc:
        assert str(path) in str(exc)
        return
    assert isinstance(out, np.ndarray) and out.nbytes <= 4096


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_a_download_gets_the_mode_open_would_give(tmp_path, umask):
    import os

    from plait.train.datasets import download

    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    old = os.umask(umask)
    try:
        got = download(source.as_uri(), tmp_path / "cache" / "f.bin", hashlib.sha256(b"payload").hexdigest())
    finally:
        os.umask(old)
    assert got.read_bytes() == b"payload"
    assert got.stat().st_mode & 0o777 == 0o666 & ~umask
