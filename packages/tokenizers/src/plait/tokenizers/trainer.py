"""Byte-level BPE training: word counts in, an ordered list of merges out.

The corpus is pre-tokenised and counted once (``Counter`` of pieces). Training then never
recounts it: each merge rewrites only the words that contain the chosen pair (found through
a pair -> word-ids index) and updates the pair counts of those words in place.

The next merge is taken from a max-heap with lazy invalidation. A merge ``a b -> c`` only
lowers the counts of pairs without ``c`` and creates the pairs with ``c``, so entries in the
heap can only be too high: a popped entry whose count is stale is pushed back with its
current count, and the new pairs are pushed once per merge.

Tie rule (deterministic, independent of corpus order and id numbering): among pairs with
the same count, the one whose (left bytes, right bytes) is smallest in byte order wins.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Mapping

__all__ = ["train_merges"]

Pair = tuple[int, int]


def train_merges(
    word_counts: Mapping[bytes, int],
    num_merges: int,
    min_frequency: int = 2,
    on_merge: Callable[[], None] | None = None,
) -> list[Pair]:
    """Learn up to ``num_merges`` merges over byte tokens 0..255 (id = byte value).

    Merge ``k`` creates token id ``256 + k``. Stops early when no pair occurs at least
    ``min_frequency`` times. ``on_merge`` is called after each merge (progress bars).
    """
    words = [list(word) for word in word_counts]
    freqs = list(word_counts.values())
    token_bytes: list[bytes] = [bytes([b]) for b in range(256)]
    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for w, (symbols, freq) in enumerate(zip(words, freqs)):
        for pair in zip(symbols, symbols[1:]):
            counts[pair] += freq
            where[pair].add(w)
    heap = [(-n, token_bytes[a], token_bytes[b], (a, b)) for (a, b), n in counts.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    while len(merges) < num_merges and heap:
        neg, _, _, pair = heapq.heappop(heap)
        current = counts.get(pair, 0)
        if current != -neg:  # stale: the true count is lower; requeue it
            if current > 0:
                heapq.heappush(heap, (-current, token_bytes[pair[0]], token_bytes[pair[1]], pair))
            continue
        if current < min_frequency:
            break
        new_id = len(token_bytes)
        token_bytes.append(token_bytes[pair[0]] + token_bytes[pair[1]])
        merges.append(pair)
        for new_pair in _apply_merge(pair, new_id, words, freqs, counts, where):
            n = counts[new_pair]
            if n > 0:
                heapq.heappush(heap, (-n, token_bytes[new_pair[0]], token_bytes[new_pair[1]], new_pair))
        if on_merge is not None:
            on_merge()
    return merges


def _apply_merge(
    pair: Pair,
    new_id: int,
    words: list[list[int]],
    freqs: list[int],
    counts: dict[Pair, int],
    where: dict[Pair, set[int]],
) -> set[Pair]:
    """Rewrite every word holding ``pair``; update counts and index; return the new pairs."""
    a, b = pair
    created: set[Pair] = set()
    for w in where.pop(pair):
        symbols = words[w]
        merged = _merge_word(symbols, a, b, new_id)
        if merged is None:  # the index is lazy: this word lost the pair in an earlier merge
            continue
        freq = freqs[w]
        for old in zip(symbols, symbols[1:]):
            counts[old] -= freq
        for new in zip(merged, merged[1:]):
            counts[new] += freq
            if new_id in new:
                where[new].add(w)
                created.add(new)
        words[w] = merged
    counts.pop(pair, None)
    return created


def _merge_word(symbols: list[int], a: int, b: int, new_id: int) -> list[int] | None:
    """``symbols`` with each non-overlapping ``a b`` replaced by ``new_id``; None if absent."""
    n = len(symbols)
    i = 0
    out: list[int] | None = None
    while i < n - 1:
        if symbols[i] == a and symbols[i + 1] == b:
            if out is None:
                out = symbols[:i]
            out.append(new_id)
            i += 2
        else:
            if out is not None:
                out.append(symbols[i])
            i += 1
    if out is not None and i == n - 1:
        out.append(symbols[-1])
    return out
