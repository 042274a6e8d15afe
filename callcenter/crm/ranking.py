"""ABC ranking: the few clients who make most of the calls (or of a value) are class A."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

RankBasis = Literal["calls", "talk_time", "sales"]
"""What ranks a client: the number of calls, the seconds talked, or the calls ending in a sale."""


class AbcClass(StrEnum):
    A = "A"
    B = "B"
    C = "C"


def abc_classes(
    scores: Mapping[int, float], *, a_share: float = 0.80, b_share: float = 0.95
) -> dict[int, AbcClass]:
    """Class per id: A while the running total before it is under `a_share` of the whole, then
    B while under `b_share`, then C. Zero scores are always C; ties go by id, so the result
    does not depend on the mapping's order."""
    if not 0 < a_share <= b_share <= 1:
        raise ValueError("need 0 < a_share <= b_share <= 1")
    total = sum(s for s in scores.values() if s > 0)
    classes = {key: AbcClass.C for key in scores}
    if total <= 0:
        return classes
    running = 0.0
    for key, score in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
        if score <= 0:
            break
        share_before = running / total
        if share_before < a_share:
            classes[key] = AbcClass.A
        elif share_before < b_share:
            classes[key] = AbcClass.B
        running += score
    return classes
