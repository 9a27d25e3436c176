"""The ranking: where to search first = the block that leaves the most room.

Three measures, each in its own units, rank the blocks:
- replacement gain (IoU of the best random cell in the block's place minus the reference's): high = a new
  design there can add, so it ranks first;
- ablation drop (the reference's IoU minus the IoU with the block ablated): low = the network does not depend on
  what the block learned, so replacing it risks little;
- importance (the block's share of the gradient x weight importance): low = the loss does not lean on it.
Each measure orders the blocks (ties share their mean position), a position is scaled to 0..1 (1 = most room),
and a block's score is the mean of its three: a Borda count, so no measure's units outweigh another's. The block
with the highest score is searched first; ties keep forward order.
"""
from __future__ import annotations

# Per measure: the key in a block's record, and whether a larger value means more room.
MEASURES = (("gain", True), ("drop", False), ("taylor_share", False))


def _positions(values: list[float], larger_is_room: bool) -> list[float]:
    """0..1 per value, 1 for the most room; equal values share their mean position."""
    n = len(values)
    if n == 1:
        return [1.0]
    keyed = [v if larger_is_room else -v for v in values]
    order = sorted(range(n), key=lambda i: keyed[i])
    pos = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and keyed[order[j + 1]] == keyed[order[i]]:
            j += 1
        for k in range(i, j + 1):
            pos[order[k]] = (i + j) / 2 / (n - 1)
        i = j + 1
    return pos


def rank_blocks(records: list[dict]) -> list[dict]:
    """`records` (one dict per block with gain, drop, taylor_share) with `score` and `rank` (1 = search first)
    added, sorted by rank."""
    scores = [0.0] * len(records)
    for key, larger in MEASURES:
        for i, p in enumerate(_positions([float(r[key]) for r in records], larger)):
            scores[i] += p / len(MEASURES)
    order = sorted(range(len(records)), key=lambda i: (-scores[i], i))
    return [{**records[i], "score": round(scores[i], 6), "rank": r + 1} for r, i in enumerate(order)]
