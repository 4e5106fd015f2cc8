"""Who gets what share of an amount earned under a license.

A license's frozen terms list its recordings and, for each, the performers'
splits in basis points. An amount earned by the license is divided equally
between its recordings, then each recording's part by its splits, with the
one rounding rule of royalties.money. Recordings are taken in the license's
order and performers by id, so the result is deterministic."""

from __future__ import annotations

from collections import defaultdict

from royalties.money import allocate, allocate_by_weight


def performer_parts(amount_minor: int, terms: dict) -> dict[int, int]:
    recordings = terms["recordings"]
    per_recording = allocate_by_weight(amount_minor, [(uid, 1) for uid in recordings])
    parts: dict[int, int] = defaultdict(int)
    for uid in recordings:
        splits = [(int(performer_id), int(bps)) for performer_id, bps in terms["splits"][uid]]
        for performer_id, part in allocate(per_recording[uid], sorted(splits)).items():
            parts[performer_id] += part
    return {performer_id: part for performer_id, part in sorted(parts.items()) if part}
