"""ABC ranking: A makes ~80 % of the total, B the next ~15 %, C the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.crm.ranking import AbcClass, abc_classes

A, B, C = AbcClass.A, AbcClass.B, AbcClass.C


def test_given_a_classic_distribution_then_a_b_c_split_at_80_and_95_percent() -> None:
    scores = {1: 50.0, 2: 30.0, 3: 10.0, 4: 5.0, 5: 3.0, 6: 2.0}

    # Running share before each: 0, .5, .8, .9, .95, .98
    assert abc_classes(scores) == {1: A, 2: A, 3: B, 4: B, 5: C, 6: C}


def test_given_the_one_client_crossing_80_percent_then_it_is_still_a() -> None:
    assert abc_classes({1: 70.0, 2: 20.0, 3: 10.0}) == {1: A, 2: A, 3: B}


def test_given_zero_scores_then_those_clients_are_c_and_an_all_zero_base_is_all_c() -> None:
    assert abc_classes({1: 10.0, 2: 0.0}) == {1: A, 2: C}
    assert abc_classes({1: 0.0, 2: 0.0}) == {1: C, 2: C}
    assert abc_classes({}) == {}


def test_given_ties_then_the_lower_id_ranks_first_whatever_the_input_order() -> None:
    forward = abc_classes({1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0})
    backward = abc_classes({5: 1.0, 4: 1.0, 3: 1.0, 2: 1.0, 1: 1.0})

    assert forward == backward == {1: A, 2: A, 3: A, 4: A, 5: B}


def test_given_bad_shares_then_refused() -> None:
    with pytest.raises(ValueError, match="a_share"):
        abc_classes({1: 1.0}, a_share=0.9, b_share=0.8)


@given(st.dictionaries(st.integers(1, 500), st.floats(0, 1e6), max_size=60))
def test_given_any_scores_then_classes_follow_the_score_order_and_a_holds_80_percent(
    scores: dict[int, float],
) -> None:
    classes = abc_classes(scores)
    order = {A: 0, B: 1, C: 2}
    ranked = sorted(scores, key=lambda k: (-scores[k], k))

    assert set(classes) == set(scores)
    assert [order[classes[k]] for k in ranked] == sorted(order[classes[k]] for k in ranked)
    total = sum(scores.values())
    if total > 0:
        a_total = sum(scores[k] for k in scores if classes[k] is A)
        assert a_total >= 0.8 * total - 1e-6 * total
