"""FastAPI dependencies shared by every router: the app context and a database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.context import AppContext


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_db(ctx: Annotated[AppContext, Depends(get_ctx)]) -> AsyncIterator[AsyncSession]:
    """A session per request; the endpoint commits what it changed."""
    async with ctx.sessionmaker() as session:
        yield session


Ctx = Annotated[AppContext, Depends(get_ctx)]
Db = Annotated[AsyncSession, Depends(get_db)]
