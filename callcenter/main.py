"""The app factory: routers, the UI's static files, and the process's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.config import Settings, get_settings
from callcenter.context import AppContext, build_context


def _find_ui_dir() -> Path:
    """The `ui/` folder beside the package (a checkout) or in the working directory."""
    beside = Path(__file__).resolve().parent.parent / "ui"
    return beside if beside.is_dir() else Path.cwd() / "ui"


UI_DIR = _find_ui_dir()

BackgroundPart = Callable[[AppContext], Awaitable[Callable[[], Awaitable[None]]]]
"""Something the composition root runs beside the API (an adapter, a simulator): started
with the context, it returns the coroutine function that stops it."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds the security headers to every HTTP response (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/docs"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    settings: Settings | None = None,
    ctx: AppContext | None = None,
    background: list[BackgroundPart] | None = None,
) -> FastAPI:
    """The API and UI for `settings`; tests pass a ready `ctx` to share it."""
    settings = settings or (ctx.settings if ctx else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if ctx is None:
                app.state.ctx = build_context(settings)
                stack.push_async_callback(app.state.ctx.close)
            from callcenter.realtime.api import heartbeats_of

            stack.push_async_callback(heartbeats_of(app).close)
            for part in background or []:
                stack.push_async_callback(await part(app.state.ctx))
            if settings.reminders_interval_s > 0:
                stack.push_async_callback(await _start_reminders(app.state.ctx))
            yield

    app = FastAPI(title="callcenter", version="0.1.0", lifespan=lifespan)
    if ctx is not None:
        app.state.ctx = ctx

    from callcenter.realtime.api import EventsFirst

    app.add_middleware(SecurityHeaders)
    # Outermost: a websocket goes straight to its endpoint, so an idle socket keeps none of
    # the HTTP middleware and exception-handler frames alive for its whole life.
    app.add_middleware(EventsFirst)
    _include_routers(app)
    _mount_ui(app)
    _install_openapi(app)
    return app


def _include_routers(app: FastAPI) -> None:
    from callcenter.auth.api import router as auth_router
    from callcenter.calls.api import router as calls_router
    from callcenter.clients.api import install_error_handlers
    from callcenter.clients.api import router as clients_router
    from callcenter.control.api import router as control_router
    from callcenter.errors import install_database_error_handlers
    from callcenter.health import router as health_router
    from callcenter.queues.api import router as queues_router
    from callcenter.realtime.api import install_streams_error_handler
    from callcenter.realtime.api import router as realtime_router

    for router in (auth_router, clients_router, calls_router, realtime_router, health_router):
        app.include_router(router)
    app.include_router(control_router)
    app.include_router(queues_router)
    install_error_handlers(app)
    install_database_error_handlers(app)
    install_streams_error_handler(app)
    _include_crm_routers(app)
    _include_reports_router(app)
    _include_recordings_router(app)
    _include_jobs_router(app)
    _include_imports_routers(app)
    _include_webhooks_router(app)


def _include_imports_routers(app: FastAPI) -> None:
    from callcenter.clients.merge_api import router as merge_router
    from callcenter.imports.api import install_error_handlers, router

    app.include_router(router)
    app.include_router(merge_router)
    install_error_handlers(app)


def _include_webhooks_router(app: FastAPI) -> None:
    from callcenter.webhooks.api import router

    app.include_router(router)


def _install_openapi(app: FastAPI) -> None:
    from callcenter.openapi import install_openapi

    install_openapi(app)


def _include_jobs_router(app: FastAPI) -> None:
    from callcenter.jobs.api import router

    app.include_router(router)


def _include_reports_router(app: FastAPI) -> None:
    from callcenter.reports.api import install_error_handlers, router

    app.include_router(router)
    install_error_handlers(app)


def _include_recordings_router(app: FastAPI) -> None:
    from callcenter.recordings.api import router

    app.include_router(router)


def _mount_ui(app: FastAPI) -> None:
    app.mount("/ui", StaticFiles(directory=UI_DIR), name="ui")

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/operator")

    @app.get("/login", include_in_schema=False)
    async def login_page() -> FileResponse:
        return FileResponse(UI_DIR / "login" / "index.html")

    @app.get("/operator", include_in_schema=False)
    async def operator_page() -> FileResponse:
        return FileResponse(UI_DIR / "operator" / "index.html")

    @app.get("/reports", include_in_schema=False)
    async def reports_page() -> FileResponse:
        return FileResponse(UI_DIR / "reports" / "index.html")

    @app.get("/supervisor", include_in_schema=False)
    async def supervisor_page() -> FileResponse:
        return FileResponse(UI_DIR / "supervisor" / "index.html")

    @app.get("/imports", include_in_schema=False)
    async def imports_page() -> FileResponse:
        return FileResponse(UI_DIR / "imports" / "index.html")


def _include_crm_routers(app: FastAPI) -> None:
    """The client card, tags, segments, tasks, meetings and the audit log reader (issue 6)."""
    from callcenter.crm.api import router as crm_router
    from callcenter.crm.audit_api import router as audit_router
    from callcenter.crm.deps import install_error_handlers as install_crm_error_handlers
    from callcenter.crm.segments_api import router as segments_router
    from callcenter.tasks.api import install_error_handlers as install_task_error_handlers
    from callcenter.tasks.api import router as tasks_router

    for router in (crm_router, segments_router, tasks_router, audit_router):
        app.include_router(router)
    install_crm_error_handlers(app)
    install_task_error_handlers(app)

    @app.get("/admin/audit", include_in_schema=False)
    async def audit_page() -> FileResponse:
        return FileResponse(UI_DIR / "admin" / "audit.html")


async def _start_reminders(ctx: AppContext) -> Callable[[], Awaitable[None]]:
    """Due task and meeting reminders from this process (when no worker schedules them)."""
    from callcenter.tasks.reminders import start_reminders

    return await start_reminders(ctx.sessionmaker, ctx.streams, ctx.settings.reminders_interval_s)
