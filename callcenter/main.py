"""The app factory: routers, the UI's static files, and the process's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from callcenter.config import Settings, get_settings
from callcenter.context import AppContext, build_context

UI_DIR = Path(__file__).resolve().parent.parent / "ui"


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    """The API and UI for `settings`; tests pass a ready `ctx` to share it."""
    settings = settings or (ctx.settings if ctx else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_ctx = ctx is None
        app.state.ctx = ctx or build_context(settings)
        try:
            yield
        finally:
            if own_ctx:
                await app.state.ctx.close()

    app = FastAPI(title="callcenter", version="0.1.0", lifespan=lifespan)
    if ctx is not None:
        app.state.ctx = ctx
    _include_routers(app)
    return app


def _include_routers(app: FastAPI) -> None:
    from callcenter.auth.api import router as auth_router

    app.include_router(auth_router)
