"""Turns that fail, or that a killed process left half done, are taken up again: answered once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff import handoffs
from tests.bot.conftest import Harness, texts
from tests.bot.test_app_handoff import REFUND, card_of


def fail_once(target: Any, name: str, error: Exception) -> list[int]:
    """Make `target.name` raise `error` on its first call only; returns the call counter."""
    original, calls = getattr(target, name), [0]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise error
        return await original(*args, **kwargs)

    setattr(target, name, flaky)
    return calls


async def test_a_turn_that_failed_is_answered_once_on_the_next_try(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    calls = fail_once(harness.app.baton.services.brain, "check", RuntimeError("model fell over"))
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    await harness.settle()
    assert harness.replies("C_SUPPORT", ts) == [] and "failed" in caplog.text
    assert await harness.app.listeners.resume() == 1
    await harness.settle()
    (reply,) = harness.replies("C_SUPPORT", ts)
    assert "password" in reply["text"].lower() and calls[0] == 2
    assert await harness.app.listeners.resume() == 0  # done: nothing left to take up


async def test_a_turn_is_tried_at_most_three_times(harness: Harness) -> None:
    brain = harness.app.baton.services.brain

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("always")

    brain.check = broken  # type: ignore[method-assign]
    await harness.slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    await harness.settle()
    tries = []
    for _ in range(4):
        tries.append(await harness.app.listeners.resume())
        await harness.settle()
    assert tries == [1, 1, 0, 0]


async def test_a_turn_cut_short_by_a_crash_is_answered_after_the_restart(harness: Harness) -> None:
    stuck = asyncio.Event()

    async def hang(*args: Any, **kwargs: Any) -> Any:
        await stuck.wait()  # the process dies here, mid-turn, after Slack got its ack

    harness.app.baton.services.brain.check = hang  # type: ignore[method-assign]
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    await harness.slack.drain(quiet=0.05)
    await harness.app.baton.tasks.cancel()  # as good as SIGKILL for the turn: nothing after this ran
    assert harness.replies("C_SUPPORT", ts) == []
    await harness.restart()  # the new process takes the turn up when it starts
    await harness.slack.wait_for(lambda: harness.replies("C_SUPPORT", ts))
    await harness.settle()
    (reply,) = harness.replies("C_SUPPORT", ts)
    assert "password" in reply["text"].lower()
    sent = [e for e in harness.slack.events("message") if e["event"].get("user") == "U_CUST1"]
    assert len(sent) == 1 and len(harness.slack.deliveries(sent[0]["event_id"])) == 1  # no retry helped


async def test_a_handoff_is_stored_with_its_messages_or_not_at_all(harness: Harness) -> None:
    calls = fail_once(harness.app.listeners.bridge, "messages", RuntimeError("crashed while rendering"))
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", REFUND)
    await harness.settle()
    assert calls[0] == 1 and handoffs.open_handoffs(harness.services.db) == []  # not half handed off
    await harness.app.listeners.resume()
    await harness.settle()
    assert texts(harness.replies("C_SUPPORT", ts)) == [harness.settings.handoff_text]
    (conversation,) = handoffs.open_handoffs(harness.services.db)
    assert conversation.card is not None and conversation.card.ts == card_of(harness)["ts"]
