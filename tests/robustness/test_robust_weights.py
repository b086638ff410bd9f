"""Hostile safetensors files: every malformed file raises SerializationError naming the path.

Complements tests/core/test_core_weights.py (a handful of hand-made cases) with
hypothesis-driven mutations of valid files and of headers, allocation bounds for huge
declared shapes, unsupported dtypes, nesting bombs, pickles and the stored fuzz corpus.

Decision on NaN/inf: weights files are loaded bit-exactly, non-finite values included (a
diverged run must stay inspectable); it is the Trainer that refuses non-finite losses.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.core import (
    Module,
    Param,
    SerializationError,
    load_safetensors,
    load_safetensors_bytes,
    read_safetensors_metadata,
    safetensors_metadata,
    save_safetensors,
)
from plait.core.errors import DTypeError, PlaitError

CORPUS = Path(__file__).parent / "corpus" / "safetensors"
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _file(header: object, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _valid_bytes(tmp: Path) -> bytes:
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([3, 1], dtype=np.int64)}
    save_safetensors(tmp / "valid.safetensors", arrays, {"format": "plait"})
    return (tmp / "valid.safetensors").read_bytes()


def _load_or_serialization_error(path: Path) -> dict | None:
    """Loads, or raises SerializationError naming the path; any other exception fails the test."""
    try:
        arrays = load_safetensors(path)
    except SerializationError as exc:
        assert str(path) in str(exc)
        return None
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    return arrays


# -- structured cases ---------------------------------------------------------------------
F32_1 = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
HOSTILE = {
    "empty file": b"",
    "seven bytes": b"\x01" * 7,
    "header length zero": struct.pack("<Q", 0),
    "header length 2**64-1": struct.pack("<Q", 2**64 - 1) + b"{}",
    "header length one past the end": struct.pack("<Q", 3) + b"{}",
    "header not UTF-8": struct.pack("<Q", 4) + b"\xff\xfe\xfa\xfb",
    "header a list": _file([1, 2]),
    "header a string": _file("tensor"),
    "nesting bomb": (lambda raw: struct.pack("<Q", len(raw)) + raw)(b"[" * 50_000 + b"]" * 50_000),
    "nested objects bomb": (lambda raw: struct.pack("<Q", len(raw)) + raw)(b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    "overlapping offsets": _file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
    "offsets reversed": _file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, b"\0" * 8),
    "offsets past the end": _file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
    "offsets leave a gap": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
    "bytes after the last tensor": _file({"a": F32_1}, b"\0" * 8),
    "offsets not a pair": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, b"\0" * 4),
    "offsets a string": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}, b"\0" * 4),
    "unknown dtype": _file({"a": {"dtype": "Q99", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "dtype not a string": _file({"a": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "bfloat16 (no NumPy dtype)": _file({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
    "float8 (no NumPy dtype)": _file({"a": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4),
    "shape product too small": _file({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 4]}}, b"\0" * 4),
    "shape product too large": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
    "negative dimension": _file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "fractional dimension": _file({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, b"\0" * 4),
    "dimension 2**70": _file({"a": {"dtype": "F32", "shape": [2**70], "data_offsets": [0, 4]}}, b"\0" * 4),
    "shape product overflows 64 bits": _file({"a": {"dtype": "F64", "shape": [2**32, 2**32, 4], "data_offsets": [0, 8]}}, b"\0" * 8),
    "huge shape, tiny body": _file({"a": {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 4]}}, b"\0" * 4),
    "tensor entry a number": _file({"a": 5}),
    "metadata a list": _file({"__metadata__": [1, 2]}),
    "metadata values not strings": _file({"__metadata__": {"k": 1}}),
    # the header's JSON, checked strictly before the library parses it
    "5000-digit dimension": (lambda raw: struct.pack("<Q", len(raw)) + raw + b"\0" * 4)(
        b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}'),
    "5000-digit offset": (lambda raw: struct.pack("<Q", len(raw)) + raw + b"\0" * 4)(
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, ' + b"4" * 5000 + b']}}'),
    "tensor name repeated": (lambda raw: struct.pack("<Q", len(raw)) + raw + b"\0" * 4)(
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
        b' "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'),
    "metadata key repeated": (lambda raw: struct.pack("<Q", len(raw)) + raw)(
        b'{"__metadata__": {"format": "plait", "format": "evil"}}'),
    "NaN in the header": (lambda raw: struct.pack("<Q", len(raw)) + raw + b"\0" * 4)(
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": NaN}}'),
    "header with a BOM": (lambda raw: struct.pack("<Q", len(raw)) + raw)(b"\xef\xbb\xbf{}"),
}

# the field each strict-JSON refusal names
FIELD_NAMED = {
    "5000-digit dimension": r"field a\.shape\[0\]: an integer of 5000 digits",
    "5000-digit offset": r"field a\.data_offsets\[1\]: an integer of 5000 digits",
    "tensor name repeated": r"field a: the key appears twice",
    "metadata key repeated": r"field __metadata__\.format: the key appears twice",
    "NaN in the header": r"field a\.x: NaN",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_raises_serialization_error_naming_the_path(tmp_path, case):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(SerializationError) as err:
        load_safetensors(path)
    assert str(path) in str(err.value)
    assert len(str(err.value)) > len(str(path)) + 10  # says what is wrong, not just where


@pytest.mark.parametrize("case", list(FIELD_NAMED))
def test_strict_header_refusals_name_the_field_for_every_reader(tmp_path, case):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(HOSTILE[case])
    for read in (load_safetensors, read_safetensors_metadata):
        with pytest.raises(SerializationError, match=FIELD_NAMED[case]) as err:
            read(path)
        assert str(path) in str(err.value)
    with pytest.raises(SerializationError, match=FIELD_NAMED[case]):
        load_safetensors_bytes(HOSTILE[case], source="upload")


# -- special files: refused before a byte is read, never a hang or a MemoryError ----------------
def _special_files(tmp: Path) -> dict[str, Path]:
    out = {"a directory": tmp / "dir.safetensors"}
    out["a directory"].mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp / "fifo.safetensors")
        out["a FIFO"] = tmp / "fifo.safetensors"
    if os.path.exists("/dev/zero"):
        (tmp / "zero.safetensors").symlink_to("/dev/zero")
        out["a symlink to /dev/zero"] = tmp / "zero.safetensors"
    return out


SPECIAL_KINDS = ["a directory", "a FIFO", "a symlink to /dev/zero"]


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
@pytest.mark.parametrize("reader", [load_safetensors, read_safetensors_metadata], ids=lambda f: f.__name__)
def test_special_files_are_refused_without_blocking(tmp_path, kind, reader, within_deadline):
    path = _special_files(tmp_path).get(kind)
    if path is None:
        pytest.skip(f"{kind} cannot be made on this platform")
    outcome = within_deadline(reader, path)
    assert isinstance(outcome, SerializationError), outcome
    assert str(path) in str(outcome)


def test_the_size_bound_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.safetensors"
    save_safetensors(path, {"w": np.zeros(1000, np.float32)})
    with pytest.raises(SerializationError, match="more than the limit of 100 bytes"):
        load_safetensors(path, max_bytes=100)
    assert load_safetensors(path, max_bytes=path.stat().st_size)["w"].shape == (1000,)


def test_bytes_entry_parses_exactly_the_bytes_given(tmp_path):
    good = _valid_bytes(tmp_path)
    from_bytes = load_safetensors_bytes(good, source="memory")
    from_file = load_safetensors(tmp_path / "valid.safetensors")
    assert from_bytes.keys() == from_file.keys()
    for k in from_file:
        assert from_bytes[k].dtype == from_file[k].dtype and np.array_equal(from_bytes[k], from_file[k])
    assert safetensors_metadata(good, source="memory") == {"format": "plait"}
    with pytest.raises(SerializationError, match="^memory: "):
        load_safetensors_bytes(good[:-1], source="memory")


@pytest.mark.parametrize("dtype", ["BF16", "F8_E5M2"])
def test_dtype_numpy_cannot_hold_is_named(tmp_path, dtype):
    path = tmp_path / "bf.safetensors"
    path.write_bytes(_file({"embed": {"dtype": dtype, "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4))
    with pytest.raises(SerializationError, match=rf"'embed' has dtype {dtype}.*convert"):
        load_safetensors(path)


@pytest.mark.parametrize("case", ["header length 2**64-1", "nesting bomb", "header a list"])
def test_metadata_reader_rejects_hostile_headers(tmp_path, case):
    path = tmp_path / "m.safetensors"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(SerializationError, match="hostile|m.safetensors"):
        read_safetensors_metadata(path)


@pytest.mark.parametrize("value", [3, None, ["a"], {"k": "v"}])
def test_metadata_values_other_than_strings_are_refused_by_both_readers(tmp_path, value):
    path = tmp_path / "meta.safetensors"
    path.write_bytes(_file({"__metadata__": {"format": "plait", "odd": value}}, b""))
    with pytest.raises(SerializationError, match="meta.safetensors"):
        load_safetensors(path)
    with pytest.raises(SerializationError, match="values must be strings.*'odd'"):
        read_safetensors_metadata(path)


def test_huge_declared_shapes_do_not_allocate(tmp_path):
    """Declared terabyte tensors are rejected from the header: peak Python allocation stays tiny."""
    path = tmp_path / "huge.safetensors"
    header = {f"t{i}": {"dtype": "F64", "shape": [2**20, 2**20], "data_offsets": [8 * i, 8 * i + 8]} for i in range(4)}
    path.write_bytes(_file(header, b"\0" * 32))
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError):
            load_safetensors(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, f"loading a hostile header allocated {peak} bytes"


def test_zero_sized_dimension_beside_a_huge_one_is_fine(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(_file({"a": {"dtype": "F32", "shape": [0, 10**15], "data_offsets": [0, 0]}}))
    assert load_safetensors(path)["a"].shape == (0, 10**15)


def test_non_finite_values_load_bit_exactly(tmp_path):
    w = np.array([np.nan, np.inf, -np.inf, 1.5, -0.0], dtype=np.float32)
    save_safetensors(tmp_path / "nf.safetensors", {"w": w})
    back = load_safetensors(tmp_path / "nf.safetensors")["w"]
    assert back.tobytes() == w.tobytes()


def test_a_pickle_is_rejected_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "pytorch_model.safetensors"
    path.write_bytes(pickle.dumps({"w": Exploit()}))
    with pytest.raises(SerializationError):
        load_safetensors(path)
    assert not marker.exists()


def test_complex_weights_do_not_silently_lose_their_imaginary_part():
    class M(Module):
        def __init__(self):
            super().__init__()
            self.w = Param(np.zeros(2, dtype=np.float32))

    m = M()
    with pytest.raises(DTypeError, match="w has dtype complex64"):
        m.load_state_dict({"w": np.array([1 + 2j, 3j], dtype=np.complex64)})
    assert np.array_equal(m.w.data, [0, 0])  # nothing half-copied


# -- hypothesis: mutate valid files and headers ----------------------------------------------
@FUZZ
@given(data=st.data())
def test_mutated_valid_file_loads_or_raises_serialization_error(tmp_path, data):
    good = _valid_bytes(tmp_path)
    blob = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        op = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete", "length"]), label="op")
        pos = data.draw(st.integers(0, max(len(blob) - 1, 0)), label="pos")
        if op == "truncate":
            del blob[pos:]
        elif op == "flip" and blob:
            blob[pos] ^= data.draw(st.integers(1, 255), label="mask")
        elif op == "insert":
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
        elif op == "delete":
            del blob[pos:pos + data.draw(st.integers(1, 8), label="n")]
        elif op == "length" and len(blob) >= 8:
            blob[:8] = struct.pack("<Q", data.draw(st.integers(0, 2**64 - 1), label="length"))
    path = tmp_path / "mutated.safetensors"
    path.write_bytes(bytes(blob))
    _load_or_serialization_error(path)


_json_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_dims = st.lists(st.one_of(st.integers(0, 6), st.integers(-3, 2**65)), max_size=4)
_entry = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F64", "F16", "I64", "I8", "U8", "BOOL", "C64", "BF16", "F8_E5M2", "X1", ""]) | _json_junk,
    "shape": _dims | _json_junk,
    "data_offsets": st.lists(st.integers(-4, 80), min_size=2, max_size=2) | _json_junk,
})


@FUZZ
@given(header=st.dictionaries(st.text(min_size=1, max_size=5), _entry | _json_junk, max_size=3),
       body=st.binary(max_size=80))
def test_fuzzed_header_loads_or_raises_serialization_error(tmp_path, header, body):
    path = tmp_path / "fuzzed.safetensors"
    path.write_bytes(_file(header, body))
    arrays = _load_or_serialization_error(path)
    for name, arr in (arrays or {}).items():
        start, end = header[name]["data_offsets"]
        assert arr.nbytes == end - start  # never more bytes than the file declared


# -- the stored corpus ------------------------------------------------------------------------
def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.safetensors")) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_file(path):
    if path.name.startswith("ok_"):
        assert isinstance(load_safetensors(path), dict)
        return
    with pytest.raises(SerializationError) as err:
        load_safetensors(path)
    assert isinstance(err.value, PlaitError) and str(path) in str(err.value)


def test_corpus_is_present():
    assert len(_corpus_files()) >= 10


@pytest.mark.parametrize("key, value", [
    ("num_batches_tracked", "abc"), ("num_batches_tracked", None), ("num_batches_tracked", {"a": 1}),
    ("num_batches_tracked", 2**70), ("running_mean", [1, 2, "x"]), ("running_mean", [[1], [2, 3], [4]]),
    ("weight", np.ones(3, np.complex64)), ("bias", np.array(["1", "2", "3"])),
], ids=lambda v: repr(v)[:24])
def test_state_dict_values_that_are_not_real_numbers(key, value):
    """A state dict from JSON or a hostile file: a DTypeError naming the entry, and nothing half-copied."""
    from plait.core import registry

    bn = registry.build({"type": "batch_norm1d", "num_features": 3})
    before = {k: np.array(v, copy=True) for k, v in bn.state_dict().items()}
    state = {k: v + 1 for k, v in before.items()}  # every other entry is valid and different
    state[key] = value
    with pytest.raises(DTypeError, match=key):
        bn.load_state_dict(state)
    for k, v in bn.state_dict().items():
        assert np.array_equal(v, before[k]), f"{k} was changed by a load that failed"
