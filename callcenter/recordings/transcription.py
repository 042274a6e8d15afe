"""The optional speech-to-text seam: a locally installed plugin, never a download.

None ships with callcenter. A plugin is any object with `transcribe(path) -> Transcript`,
made by a factory that takes no arguments. It is named by the `transcriber` setting, either
as an entry point of the `callcenter.transcribers` group that an installed package declares:

    [project.entry-points."callcenter.transcribers"]
    whisper-local = "my_stt.plugin:make_transcriber"

or directly as `package.module:factory`. The factory must load its model from local files
(it is the plugin's job to refuse to fetch one); it runs once per worker process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

ENTRY_POINT_GROUP = "callcenter.transcribers"


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None = None


@runtime_checkable
class Transcriber(Protocol):
    def transcribe(self, path: Path) -> Transcript:
        """The words spoken in the WAV file at `path` (called in a worker thread)."""
        ...


class TranscriberUnavailable(Exception):
    """The `transcriber` setting names nothing usable."""


@lru_cache(maxsize=4)
def load_transcriber(spec: str) -> Transcriber | None:
    """The plugin `spec` names (None when it is empty); made once per process and spec."""
    spec = spec.strip()
    if not spec:
        return None
    try:
        factory = _factory(spec)
        made = factory()
    except TranscriberUnavailable:
        raise
    except Exception as exc:  # a plugin's import or start-up failure, whatever it is
        raise TranscriberUnavailable(f"transcriber {spec!r} failed to start: {exc}") from exc
    if not isinstance(made, Transcriber):
        raise TranscriberUnavailable(f"transcriber {spec!r} has no transcribe(path) method")
    return made


def _factory(spec: str) -> Callable[[], object]:
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        found: object = getattr(importlib.import_module(module_name), attribute)
    else:
        matches = entry_points(group=ENTRY_POINT_GROUP, name=spec)
        if not matches:
            raise TranscriberUnavailable(
                f"no installed package declares the {ENTRY_POINT_GROUP!r} entry point {spec!r}"
            )
        found = next(iter(matches)).load()
    if not callable(found):
        raise TranscriberUnavailable(f"transcriber {spec!r} does not name a factory")
    return found
