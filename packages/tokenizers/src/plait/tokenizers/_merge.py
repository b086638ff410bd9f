"""Apply BPE merges to one pre-tokenised piece (the inner loop of encoding).

Rule (tiktoken's, and GPT-2's for any merge list BPE training produces): take the leftmost
adjacent pair with the lowest merge rank, merge it, repeat until no adjacent pair is a merge.
Only the two pair ranks next to the merge change, so each step updates just those.
"""

from __future__ import annotations

__all__ = ["apply_merges"]

_NO_MERGE = 1 << 62


def apply_merges(ids: list[int], ranks: dict[tuple[int, int], int], merged_ids: list[int]) -> list[int]:
    """Merge ``ids`` (the byte-token ids of one piece, modified in place) in rank order.

    ``ranks[(a, b)]`` is the rank of merge ``a b``; ``merged_ids[rank]`` the id it produces.
    """
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
