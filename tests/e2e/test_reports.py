"""The reports page and the operator's plan widget in a real browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from callcenter.calls.models import Call
from callcenter.calls.state import CallStatus
from callcenter.context import AppContext
from callcenter.events import Direction, EndReason
from callcenter.reports.models import PlanMetric, PlanTarget
from callcenter.reports.periods import PlanPeriod
from tests.e2e.conftest import LiveServer, login_via_api, open_operator_page
from tests.factories import DEFAULT_PASSWORD
from tests.report_fixture import DAY, load_day

pytestmark = pytest.mark.browser


async def _load(ctx: AppContext) -> tuple[int, int]:
    async with ctx.sessionmaker() as session:
        anna, boris = await load_day(session)
        return anna.id, boris.id


def test_given_a_day_of_calls_when_a_supervisor_opens_reports_then_figures_charts_and_calls_show(
    live_server: LiveServer, page: Page
) -> None:
    live_server.run(_load(live_server.ctx))
    login_via_api(page, "sup", DEFAULT_PASSWORD)

    page.goto(f"/reports?from={DAY}&to={DAY}")

    sales = page.locator("[data-testid=queue-table] [data-testid=row-sales]")
    expect(sales.locator("[data-testid=figure-offered]")).to_have_text("7")
    expect(sales.locator("[data-testid=figure-service_level]")).to_have_text("40 %")
    expect(page.locator("[data-testid=chart-sl] [data-testid=chart-bar]")).to_have_count(3)
    expect(page.locator("[data-testid=chart-volume] [data-testid=chart-bar]")).to_have_count(6)

    sales.locator("[data-testid=figure-answered]").click()
    expect(page.locator("[data-testid=drill-count]")).to_have_attribute("data-total", "4")
    expect(page.locator("[data-testid=drill-row]")).to_have_count(4)

    page.locator("[data-testid=tab-agents]").click()
    anna = page.locator("[data-testid=agent-table] tbody tr", has_text="Anna")
    expect(anna.locator("[data-testid=figure-missed]")).to_have_text("1")
    anna.locator("[data-testid=figure-missed]").click()
    expect(page.locator("[data-testid=drill-row]")).to_have_count(1)
    expect(page.locator("[data-testid=drill-row]")).to_contain_text("P4")

    page.locator("[data-testid=lang-en]").click()
    expect(page.locator("[data-testid=tab-agents]")).to_have_text("Agents")


async def _call_and_plan(ctx: AppContext, anna_id: int) -> int:
    now = datetime.now(UTC)
    async with ctx.sessionmaker() as session:
        call = Call(
            pbx="lab",
            call_key="today-1",
            direction=Direction.INBOUND,
            status=CallStatus.ENDED,
            caller_num="+79161112233",
            caller_name="Today",
            agent="Local/101@agents",
            agent_user_id=anna_id,
            ringing_agents=[],
            started_at=now - timedelta(minutes=3),
            answered_at=now - timedelta(minutes=3),
            ended_at=now - timedelta(minutes=1),
            talk_seconds=120.0,
            end_reason=EndReason.COMPLETED,
        )
        session.add(call)
        session.add(
            PlanTarget(user_id=anna_id, metric=PlanMetric.DEALS, period=PlanPeriod.DAY, target=3)
        )
        await session.commit()
        return call.id


def test_given_a_plan_when_the_operator_sets_a_sale_then_the_widget_counts_it(
    live_server: LiveServer, page: Page
) -> None:
    anna_id, _ = live_server.run(_load(live_server.ctx))
    call_id = live_server.run(_call_and_plan(live_server.ctx, anna_id))
    me = login_via_api(page, "anna", DEFAULT_PASSWORD)
    open_operator_page(page)
    widget = page.locator("[data-testid=plan-widget] [data-testid=plan-item]")
    expect(widget).to_have_attribute("data-done", "0")
    expect(widget).to_contain_text("0/3")

    response = page.request.patch(
        f"/api/calls/{call_id}",
        data={"outcome": "sale"},
        headers={"X-CSRF-Token": me["csrf_token"]},
    )

    assert response.ok, response.text()
    expect(widget).to_have_attribute("data-done", "1")
    expect(widget).to_contain_text("1/3")
