"""Folding grouped aggregates: the fast fold of the queue report adds up as `add_sums` does."""

from __future__ import annotations

import random

from callcenter.reports.sql import SumsFold, add_sums

NAMES = ("offered", "wait_total", "longest_wait")
"""A count, a sum that may be NULL (no call of the group had a wait) and a maximum."""


def test_given_groups_with_nulls_and_maxima_when_folded_then_as_add_sums_folds_them() -> None:
    rng = random.Random(3)
    groups = [
        (
            rng.choice("abc"),
            [
                rng.randrange(0, 9),
                rng.choice([None, round(rng.uniform(0, 99), 1)]),
                rng.choice([None, float(rng.randrange(0, 300))]),
            ],
        )
        for _ in range(200)
    ]
    fold = SumsFold(NAMES)
    expected: dict[str, dict[str, float | None]] = {}

    for key, values in groups:
        fold.add(key, values)
        add_sums(expected.setdefault(key, {}), dict(zip(NAMES, values, strict=True)))

    folded = fold.sums()
    assert set(folded) == set(expected) == {"a", "b", "c"}
    for key, sums in expected.items():
        for name in NAMES:
            want, got = sums[name], folded[key][name]
            assert (want is None and got is None) or abs((want or 0) - (got or 0)) < 1e-9, name


def test_given_only_nulls_for_a_sum_when_folded_then_it_stays_null() -> None:
    fold = SumsFold(NAMES)

    fold.add("q", [3, None, None])
    fold.add("q", [2, None, 40])

    assert fold.sums() == {"q": {"offered": 5.0, "wait_total": None, "longest_wait": 40.0}}
