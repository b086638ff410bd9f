"""Apply BPE merges to one pre-tokenised piece (the inner loop of encoding).

Rule (tiktoken's, and GPT-2's for any merge list BPE training produces): take the leftmost
adjacent pair with the lowest merge rank, merge it, repeat until no adjacent pair is a merge.

Short pieces (nearly all) use a list of pair ranks of which each merge updates the two
neighbours: simple and fast, but quadratic in the piece length. Long pieces (a run of
letters with no space, a minified file) switch to a heap over (rank, position) on a linked
list, which applies the same rule in O(n log n).
"""

from __future__ import annotations

import heapq

__all__ = ["apply_merges", "LONG_PIECE"]

_NO_MERGE = 1 << 62
LONG_PIECE = 128  # byte length from which the heap version is used


def apply_merges(ids: list[int], ranks: dict[tuple[int, int], int], merged_ids: list[int]) -> list[int]:
    """Merge ``ids`` (the byte-token ids of one piece, modified in place) in rank order.

    ``ranks[(a, b)]`` is the rank of merge ``a b``; ``merged_ids[rank]`` the id it produces.
    """
    if len(ids) >= LONG_PIECE:
        return _apply_merges_heap(ids, ranks, merged_ids)
    get = ranks.get
    pair_ranks = [get(pair, _NO_MERGE) for pair in zip(ids, ids[1:])]  # pair_ranks[i]: ids[i], ids[i+1]
    while pair_ranks:
        rank = min(pair_ranks)
        if rank == _NO_MERGE:
            break
        i = pair_ranks.index(rank)
        new = merged_ids[rank]
        ids[i : i + 2] = (new,)
        del pair_ranks[i]
        if i < len(pair_ranks):
            pair_ranks[i] = get((new, ids[i + 1]), _NO_MERGE)
        if i:
            pair_ranks[i - 1] = get((ids[i - 1], new), _NO_MERGE)
    return ids


def _apply_merges_heap(ids: list[int], ranks: dict[tuple[int, int], int], merged_ids: list[int]) -> list[int]:
    """Same rule, O(n log n): symbols keep their start index; heap entries are (rank, start)."""
    get = ranks.get
    n = len(ids)
    symbols = list(ids)
    nxt = list(range(1, n + 1))  # index of the next live symbol (n: none)
    prv = list(range(-1, n - 1))  # index of the previous live symbol (-1: none)
    alive = [True] * n
    heap = [(r, i) for i, pair in enumerate(zip(ids, ids[1:])) if (r := get(pair)) is not None]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = nxt[i]
        if not alive[i] or j >= n or get((symbols[i], symbols[j])) != rank:
            continue  # stale: the pair at i changed since this entry was pushed
        symbols[i] = merged_ids[rank]
        alive[j] = False
        k = nxt[j]
        nxt[i] = k
        if k < n:
            prv[k] = i
            if (r := get((symbols[i], symbols[k]))) is not None:
                heapq.heappush(heap, (r, i))
        p = prv[i]
        if p >= 0 and (r := get((symbols[p], symbols[i]))) is not None:
            heapq.heappush(heap, (r, p))
    return [s for s, live in zip(symbols, alive) if live]
