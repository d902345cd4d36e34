"""Slack sends every event up to four times (three retries): each one is acted on once.

`tests/bot/test_app_delivery.py` covers one retry after a slow ack and a redelivery after a
restart; here every event of a whole handoff is retried three times, and copies of one event
also arrive all at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.localslack.store import Message
from tests.bot.conftest import Harness
from tests.faults.test_slack_faults import REFUND, card_for, key_of

RETRIED = [{"ack_timeout": 0.3, "retry_backoff": (0.0,)}]


def retry_num(req: AsyncBoltRequest) -> int:
    """Which delivery of an event this request is (0 for the first)."""
    return int((req.headers.get("x-slack-retry-num") or ["0"])[0])


def ack_only_the_last_try(harness: Harness) -> None:
    """Handle every event, but let Slack see the first three tries fail (two time out, one 500)."""

    async def fail(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> Any:
        response = await next()
        if req.body.get("type") != "event_callback" or retry_num(req) >= 3:
            return response
        if retry_num(req) < 2:
            await asyncio.sleep(0.6)  # past the 0.3 s Slack waits for
            return response
        return BoltResponse(status=500, body="")

    harness.app.middleware(fail)


def baton_messages(harness: Harness) -> list[Message]:
    """Every message Baton posted, in any channel or thread."""
    found = []
    for channel in ("C_SUPPORT", "C_AGENTS", "C_LOBBY"):
        for top in harness.slack.messages(channel):
            found += [m for m in harness.slack.messages(channel, top["ts"]) if m.get("bot_id") == "B_BATON"]
    return found


@pytest.mark.parametrize("slack_options", RETRIED)
async def test_every_event_retried_three_times_is_acted_on_once(harness: Harness) -> None:
    ack_only_the_last_try(harness)
    slack = harness.slack
    asked = await slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    mentioned = await slack.post("U_EMPLOYEE", "C_LOBBY", "<@U_BATON> how do I export my data to CSV?")
    handed = await slack.post("U_CUST2", "C_SUPPORT", REFUND)
    card = await card_for(harness, handed)
    await slack.post("U_AGENT1", "C_AGENTS", "Hi Dana, looking at it", card["ts"])
    await slack.post("U_CUST2", "C_SUPPORT", "thanks!", handed)
    await harness.settle()
    await slack.react("U_AGENT1", "C_AGENTS", card["ts"], "white_check_mark")
    await harness.settle()

    tries = Counter(d.event_id for d in slack.deliveries())
    assert set(tries.values()) == {4}  # Slack did retry every event three times
    assert len(tries) == len(slack.events()) >= 8
    keys = Counter(key_of(m) for m in baton_messages(harness))
    assert [key for key, count in keys.items() if count != 1] == []
    kinds = Counter((key or "").split(":", 1)[0] for key in keys)
    assert kinds == {"reply": 2, "joining": 1, "card": 1, "relay": 2, "closing": 1}
    assert len(harness.replies("C_SUPPORT", asked)) == 1 and len(harness.replies("C_LOBBY", mentioned)) == 1


async def withheld(harness: Harness, user: str, channel: str, text: str, thread_ts: str | None = None) -> Any:
    """The envelope Slack would send for a message, without sending it."""
    harness.slack.app_url, url = None, harness.slack.app_url
    try:
        ts = await harness.slack.post(user, channel, text, thread_ts)
        await harness.slack.drain(quiet=0.01)
    finally:
        harness.slack.app_url = url
    (envelope,) = [e for e in harness.slack.events("message") if e["event"]["ts"] == ts]
    return envelope


async def at_once(harness: Harness, envelope: dict[str, Any]) -> list[int]:
    """The first delivery and three retries of one event, all arriving together."""
    copies = [harness.send_raw(envelope)] + [
        harness.send_raw(
            envelope, headers={"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"}
        )
        for n in (1, 2, 3)
    ]
    statuses = [status for status, _ in await asyncio.gather(*copies)]
    await harness.settle()
    return statuses


async def test_four_copies_of_an_event_arriving_together_are_acted_on_once(harness: Harness) -> None:
    question = await withheld(harness, "U_CUST1", "C_SUPPORT", "how do I reset my password?")
    assert await at_once(harness, question) == [200] * 4
    assert len(harness.replies("C_SUPPORT", question["event"]["ts"])) == 1
    handed = await withheld(harness, "U_CUST2", "C_SUPPORT", REFUND)
    assert await at_once(harness, handed) == [200] * 4
    card = await card_for(harness, handed["event"]["ts"])
    reply = await withheld(harness, "U_AGENT1", "C_AGENTS", "on it", card["ts"])
    assert await at_once(harness, reply) == [200] * 4
    keys = Counter(key_of(m) for m in baton_messages(harness))
    assert [key for key, count in keys.items() if count != 1] == []
    kinds = Counter((key or "").split(":", 1)[0] for key in keys)
    assert kinds == {"reply": 1, "joining": 1, "card": 1, "relay": 1}
