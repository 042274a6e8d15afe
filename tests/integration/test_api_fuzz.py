"""Bad input at every door: schemathesis walks every operation of the OpenAPI spec.

The app runs in-process on its own migrated SQLite copy. Each generated request is sent
twice: as an admin with an API token (so protected routes are reached) and anonymously.
Neither may answer 5xx, and every documented response must match its declared schema.
Examples per operation are bounded (`FUZZ_EXAMPLES`) so the whole walk stays around a minute.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import update

from callcenter.auth.models import ApiToken, Role
from callcenter.config import Settings
from callcenter.context import AppContext
from callcenter.control.pbx import ControlResult, ControlStatus, MemberStates, PbxControl
from callcenter.db import make_engine, make_sessionmaker
from callcenter.main import create_app
from tests.factories import api_token_for, bearer, make_user

FUZZ_EXAMPLES = int(os.environ.get("CALLCENTER_FUZZ_EXAMPLES", "12"))
TOKEN_ID = 1_900_000_001
"""Far from the small ids the fuzzer likes, so `DELETE /api/tokens/{id}` never revokes it."""
BASE_URL = f"http://{asgi.HOST}"
CHECKS = [not_a_server_error, response_schema_conformance]


async def _seed_admin_token(url: str) -> str:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            admin = await make_user(session, role=Role.ADMIN, login="fuzz-admin")
            await make_user(session, role=Role.OPERATOR, login="fuzz-operator", extensions=["101"])
            token = await api_token_for(session, admin.id, "fuzz")
            await session.commit()
            await session.execute(update(ApiToken).values(id=TOKEN_ID))
            await session.commit()
    finally:
        await engine.dispose()
    return token


class _StandInPbx:
    """A PBX that does whatever it is asked, so call-control routes run past "no PBX here"."""

    async def pause(self, interface: str, queue: str | None, paused: bool, reason: str) -> Any:
        return ControlResult(ControlStatus.OK)

    async def add_member(self, *args: Any) -> Any:
        return ControlResult(ControlStatus.OK)

    async def remove_member(self, queue: str, interface: str) -> Any:
        return ControlResult(ControlStatus.OK)

    async def spy(self, *args: Any, request_id: str) -> Any:
        return ControlResult(ControlStatus.OK)

    async def originate_call(self, *args: Any, request_id: str, variables: Any) -> Any:
        return ControlResult(ControlStatus.OK)

    async def member_states(self, interface: str) -> Any:
        return MemberStates(ControlStatus.OK)


async def _install_stand_in_pbx(ctx: AppContext) -> Callable[[], Awaitable[None]]:
    ctx.pbx_control = cast(PbxControl, _StandInPbx())

    async def stop() -> None:
        ctx.pbx_control = None

    return stop


@pytest.fixture(scope="module")
def fuzz_target(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "fuzz.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    token = asyncio.run(_seed_admin_token(url))
    settings = Settings(
        database_url=url,
        redis_url="",
        data_dir=str(folder / "data"),
        recordings_dir=str(folder / "recordings"),
        reminders_interval_s=0,
        webhook_pbxs=["cloud"],
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, background=[_install_stand_in_pbx])
    with asgi.get_client(app) as http:
        yield http, bearer(token)
    asgi.shutdown_lifespans()  # closes the app's context (engine, job queue) now, not at exit


schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())  # type: ignore[call-arg]
"""The spec of the app as configured by default; requests go to `fuzz_target`'s app."""


@schema.parametrize()
@hypothesis_settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_given_any_request_when_sent_as_admin_or_anonymous_then_no_5xx_and_schema_holds(
    case: Any, fuzz_target: tuple[Any, dict[str, str]]
) -> None:
    http, admin_headers = fuzz_target
    for headers in (admin_headers, {}):
        response = case.call(base_url=BASE_URL, session=http, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
