"""safetensors I/O and atomic writes: round trips, hostile files, the backend."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from plait.core import (
    ConfigError,
    DeviceError,
    SerializationError,
    atomic_write,
    default_device,
    get_array_module,
    load_safetensors,
    read_safetensors_metadata,
    save_safetensors,
    to_device,
)
from plait.core.backend import cupy_available


def test_round_trip_with_metadata(tmp_path):
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array([1, 2], dtype=np.int64)}
    path = tmp_path / "m.safetensors"
    save_safetensors(path, arrays, {"format": "plait"})
    loaded = load_safetensors(path)
    assert loaded.keys() == arrays.keys()
    for k in arrays:
        assert loaded[k].dtype == arrays[k].dtype and np.array_equal(loaded[k], arrays[k])
    assert read_safetensors_metadata(path) == {"format": "plait"}
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_torch_written_file_loads(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    save_file({"weight": torch.ones(2, 3)}, str(tmp_path / "t.safetensors"))
    assert np.array_equal(load_safetensors(tmp_path / "t.safetensors")["weight"], np.ones((2, 3), np.float32))


def _valid_bytes(tmp_path) -> bytes:
    save_safetensors(tmp_path / "ok.safetensors", {"w": np.ones((4, 4), np.float32)})
    return (tmp_path / "ok.safetensors").read_bytes()


def _with_header(header: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda good: good[:5], "not a safetensors file"),
        (lambda good: good[:-7], "malformed|cannot decode"),
        (lambda good: struct.pack("<Q", 10**9) + good[8:], "exceeds the file size"),
        (lambda good: struct.pack("<Q", 4) + b"{{{{", "not valid JSON"),
        (lambda good: _with_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}}, b"\0" * 16), "malformed"),
        (lambda good: _with_header({"w": {"dtype": "Q99", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "malformed"),
        (lambda good: _with_header({"w": {"dtype": "F32", "shape": [10**12, 10**12], "data_offsets": [0, 4]}}, b"\0" * 4), "malformed"),
        (lambda good: _with_header([1, 2]), "JSON object"),
    ],
)
def test_hostile_files_raise_serialization_error(tmp_path, make, match):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(make(_valid_bytes(tmp_path)))
    with pytest.raises(SerializationError, match=match) as err:
        load_safetensors(bad)
    assert str(bad) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(SerializationError, match="not found"):
        load_safetensors(tmp_path / "nope.safetensors")


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("new partial")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_backend_on_cpu(monkeypatch):
    x = np.ones(3)
    assert get_array_module(x) is np
    assert to_device(x, "cpu") is x
    monkeypatch.setenv("PLAIT_DEVICE", "cpu")
    assert default_device() == "cpu"
    monkeypatch.setenv("PLAIT_DEVICE", "gpu0")
    with pytest.raises(DeviceError, match="unknown device"):
        default_device()


def test_cuda_unavailable_is_a_clear_error():
    if cupy_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError, match="CuPy with a working GPU is unavailable"):
        to_device(np.ones(2), "cuda")


@pytest.mark.gpu
def test_module_round_trip_through_gpu(tmp_path):
    if not cupy_available():
        pytest.skip("needs CuPy and a GPU")
    from plait.core import Module, Param

    class M(Module):
        def __init__(self):
            super().__init__()
            self.w = Param(np.arange(6, dtype=np.float32).reshape(2, 3))

    m = M().to("cuda")
    assert get_array_module(m.w.data).__name__ == "cupy"
    save_safetensors(tmp_path / "g.safetensors", m.state_dict())
    back = M()
    back.load_state_dict(load_safetensors(tmp_path / "g.safetensors"))
    assert np.array_equal(back.w.data, np.arange(6, dtype=np.float32).reshape(2, 3))


def test_bfloat16_is_refused_unless_widened_to_float32(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from plait.core import load_safetensors_bytes

    values = torch.tensor([[1.5, -2.0, 3.140625], [0.0, -0.0, 1e38]], dtype=torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    save_file({"w": values, "b": torch.arange(3, dtype=torch.int64)}, str(path))
    with pytest.raises(SerializationError, match=r"'w'.*BF16.*bfloat16='float32'"):
        load_safetensors(path)
    with pytest.warns(UserWarning, match=r"bf16\.safetensors: 1 bfloat16 tensor\(s\) converted to float32"):
        loaded = load_safetensors(path, bfloat16="float32")
    assert loaded["w"].dtype == np.float32 and loaded["w"].shape == (2, 3)
    assert np.array_equal(loaded["w"], values.float().numpy())  # exact: every bfloat16 is a float32
    assert loaded["b"].dtype == np.int64 and np.array_equal(loaded["b"], [0, 1, 2])
    with pytest.warns(UserWarning):
        from_bytes = load_safetensors_bytes(path.read_bytes(), source="mem", bfloat16="float32")
    assert np.array_equal(from_bytes["w"], loaded["w"])
    with pytest.raises(ConfigError, match="safetensors: bfloat16"):
        load_safetensors(path, bfloat16="float16")


def test_bfloat16_files_are_still_validated_by_the_library(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save

    data = bytearray(save({"w": torch.ones(4, dtype=torch.bfloat16)}))
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    header["w"]["data_offsets"] = [0, 64]  # past the end of the data
    raw = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data[8 + n :]))
    with pytest.raises(SerializationError, match="bad.safetensors"):
        load_safetensors(path, bfloat16="float32")
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(SerializationError, match="FIFO"):
        load_safetensors(fifo, bfloat16="float32")
