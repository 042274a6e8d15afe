"""The KPI registry: one definition per figure, computed the same from facts and from rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.calls.models import Outcome
from callcenter.calls.state import CallState, CallStatus
from callcenter.events import EndReason
from callcenter.kpi import (
    KPI_BY_KEY,
    KPIS,
    CallFact,
    KpiParams,
    KpiResult,
    add_fact,
    compute_all,
    fact_of,
    fact_of_state,
    is_short_call,
    remove_fact,
    results_of,
    text_keys,
    totals_of,
)

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
UI = Path(__file__).resolve().parents[2] / "ui"


def _fact(
    key: str,
    reason: EndReason,
    wait: float,
    talk: float | None = None,
    outcome: Outcome | None = None,
) -> CallFact:
    return CallFact(
        call_key=key,
        queue="support",
        ended_at=T0,
        end_reason=reason,
        answered=reason is EndReason.COMPLETED,
        wait_s=wait,
        talk_s=talk,
        outcome=outcome,
    )


FACTS = [
    _fact("a", EndReason.COMPLETED, 5, 60),
    _fact("b", EndReason.COMPLETED, 25, 120),
    _fact("c", EndReason.COMPLETED, 20, 30),
    _fact("d", EndReason.ABANDONED, 3),
    _fact("e", EndReason.ABANDONED, 40),
    _fact("f", EndReason.QUEUE_TIMEOUT, 45),
    _fact("g", EndReason.COMPLETED, 50, 10, outcome=Outcome.WRONG_NUMBER),
]


def test_given_facts_then_counts_split_answered_abandoned_and_timeouts() -> None:
    values = compute_all(FACTS, KpiParams(service_level_s=20, short_abandon_s=5))
    assert values["offered"].value == 7
    assert values["answered"].value == 4
    assert values["abandoned"].value == 2
    assert values["timed_out"].value == 1


def test_given_short_calls_then_they_leave_the_service_level_and_abandon_rate() -> None:
    params = KpiParams(service_level_s=20, short_abandon_s=5)

    values = compute_all(FACTS, params)

    # short: "d" (abandoned after 3 s) and "g" (wrong number); 5 calls remain
    assert [f.call_key for f in FACTS if is_short_call(f, params)] == ["d", "g"]
    level = values["service_level"]
    assert (level.numerator, level.denominator) == (2, 5)  # "a" (5 s) and "c" (20 s, at T)
    assert level.value == pytest.approx(40.0)
    rate = values["abandon_rate"]
    assert (rate.numerator, rate.denominator) == (1, 5)
    assert rate.value == pytest.approx(20.0)


def test_given_another_threshold_then_the_same_facts_give_another_service_level() -> None:
    values = compute_all(FACTS, KpiParams(service_level_s=30, short_abandon_s=0))

    level = values["service_level"]
    # nothing abandoned in under 0 s; only the wrong number is short
    assert (level.numerator, level.denominator) == (3, 6)


def test_given_answered_calls_then_asa_and_average_talk_are_their_means() -> None:
    values = compute_all(FACTS, KpiParams())

    assert values["asa"].value == pytest.approx((5 + 25 + 20 + 50) / 4)
    assert values["asa"].denominator == 4
    assert values["average_talk"].value == pytest.approx((60 + 120 + 30 + 10) / 4)
    assert values["longest_wait"].value == 50


def test_given_no_calls_then_ratios_and_means_are_unknown_not_zero() -> None:
    values = compute_all([], KpiParams())

    assert values["offered"].value == 0
    assert values["service_level"].value is None
    assert values["abandon_rate"].value is None
    assert values["asa"].value is None
    assert values["longest_wait"].value is None


@dataclass(frozen=True)
class Row:
    """A SQL-fed row with the call record's columns (what a report reads)."""

    call_key: str
    queue: str | None
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: EndReason | None
    wait_seconds: float | None
    talk_seconds: float | None
    outcome: Outcome | None


def test_given_a_row_and_the_state_it_was_written_from_then_both_give_the_same_fact() -> None:
    state = CallState(
        pbx="lab",
        call_key="k",
        status=CallStatus.ENDED,
        queue="sales",
        started_at=T0,
        queued_at=T0 + timedelta(seconds=2),
        answered_at=T0 + timedelta(seconds=9),
        ended_at=T0 + timedelta(seconds=70),
        end_reason=EndReason.COMPLETED,
    )
    row = Row(
        call_key="k",
        queue=state.queue,
        queued_at=state.queued_at,
        answered_at=state.answered_at,
        ended_at=state.ended_at,
        end_reason=state.end_reason,
        wait_seconds=state.wait_seconds,
        talk_seconds=state.talk_seconds,
        outcome=Outcome.SALE,
    )

    from_row = fact_of(row)

    assert from_row == fact_of_state(state, Outcome.SALE)
    assert from_row is not None
    assert (from_row.wait_s, from_row.talk_s, from_row.answered) == (7.0, 61.0, True)


def test_given_a_call_that_never_queued_or_is_still_open_then_it_is_no_queue_fact() -> None:
    direct = CallState(pbx="lab", call_key="d", status=CallStatus.ENDED, ended_at=T0)
    waiting = CallState(pbx="lab", call_key="w", status=CallStatus.QUEUED, queue="q", queued_at=T0)

    assert fact_of_state(direct) is None
    assert fact_of_state(waiting) is None


def test_given_the_registry_then_every_text_it_names_is_in_both_catalogues() -> None:
    for locale in ("ru", "en"):
        catalogue = json.loads((UI / "i18n" / "supervisor" / f"{locale}.json").read_text("utf-8"))
        missing = text_keys() - set(catalogue)
        assert not missing, (locale, missing)
        formula = catalogue[KPI_BY_KEY["service_level"].formula_key]
        assert "{t}" in formula
        assert "{n}" in catalogue["kpi.short_call_rule"]


def test_given_the_registry_then_ratio_kpis_state_their_denominator_and_short_call_rule() -> None:
    assert [k.key for k in KPIS][:4] == ["offered", "answered", "abandoned", "timed_out"]
    level = KPI_BY_KEY["service_level"]
    assert level.denominator_key == "kpi.service_level.denominator"
    assert level.short_call_rule_key == "kpi.short_call_rule"
    assert KPI_BY_KEY["offered"].denominator_key is None
    assert KPI_BY_KEY["asa"].short_call_rule_key is None


_facts = st.lists(
    st.builds(
        _fact,
        key=st.text("abcdef", min_size=1, max_size=3),
        reason=st.sampled_from(list(EndReason)),
        wait=st.sampled_from([0.0, 2.5, 5.0, 19.9, 20.0, 20.1, 47.3, 47.3, 300.0]),
        talk=st.none() | st.floats(min_value=0, max_value=600),
        outcome=st.none() | st.sampled_from(list(Outcome)),
    ),
    max_size=12,
)


def _figures(results: dict[str, KpiResult]) -> dict[str, tuple[float | None, ...]]:
    return {k: (r.value, r.numerator, r.denominator) for k, r in results.items()}


@given(kept=_facts, dropped=_facts, params=st.sampled_from([KpiParams(), KpiParams(30, 0)]))
def test_given_facts_added_and_taken_away_one_by_one_then_running_totals_equal_a_recount(
    kept: list[CallFact], dropped: list[CallFact], params: KpiParams
) -> None:
    totals = totals_of([], params)
    for fact in [*dropped, *kept]:
        totals = add_fact(totals, fact)
    for index, fact in enumerate(dropped):
        left = remove_fact(totals, fact)
        # None: the only fact with the longest wait left, so the rest are counted again
        totals = left if left is not None else totals_of([*kept, *dropped[index + 1 :]], params)

    running = _figures(results_of(totals))
    recount = _figures(compute_all(kept, params))

    assert running.keys() == recount.keys()
    for key, figures in running.items():
        assert figures == pytest.approx(recount[key]), key  # sums added in another order
