"""plait.core.reading: one bounded open per file, special files refused, strict JSON."""

from __future__ import annotations

import os
import threading

import pytest

from plait.core import PlaitError, SerializationError, parse_json, read_bytes, read_json, read_text
from plait.core.errors import CheckpointError

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")


def test_reads_a_regular_file_whole(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"\x00\x01abc")
    assert read_bytes(f, component="test", max_bytes=5) == b"\x00\x01abc"
    assert read_bytes(str(f), component="test", max_bytes=100) == b"\x00\x01abc"


def test_a_file_over_the_bound_is_refused_naming_component_and_path(tmp_path):
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 11)
    with pytest.raises(SerializationError, match=r"mytool: .*big\.bin has 11 bytes, more than the limit of 10"):
        read_bytes(f, component="mytool", max_bytes=10)


def test_missing_file_and_directory_are_serialization_errors(tmp_path):
    with pytest.raises(SerializationError, match=r"comp: cannot read .*nope: file not found"):
        read_bytes(tmp_path / "nope", component="comp", max_bytes=10)
    with pytest.raises(SerializationError, match="directory"):
        read_bytes(tmp_path, component="comp", max_bytes=10)


def test_error_class_can_be_a_subclass(tmp_path):
    with pytest.raises(CheckpointError):
        read_bytes(tmp_path / "nope", component="checkpoint", max_bytes=10, error=CheckpointError)


@needs_fifo
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result: list[BaseException | bytes] = []
    worker = threading.Thread(target=lambda: result.append(_catch(read_bytes, fifo, component="t", max_bytes=10)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert isinstance(result[0], SerializationError) and "FIFO" in str(result[0])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "weights.safetensors"
    link.symlink_to("/dev/zero")
    with pytest.raises(SerializationError, match="character device"):
        read_bytes(link, component="t", max_bytes=10**12)


def test_a_nul_byte_in_the_path_is_a_serialization_error():
    with pytest.raises(SerializationError):
        read_bytes("a\0b", component="t", max_bytes=10)


def test_read_text_is_strict_utf8(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes("héllo".encode())
    assert read_text(f, component="t") == "héllo"
    f.write_bytes(b"ok \xff\xfe")
    with pytest.raises(SerializationError, match=r"not UTF-8 text .* at byte 3"):
        read_text(f, component="t")


def _catch(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return exc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', r"field a: the key appears twice"),
        ('{"x": {"y": [1, {"k": 0, "k": 0}]}}', r"field x\.y\[1\]\.k: the key appears twice"),
        ('{"lr": NaN}', r"field lr: NaN is not a finite number"),
        ('{"lr": Infinity}', r"field lr: Infinity is not a finite number"),
        ('{"lr": -Infinity}', r"field lr: -Infinity is not a finite number"),
        ('{"lr": 1e400}', r"field lr: 1e400 overflows to infinity"),
        ('{"step": ' + "9" * 5000 + "}", r"field step: an integer of 5000 digits"),
        ('{"step": -' + "9" * 41 + "}", r"field step: an integer of 41 digits"),
        ("[" * 100_000 + "]" * 100_000, r"nested too deeply|top level"),
        ("{", r"not valid JSON"),
        ("", r"not valid JSON"),
        ("[1, 2]", r"the top level must be a JSON object, got a list"),
        ("null", r"the top level must be a JSON object, got null"),
    ],
)
def test_strict_json_refusals_name_the_source_and_the_field(text, message):
    with pytest.raises(SerializationError, match=message) as info:
        parse_json(text.encode(), source="conf.json", component="cfg")
    assert "cfg: conf.json" in str(info.value)


def test_strict_json_accepts_plain_documents_and_other_top_levels():
    assert parse_json(b'{"a": [1, 2.5, "x", null, true], "b": {"c": -' + b"9" * 40 + b"}}", source="s", component="c") == {
        "a": [1, 2.5, "x", None, True],
        "b": {"c": -int("9" * 40)},
    }
    assert parse_json("[1]", source="s", component="c", expect=list) == [1]
    assert parse_json("3", source="s", component="c", expect=None) == 3
    with pytest.raises(SerializationError, match="must be an integer, got true/false"):
        parse_json("true", source="s", component="c", expect=int)


def test_read_json_is_bounded_and_rejects_non_utf8(tmp_path):
    f = tmp_path / "config.json"
    f.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(SerializationError, match="not UTF-8"):
        read_json(f, component="config")
    f.write_text('{"a": 1}')
    assert read_json(f, component="config") == {"a": 1}
    with pytest.raises(SerializationError, match="more than the limit"):
        read_json(f, component="config", max_bytes=3)


def test_every_refusal_is_a_plait_error():
    assert issubclass(SerializationError, PlaitError)
