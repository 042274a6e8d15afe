"""The recording on an ended call's card: the analysis drawn per side, and a listen audited."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from callcenter.auth.models import AuditEntry
from callcenter.config import Settings
from callcenter.events import CallAnswered, CallEnded, EndReason, Party, RecordingStarted
from callcenter.recordings.service import analyse_call_recording
from tests.e2e.conftest import ANNA, LiveServer, login_via_api, open_operator_page, ring

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recordings"
STEREO = "1795906382.19.wav"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(FIXTURES / STEREO, folder / STEREO)
    return settings.model_copy(update={"recordings_dir": folder})


def _recorded_call(server: LiveServer, key: str) -> None:
    at = datetime.now(UTC)
    ring(server, key, "89161112233", queue="sales", at=at)
    server.ingest(
        CallAnswered(call_key=key, event_id=f"{key}:answer", at=at, agent=ANNA, queue="sales"),
        RecordingStarted(call_key=key, event_id=f"{key}:rec", at=at, file=STEREO),
        CallEnded(
            call_key=key,
            event_id=f"{key}:end",
            at=datetime.now(UTC),
            reason=EndReason.COMPLETED,
            ended_by=Party.CALLER,
        ),
    )


def _analyse_all(server: LiveServer) -> None:
    from callcenter.calls.models import Call

    async def run() -> None:
        async with server.ctx.sessionmaker() as session:
            for call_id in (await session.scalars(select(Call.id))).all():
                await analyse_call_recording(session, server.ctx.settings, call_id)
            await session.commit()

    server.run(run())


def _listens(server: LiveServer) -> list[AuditEntry]:
    async def load() -> list[AuditEntry]:
        async with server.ctx.sessionmaker() as session:
            query = select(AuditEntry).where(AuditEntry.action == "recording.listened")
            return list((await session.scalars(query)).all())

    return server.run(load())


def test_given_an_ended_recorded_call_then_the_card_shows_its_analysis_and_a_listen_is_audited(
    live_server: LiveServer, page: Page
) -> None:
    anna = live_server.create_user("anna", extensions=["101"])
    login_via_api(page, "anna")
    open_operator_page(page)

    _recorded_call(live_server, "rec-1")
    section = page.get_by_test_id("pop-recording")
    expect(section).to_be_visible()
    _analyse_all(live_server)  # the job's work, whether or not a worker already did it

    expect(section.get_by_test_id("rec-side-caller")).to_be_visible(timeout=15_000)
    expect(section.get_by_test_id("rec-side-agent")).to_be_visible()
    ratios = section.get_by_test_id("rec-talk-ratio").all_inner_texts()
    assert len(ratios) == 2
    assert all(text.strip().endswith("%") for text in ratios)
    assert section.locator(".rec-lane__speech").count() >= 2
    expect(section.get_by_test_id("rec-duration")).to_contain_text("10")
    expect(section.get_by_test_id("rec-overlap")).to_be_visible()
    assert _listens(live_server) == []  # preload="none": nothing fetched before play

    section.get_by_test_id("rec-player").evaluate("audio => { audio.muted = true; audio.play(); }")

    deadline = datetime.now(UTC).timestamp() + 10
    while not _listens(live_server) and datetime.now(UTC).timestamp() < deadline:
        page.wait_for_timeout(100)
    listens = _listens(live_server)
    assert listens
    assert {(e.user_id, e.entity) for e in listens} == {(anna.id, "call")}
