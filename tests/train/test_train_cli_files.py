"""``plait train`` reads its files bounded and validated: special, oversized and malformed files are refused."""

from __future__ import annotations

import io
import os
import struct
import zipfile

import numpy as np
import pytest

from plait.core import SerializationError
from plait.core.cli import main
from plait.train import _npz

TEXT = "To be, or not to be, that is the question:\n" * 20


def _refused(capsys, argv, *fragments):
    assert main(argv) == 1
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("suffix", [".txt", ".npz"])
def test_a_fifo_as_data_is_refused_without_blocking(tmp_path, capsys, suffix):
    fifo = tmp_path / f"data{suffix}"
    os.mkfifo(fifo)
    _refused(capsys, ["train", "gpt-nano" if suffix == ".txt" else "mlp", "--data", str(fifo), "-o", str(tmp_path / "r")],
             "--data", str(fifo), "FIFO")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_refused_not_read(tmp_path, text, capsys):
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    _refused(capsys, ["train", "gpt-nano", "--data", str(text), "--tokenizer", str(zero), "-o", str(tmp_path / "r")],
             "--tokenizer", str(zero), "character device")
    data = tmp_path / "zero.txt"
    data.symlink_to("/dev/zero")
    _refused(capsys, ["train", "gpt-nano", "--data", str(data), "-o", str(tmp_path / "r")], "--data", "character device")


@pytest.mark.parametrize("content, problem", [
    (b'{"format": "plait.char", "format": "plait.bpe"}', "twice"),
    (b'{"format": NaN}', "NaN"),
    (b"[" * 100000, "JSON"),
    (b"\xff\xfe", "UTF-8"),
    (b'["format"]', "JSON object"),
])
def test_a_malformed_tokenizer_file_names_the_file(tmp_path, text, capsys, content, problem):
    tok = tmp_path / "tok.json"
    tok.write_bytes(content)
    _refused(capsys, ["train", "gpt-nano", "--data", str(text), "--tokenizer", str(tok), "-o", str(tmp_path / "r")],
             "--tokenizer", str(tok), problem)


def test_text_data_must_be_utf8(tmp_path, capsys):
    data = tmp_path / "latin.txt"
    data.write_bytes("caf\xe9 ".encode("latin-1") * 100)
    _refused(capsys, ["train", "gpt-nano", "--data", str(data), "-o", str(tmp_path / "r")], "--data", str(data), "UTF-8")


def test_oversized_text_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    from plait.train import cli

    monkeypatch.setattr(cli, "_MAX_TEXT_BYTES", 100)
    data = tmp_path / "big.txt"
    data.write_text(TEXT)
    _refused(capsys, ["train", "gpt-nano", "--data", str(data), "-o", str(tmp_path / "r")], str(data), "limit of 100 bytes")


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_a_valid_npz_round_trips(tmp_path):
    path = tmp_path / "ok.npz"
    x, y = np.arange(12, dtype=np.float32).reshape(3, 4), np.array([0, 1, 2])
    path.write_bytes(_npz_bytes(x=x, y=y))
    arrays = _npz.read_npz(path, component="--data")
    assert sorted(arrays) == ["x", "y"] and np.array_equal(arrays["x"], x) and np.array_equal(arrays["y"], y)


def test_an_npz_bomb_is_refused_from_its_declared_size(tmp_path, capsys, monkeypatch):
    from plait.train import cli

    path = tmp_path / "bomb.npz"
    path.write_bytes(_npz_bytes(x=np.zeros((1000, 1000), dtype=np.float32), y=np.zeros(1000, dtype=np.int64)))
    assert path.stat().st_size < 100_000  # compresses to almost nothing
    with pytest.raises(SerializationError, match=r"bomb\.npz.*'x\.npy' declares 4000\d+ bytes"):
        _npz.read_npz(path, component="--data", max_bytes=1_000_000)
    monkeypatch.setattr(cli, "_MAX_NPZ_BYTES", 1_000_000)
    _refused(capsys, ["train", "mlp", "--data", str(path), "-o", str(tmp_path / "r")], "--data", str(path),
             "'x.npy' declares")


def test_an_oversized_npz_file_is_refused(tmp_path):
    path = tmp_path / "big.npz"
    path.write_bytes(_npz_bytes(x=np.zeros(1000), y=np.zeros(1000, dtype=np.int64)))
    with pytest.raises(SerializationError, match=r"big\.npz has \d+ bytes, more than the limit of 100 bytes"):
        _npz.read_npz(path, component="--data", max_bytes=100)


def test_a_header_that_lies_about_its_shape_is_refused_before_allocating(tmp_path):
    """A 100-byte member whose .npy header declares 10**12 float64 values: refused, no allocation."""
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", member)
        z.writestr("y.npy", member)
    with pytest.raises(SerializationError, match=r"liar\.npz: member 'x\.npy' declares shape \(1000000000000,\)"):
        _npz.read_npz(path, component="--data")


@pytest.mark.parametrize("content, problem", [
    (b"PK\x03\x04 not a zip at all", "not a readable .npz"),
    (b"", "not a readable .npz"),
])
def test_a_malformed_npz_is_a_plait_error(tmp_path, capsys, content, problem):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(SerializationError, match=problem):
        _npz.read_npz(path, component="--data")
    _refused(capsys, ["train", "mlp", "--data", str(path), "-o", str(tmp_path / "r")], "--data", str(path), problem)


def test_pickled_members_are_refused(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, dtype=np.int64))
    path = tmp_path / "pickle.npz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(SerializationError, match=r"'x\.npy' holds Python objects"):
        _npz.read_npz(path, component="--data")


def test_non_array_members_are_refused(tmp_path):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", _npz_bytes())  # placeholder
        z.writestr("readme.txt", b"hello")
    with pytest.raises(SerializationError, match=r"odd\.npz"):
        _npz.read_npz(path, component="--data")
