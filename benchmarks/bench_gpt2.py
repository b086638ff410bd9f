"""GPT-2 (124M) inference: tokens per second with the KV cache and peak RSS, Plait next to transformers.

    python benchmarks/bench_gpt2.py [--prompt 32] [--new 32] [--repeats 3] [--threads 2]

A randomly initialised ``transformers.GPT2LMHeadModel`` at the published gpt2 sizes is saved
with ``save_pretrained`` to a temporary folder; each library then runs in its own child
process (so peak RSS is its own): Plait loads the folder with ``plait.zoo.from_pretrained``,
transformers with ``from_pretrained``; both greedily generate ``--new`` tokens after a
``--prompt``-token prompt (batch 1, KV cache on), once to warm up, then ``--repeats`` timed
runs (median). The greedy tokens of both are compared. Needs torch and transformers; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _run_side(side: str, folder: str, prompt: np.ndarray, new: int, repeats: int, threads: int) -> dict[str, Any]:
    start = time.perf_counter()
    if side == "plait":
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        threadpool_limits(threads)
        import plait.zoo as zoo  # noqa: PLC0415

        model, _ = zoo.from_pretrained(folder)

        def generate() -> np.ndarray:
            return zoo.generate(model, prompt[None], new, temperature=0)[0]
    else:
        import torch  # noqa: PLC0415
        import transformers  # noqa: PLC0415

        torch.set_num_threads(threads)
        hf = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
        ids = torch.from_numpy(prompt)[None]

        def generate() -> np.ndarray:
            with torch.inference_mode():
                return hf.generate(ids, max_new_tokens=new, do_sample=False, use_cache=True,
                                   pad_token_id=50256)[0].numpy()
    load_s = time.perf_counter() - start
    rss_loaded = _rss_kib()
    tokens = generate()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate()
        times.append(time.perf_counter() - t0)
    return {"side": side, "load_s": load_s, "tokens_per_s": new / statistics.median(times),
            "rss_after_load_mib": rss_loaded / 1024,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "tokens": tokens.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=32, help="prompt length in tokens")
    parser.add_argument("--new", type=int, default=32, help="tokens to generate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--side", choices=["plait", "transformers"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    prompt = np.random.default_rng(0).integers(0, 50257, size=args.prompt).astype(np.int64)
    if args.side:
        print(json.dumps(_run_side(args.side, args.folder, prompt, args.new, args.repeats, args.threads)))
        return

    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(folder, safe_serialization=True)
        results = []
        for side in ("plait", "transformers"):
            out = subprocess.run([sys.executable, __file__, "--side", side, "--folder", folder,
                                  *[f"--{k}={getattr(args, k)}" for k in ("prompt", "new", "repeats", "threads")]],
                                 check=True, capture_output=True, text=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"GPT-2 124M (random weights), batch 1, prompt {args.prompt}, {args.new} new tokens, greedy, KV cache, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'':14}{'tokens/s':>10}{'load s':>9}{'RSS loaded MiB':>16}{'peak RSS MiB':>14}")
    for r in results:
        print(f"{r['side']:14}{r['tokens_per_s']:10.1f}{r['load_s']:9.1f}{r['rss_after_load_mib']:16.0f}"
              f"{r['peak_rss_mib']:14.0f}")
    plait, hf = results
    print(f"Plait / transformers speed: {plait['tokens_per_s'] / hf['tokens_per_s']:.2f}x; "
          f"same greedy tokens: {plait['tokens'] == hf['tokens']}")


if __name__ == "__main__":
    main()
