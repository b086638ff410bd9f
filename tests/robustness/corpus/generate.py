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


_CHAR_OK = {"format": "plait.char", "version": 1, "unknown": "unk", "unk_token": "<unk>",
            "special_tokens": ["<unk>"], "chars": [" ", "a", "b", "c"]}
_BPE_HEAD = '{"format": "plait.byte_level_bpe", "version": 1, "pattern": "gpt2", '

TOKENIZERS: dict[str, bytes | str] = {
    "ok_char": json.dumps(_CHAR_OK),
    "empty": "",
    "not_utf8": b'{"format": "plait.char", "chars": ["\xe9\xff"]}',
    "nesting_bomb": "[" * 2500 + "]" * 2500,
    "object_bomb": '{"a":' * 2500 + "1" + "}" * 2500,
    "duplicate_keys": '{"format": "plait.char", "format": "plait.byte_level_bpe", "version": 1}',
    "unknown_format": '{"format": "sentencepiece", "version": 1}',
    "version_string": '{"format": "plait.char", "version": "1"}',
    "version_nan": '{"format": "plait.char", "version": NaN}',
    "version_5000_digits": '{"format": "plait.char", "version": ' + "9" * 5000 + "}",
    "char_unsorted": json.dumps({**_CHAR_OK, "chars": ["b", "a"]}),
    "char_multichar": json.dumps({**_CHAR_OK, "chars": ["ab"]}),
    "char_unk_not_special": json.dumps({**_CHAR_OK, "special_tokens": []}),
    "bpe_no_vocab": _BPE_HEAD + '"merges": [], "special_tokens": {}}',
    "bpe_missing_bytes": _BPE_HEAD + '"vocab": {"a": 0}, "merges": [], "special_tokens": {}}',
    "bpe_bad_pattern": '{"format": "plait.byte_level_bpe", "version": 1, "pattern": "(?<", "vocab": {}, "merges": []}',
    "word_unknown_config": '{"format": "plait.word_vectorizer", "version": 1, "config": {"eval": "1"}, "vocabulary": []}',
    "word_bad_max_tokens": '{"format": "plait.word_vectorizer", "version": 1, "config": {"max_tokens": -1}, '
                           '"vocabulary": ["", "[UNK]"]}',
}

# saved-model folders: config.json text (None: the valid one) and whether to keep the weights
_MODEL_OK = {"format": "plait-model", "format_version": 1, "architecture": "mlp",
             "model_args": {"sizes": [4, 8, 3]}, "dtype": "float32"}
MODELS: dict[str, tuple[str | bytes, bool]] = {
    "ok_mlp": (json.dumps(_MODEL_OK), True),
    "no_weights": (json.dumps(_MODEL_OK), False),
    "unknown_architecture": (json.dumps({**_MODEL_OK, "architecture": "__import__('os')"}), True),
    "unknown_layer": (json.dumps({**_MODEL_OK, "model_args": {"sizes": [4, 8, 3], "activation": "evil_layer"}}), True),
    "missing_model_args": (json.dumps({k: v for k, v in _MODEL_OK.items() if k != "model_args"}), True),
    "wrong_shape_args": (json.dumps({**_MODEL_OK, "model_args": {"sizes": [5, 8, 3]}}), True),
    "config_not_utf8": (b'{"format": "plait-model\xff"}', True),
    "config_bomb": ('{"a":' * 2500 + "1" + "}" * 2500, True),
    "config_array": ("[1, 2]", True),
}


def _model_weights() -> bytes:
    import tempfile  # noqa: PLC0415

    from plait.core import manual_seed  # noqa: PLC0415
    from plait.zoo import create, save  # noqa: PLC0415

    manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        save(create("mlp", sizes=[4, 8, 3]), tmp)
        return (Path(tmp) / "model.safetensors").read_bytes()


def main() -> None:
    folder = HERE / "safetensors"
    folder.mkdir(exist_ok=True)
    for name, blob in SAFETENSORS.items():
        assert len(blob) < 16_384, name
        (folder / f"{name}.safetensors").write_bytes(blob)
    folder = HERE / "tokenizers"
    folder.mkdir(exist_ok=True)
    for name, text in TOKENIZERS.items():
        blob = text if isinstance(text, bytes) else text.encode("utf-8")
        assert len(blob) < 16_384, name
        (folder / f"{name}.json").write_bytes(blob)
    weights = _model_weights()
    for name, (config, with_weights) in MODELS.items():
        model = HERE / "models" / name
        model.mkdir(parents=True, exist_ok=True)
        (model / "config.json").write_bytes(config if isinstance(config, bytes) else config.encode("utf-8"))
        if with_weights:
            (model / "model.safetensors").write_bytes(weights)


if __name__ == "__main__":
    main()
