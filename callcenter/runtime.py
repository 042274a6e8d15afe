"""How long-running processes (API, PBX adapter) run their event loop."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def tune_gc() -> None:
    """A server allocates many short-lived objects per event and keeps large long-lived
    state (live boards, stream histories, translator state): collect the young generation
    less often, and keep what the imports made out of every full collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run_service(main: Coroutine[Any, Any, T]) -> T:
    """Run a service's main coroutine on uvloop where it is installed (it comes with
    uvicorn[standard]; its transports cost a fraction of asyncio's per socket write),
    else on the standard loop."""
    tune_gc()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(main)
    return uvloop.run(main)
