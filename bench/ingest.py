"""AMI events/s through frame parsing + translate + apply + commit, on the embedded default.

Replays a recorded Asterisk stream several times into a fresh SQLite database (each pass
under another PBX name, so nothing is deduplicated away) and reports AMI frames/s and call
events/s persisted. Run: `python bench/ingest.py [--passes N] [--database-url URL]`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import ROOT, write_result

from callcenter.config import Settings
from callcenter.context import build_context
from callcenter.migrate import upgrade
from pbx_adapter.replay import frames_of, replay_frames
from pbx_adapter.runner import EventPipeline, EventSink


async def stream_live(frames: list[dict[str, str]], sink: EventSink, pbx: str) -> int:
    """As the adapter sees a busy PBX: frames one by one, the sink taking what piled up."""
    pipeline = EventPipeline(pbx, sink)
    pipeline.start()
    for frame in frames:
        pipeline.feed(frame)
        await asyncio.sleep(0)
    await pipeline.stop()
    return pipeline.events


async def run(
    passes: int, database_url: str | None, stream: Path, live: bool
) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/ingest.db"
        await upgrade(url)
        ctx = build_context(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
        frames, _ = frames_of(stream.read_bytes())
        sink = ctx.call_event_sink()
        started = time.perf_counter()
        events = 0
        for n in range(passes):
            if live:
                events += await stream_live(frames, sink, pbx=f"bench-{n}")
            else:
                events += (await replay_frames(frames, sink, pbx=f"bench-{n}")).events
        elapsed = time.perf_counter() - started
        await ctx.close()
    total_frames = len(frames) * passes
    return {
        "stream": stream.name,
        "mode": "live (frame by frame)" if live else "back-fill (whole stream)",
        "database": "sqlite" if database_url is None else database_url.split(":")[0],
        "passes": passes,
        "ami_frames": total_frames,
        "call_events": events,
        "seconds": round(elapsed, 3),
        "ami_events_per_s": round(total_frames / elapsed, 1),
        "call_events_per_s": round(events / elapsed, 1),
        "db_batches": sink.batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--stream", type=Path, default=ROOT / "tests" / "fixtures" / "ami" / "mixed_60calls.ami"
    )
    args = parser.parse_args()
    results = {}
    for live in (True, False):
        figures = asyncio.run(run(args.passes, args.database_url, args.stream, live))
        results["live" if live else "backfill"] = figures
        for key, value in figures.items():
            print(f"{key:>18}: {value}")
        print()
    print(f"written to {write_result('ingest', results)}")


if __name__ == "__main__":
    main()
