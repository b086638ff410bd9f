"""Regenerate the fuzz corpus: ``python tests/robustness/corpus/generate.py``.

Files named ``ok_*`` must load; every other file must raise a PlaitError subclass naming
its path. Keep every file small (a few KiB): the corpus is checked into git.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

HERE = Path(__file__).parent


def _st(header: object, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def _raw_header(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def _f32(shape: list[int], offsets: list[int], dtype: str = "F32") -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


SAFETENSORS: dict[str, bytes] = {
    "ok_two_tensors": _st({"__metadata__": {"format": "pt"}, "a": _f32([2], [0, 8]), "b": _f32([1], [8, 12])},
                          b"\0" * 12),
    "ok_empty": _st({}),
    "empty_file": b"",
    "short_length_prefix": b"\x10\x00\x00",
    "length_past_end": struct.pack("<Q", 1 << 40) + b"{}",
    "header_not_utf8": _raw_header(b'{"\xff\xfe": 1}'),
    "header_not_json": _raw_header(b"{'a': 1}"),
    "header_array": _st([{"dtype": "F32"}]),
    "nesting_bomb": _raw_header(b"[" * 2500 + b"]" * 2500),
    "object_nesting_bomb": _raw_header(b'{"a":' * 2500 + b"0" + b"}" * 2500),
    "overlapping_offsets": _st({"a": _f32([2], [0, 8]), "b": _f32([2], [4, 12])}, b"\0" * 12),
    "offsets_out_of_range": _st({"a": _f32([4], [0, 16])}, b"\0" * 8),
    "offsets_reversed": _st({"a": _f32([0], [8, 0])}, b"\0" * 8),
    "offsets_gap": _st({"a": _f32([1], [4, 8])}, b"\0" * 8),
    "trailing_bytes": _st({"a": _f32([1], [0, 4])}, b"\0" * 8),
    "unknown_dtype": _st({"a": _f32([1], [0, 4], "F31")}, b"\0" * 4),
    "bf16": _st({"a": _f32([2], [0, 4], "BF16")}, b"\0" * 4),
    "shape_bytes_disagree": _st({"a": _f32([3, 3], [0, 4])}, b"\0" * 4),
    "negative_dim": _st({"a": _f32([-4], [0, 4])}, b"\0" * 4),
    "huge_shape": _st({"a": _f32([1 << 31, 1 << 31], [0, 4])}, b"\0" * 4),
    "overflowing_shape": _st({"a": _f32([1 << 40, 1 << 40], [0, 4])}, b"\0" * 4),
    "big_number_dim": _raw_header(b'{"a": {"dtype": "F32", "shape": [' + b"9" * 400 + b'], "data_offsets": [0, 4]}}')
    + b"\0" * 4,
    "pickle_not_safetensors": b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94.",
}


def main() -> None:
    folder = HERE / "safetensors"
    folder.mkdir(exist_ok=True)
    for name, blob in SAFETENSORS.items():
        assert len(blob) < 16_384, name
        (folder / f"{name}.safetensors").write_bytes(blob)


if __name__ == "__main__":
    main()
