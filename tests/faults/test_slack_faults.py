"""Slack failing at random: 429s with Retry-After, 500s and timeouts, to a seeded schedule.

Whatever Slack answers, every message Baton owes (answers, handoff notices, cards, relayed
copies both ways) arrives exactly once, and in the order of what caused it within each thread.
Each message carries its outbox key in Slack message metadata, which is how the tests tell
what a message is and what caused it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

import pytest

from bot.localslack import FaultKind
from bot.localslack.store import Message
from handoff.outbox import Outbox, State
from tests.bot.conftest import Harness

FAQ = (
    "how do I reset my password?",
    "how do I export my data to CSV?",
    "is there a free trial?",
    "how do I set up webhooks?",
    "what are your support hours?",
    "how do I create an API key?",
)
REFUND = "I want a refund for last month's charge"
DELIVERY = ("chat.postMessage", "conversations.replies", "conversations.history")
CHAOS = (FaultKind.RATELIMIT, FaultKind.ERROR, FaultKind.TIMEOUT)


def key_of(message: Message) -> str | None:
    """The outbox key Baton put in a message's metadata (None for people's messages)."""
    meta = message.get("metadata") or {}
    return (meta.get("event_payload") or {}).get("key")


def everything(harness: Harness) -> list[Message]:
    """Every message in every channel Baton posts to, thread replies included."""
    found: list[Message] = []
    for channel in ("C_SUPPORT", "C_AGENTS", "C_INTERNAL"):
        for top in harness.slack.messages(channel):
            found += harness.slack.messages(channel, top["ts"]) if top.get("reply_count") else [top]
    return found


def sources(messages: Iterable[Message], prefix: str) -> list[Decimal]:
    """The ts of what caused each of Baton's messages with this key prefix, in thread order."""
    keys = [key_of(m) or "" for m in messages]
    return [Decimal(key.rsplit(":", 1)[1]) for key in keys if key.startswith(prefix)]


async def settle_all(harness: Harness) -> None:
    """Wait until the outbox is empty, including messages left to the sweep for later."""
    outbox = harness.app.baton.outbox
    async with asyncio.timeout(60):
        await harness.settle()
        while outbox.pending():
            await harness.slack.drain(quiet=0.1)  # a message waits for its next try
            await harness.settle()


async def card_for(harness: Harness, ts: str) -> Message:
    """The card of the handoff of the thread `ts`, once it is in the agent channel."""

    def posted() -> Message | None:
        cards = [m for m in harness.slack.messages("C_AGENTS") if (key_of(m) or "").startswith("card:")]
        return next((m for m in cards if f":{ts}:" in (key_of(m) or "")), None)

    return await harness.slack.wait_for(posted, timeout=30)


@pytest.mark.parametrize("seed", [11, 37])
async def test_under_random_faults_every_message_arrives_once_and_in_order(
    harness: Harness, seed: int
) -> None:
    slack = harness.slack
    slack.faults.random(rate=0.3, seed=seed, kinds=CHAOS, methods=DELIVERY, retry_after=1, delay=0.05)
    # Three customers ask, each three questions in one thread, without waiting for answers.
    asked: dict[tuple[str, str], list[str]] = {}
    for n, (user, channel) in enumerate(
        [("U_CUST1", "C_SUPPORT"), ("U_CUST2", "C_SUPPORT"), ("U_EMPLOYEE", "C_INTERNAL")]
    ):
        root = await slack.post(user, channel, FAQ[n])
        follow = [await slack.post(user, channel, FAQ[(n + k) % len(FAQ)], root) for k in (1, 2)]
        asked[channel, root] = [root, *follow]
    # Two more are handed to a person; then both sides write, interleaved, without waiting.
    handed = [await slack.post(user, "C_SUPPORT", REFUND) for user in ("U_CUST1", "U_CUST2")]
    cards = [await card_for(harness, ts) for ts in handed]
    said: dict[str, list[str]] = {ts: [] for ts in handed}
    wrote: dict[str, list[str]] = {card["ts"]: [] for card in cards}
    for k in range(3):
        for user, ts, card in zip(("U_CUST1", "U_CUST2"), handed, cards, strict=True):
            said[ts].append(await slack.post(user, "C_SUPPORT", f"more details, part {k}", ts))
            wrote[card["ts"]].append(await slack.post("U_AGENT1", "C_AGENTS", f"step {k}", card["ts"]))
    await settle_all(harness)

    assert slack.faults.injected, "the schedule injected no fault"
    keys = Counter(key_of(m) for m in everything(harness) if key_of(m))
    assert [key for key, count in keys.items() if count > 1] == []  # nothing twice
    for (channel, root), turns in asked.items():  # one answer per question, in order
        thread = slack.messages(channel, root)
        assert sources(thread, f"reply:{channel}:") == [Decimal(ts) for ts in turns]
    for ts, card in zip(handed, cards, strict=True):
        thread = slack.messages("C_SUPPORT", ts)
        assert sources(thread, "joining:") == [Decimal(ts)]  # told once
        assert sources(thread, "relay:C_AGENTS:") == [Decimal(t) for t in wrote[card["ts"]]]
        copies = slack.messages("C_AGENTS", card["ts"])
        assert sources(copies, "relay:C_SUPPORT:") == [Decimal(t) for t in said[ts]]
    counts = Outbox(harness.services.db).counts()
    assert (counts[State.PENDING], counts[State.FAILED]) == (0, 0)


async def test_what_a_customer_writes_while_the_card_cannot_be_posted_still_reaches_the_agents(
    harness: Harness,
) -> None:
    slack = harness.slack
    slack.faults.add("chat.postMessage", "slow", times=1, delay=0.0)  # the notice goes through
    slack.faults.add("chat.postMessage", "error", times=3)  # every inline try of the card fails
    ts = await slack.post("U_CUST1", "C_SUPPORT", REFUND)
    await slack.post("U_CUST1", "C_SUPPORT", "order number is 4711", ts)  # while the card waits
    card = await card_for(harness, ts)
    await settle_all(harness)
    seen = [card, *slack.messages("C_AGENTS", card["ts"])[1:]]  # on the card, or relayed to its thread
    assert sum("order number is 4711" in json.dumps(m, ensure_ascii=False) for m in seen) == 1


async def test_an_agent_reply_to_a_card_slack_shows_before_it_answers_reaches_the_customer(
    harness: Harness,
) -> None:
    slack = harness.slack
    slack.faults.add("chat.postMessage", "slow", times=1, delay=0.0)  # the notice goes through
    slack.faults.add("chat.postMessage", "late", times=1, delay=2.0)  # the card: posted, answered late
    ts = await slack.post("U_CUST1", "C_SUPPORT", REFUND)
    card = await card_for(harness, ts)  # in the channel while Baton still waits for chat.postMessage
    reply = await slack.post("U_AGENT1", "C_AGENTS", "I've refunded it, it shows in 3-5 days", card["ts"])
    await settle_all(harness)
    thread = slack.messages("C_SUPPORT", ts)
    assert sources(thread, "relay:C_AGENTS:") == [Decimal(reply)]
    assert sum("I've refunded it" in (m.get("text") or "") for m in thread) == 1
