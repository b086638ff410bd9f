"""Apply BPE merges to one pre-tokenised piece (the inner loop of encoding).

Rule (GPT-2's): repeatedly take the adjacent pair with the lowest merge rank and merge
every occurrence of it, left to right, until no adjacent pair is a merge.
"""

from __future__ import annotations

__all__ = ["apply_merges"]

_NO_MERGE = 1 << 62


def apply_merges(ids: list[int], ranks: dict[tuple[int, int], int], merged_ids: list[int]) -> list[int]:
    """Merge ``ids`` (byte-token ids of one piece) in rank order.

    ``ranks[(a, b)]`` is the rank of merge ``a b``; ``merged_ids[rank]`` the id it produces.
    """
    get = ranks.get
    while len(ids) > 1:
        pair_ranks = [get(pair, _NO_MERGE) for pair in zip(ids, ids[1:])]
        rank = min(pair_ranks)
        if rank == _NO_MERGE:
            break
        start = pair_ranks.index(rank)
        ids = _merge_all(ids, ids[start], ids[start + 1], merged_ids[rank], start)
    return ids


def _merge_all(ids: list[int], a: int, b: int, new: int, start: int) -> list[int]:
    """Replace each non-overlapping ``a b`` (left to right, from ``start``) by ``new``."""
    out = ids[:start]
    n = len(ids)
    i = start
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
