"""How changed queue views are sent: with the batch that changed them, at most once per
interval per queue, the last state always sent."""

from __future__ import annotations

import pytest

from callcenter.queues.board import Coalescer, Key

A: Key = ("lab", "support")
B: Key = ("lab", "sales")


async def test_given_a_batch_then_every_queue_it_changed_is_sent_at_once_together() -> None:
    sent: list[list[Key]] = []

    async def send(keys: list[Key]) -> None:
        sent.append(keys)

    publisher = Coalescer(60.0, send)

    await publisher.send_due([A, B])

    assert sent == [[A, B]]
    await publisher.close()


async def test_given_changes_within_the_interval_then_one_later_send_carries_them() -> None:
    sent: list[list[Key]] = []

    async def send(keys: list[Key]) -> None:
        sent.append(keys)

    publisher = Coalescer(0.05, send)
    await publisher.send_due([A])

    await publisher.send_due([A, B])  # B was never sent: at once; A waits for the interval
    await publisher.send_due([A])
    assert sent == [[A], [B]]
    await publisher.flush()

    assert sent == [[A], [B], [A]]


async def test_given_a_send_that_fails_then_it_is_logged_and_the_next_batch_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[list[Key]] = []

    async def send(keys: list[Key]) -> None:
        if not sent:
            sent.append([])
            raise RuntimeError("streams are down")
        sent.append(keys)

    publisher = Coalescer(0.0, send)

    await publisher.send_due([A])  # not raised into the PBX event pipeline
    await publisher.send_due([A, B])

    assert sent == [[], [A, B]]
    assert "could not be sent" in caplog.text
