"""Only requests Slack signed, recently, reach Baton: events, slash commands and button presses.

The emulator makes each request for real (a customer's question, an admin's `/baton set`, an
agent's Claim); the test catches it on its way and replays it to Baton with a wrong, stale,
future, missing, malformed or mismatched signature. Every one gets 401 and changes nothing;
the same request signed properly does what it says, which shows the refused ones would have.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from bot.localslack.events import sign
from handoff import handoffs
from handoff.tuning import load_settings
from tests.bot.conftest import Harness
from tests.faults.test_slack_faults import REFUND, card_for

FIVE_MINUTES = 5 * 60


@dataclass(frozen=True)
class Caught:
    """A request the emulator meant for Baton."""

    body: bytes
    content_type: str


@contextlib.asynccontextmanager
async def catching(harness: Harness) -> AsyncIterator[list[Caught]]:
    """Point the emulator at a catcher that answers 200 and keeps each request instead of Baton."""
    caught: list[Caught] = []

    async def keep(request: web.Request) -> web.Response:
        caught.append(Caught(await request.read(), request.content_type))
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", keep)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack, url = harness.slack, harness.slack.app_url
    slack.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        yield caught
    finally:
        slack.app_url = url
        await runner.cleanup()


def headers(secret: str, body: bytes, content_type: str, age: float = 0.0) -> dict[str, str]:
    """Slack's signature headers for `body`, made `age` seconds ago."""
    stamp = str(int(time.time() - age))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body.decode()),
    }


def forgeries(secret: str, caught: Caught) -> dict[str, dict[str, str]]:
    """Every way a request can be badly signed, by name."""
    body, kind = caught.body, caught.content_type
    good = headers(secret, body, kind)
    return {
        "wrong secret": headers("not-the-signing-secret", body, kind),
        "stale (over 5 minutes)": headers(secret, body, kind, age=FIVE_MINUTES + 30),
        "from the future": headers(secret, body, kind, age=-(FIVE_MINUTES + 30)),
        "signed for another body": headers(secret, body + b"&extra=1", kind),
        "no signature": {k: v for k, v in good.items() if k != "X-Slack-Signature"},
        "no timestamp": {k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"},
        "malformed signature": {**good, "X-Slack-Signature": "v0=not-hex"},
        "old scheme": {**good, "X-Slack-Signature": good["X-Slack-Signature"].replace("v0=", "v1=")},
        "timestamp not a number": {**good, "X-Slack-Request-Timestamp": "yesterday"},
    }


async def replay(harness: Harness, caught: Caught, sent_headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(str(harness.slack.app_url), data=caught.body, headers=sent_headers) as resp,
    ):
        return resp.status


async def refused_then_accepted(
    harness: Harness, make: Callable[[], Awaitable[object]], changed: Callable[[], bool]
) -> None:
    """The request `make` causes, badly signed in every way (refused, no change), then well signed."""
    async with catching(harness) as caught:
        await make()
        await harness.slack.drain(quiet=0.01)
    request = caught[0]
    secret = harness.slack.signing_secret
    statuses = {name: await replay(harness, request, bad) for name, bad in forgeries(secret, request).items()}
    await harness.settle()
    assert statuses == dict.fromkeys(statuses, 401)
    assert not changed()
    recent = headers(secret, request.body, request.content_type, age=FIVE_MINUTES - 30)
    assert await replay(harness, request, recent) == 200  # signed properly, 4.5 minutes ago
    await harness.settle()
    assert changed()


async def test_a_badly_signed_event_is_refused(harness: Harness) -> None:
    slack = harness.slack
    question: list[str] = []

    async def ask() -> None:
        question.append(await slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?"))

    await refused_then_accepted(harness, ask, lambda: bool(harness.replies("C_SUPPORT", question[0])))
    assert harness.services.db.table("inbox_claims").count == 2  # the accepted one only: event, message


async def test_a_badly_signed_slash_command_is_refused(harness: Harness) -> None:
    db = harness.services.db

    async def command() -> None:
        await harness.slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", "set confidence 0.9")

    await refused_then_accepted(harness, command, lambda: load_settings(db).confidence == 0.9)


async def test_a_badly_signed_button_press_is_refused(harness: Harness) -> None:
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", REFUND)
    card = await card_for(harness, ts)
    await harness.settle()

    async def claim() -> None:
        await harness.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_claim")

    owner = lambda: handoffs.load(harness.services.db, "C_SUPPORT", ts).owner  # type: ignore[union-attr]  # noqa: E731
    await refused_then_accepted(harness, claim, lambda: owner() == "U_AGENT1")


@pytest.mark.parametrize("slack_options", [{"signing_secret": "an-old-secret", "retry_backoff": (0.0,)}])
async def test_events_signed_with_another_secret_are_refused_on_every_retry(harness: Harness) -> None:
    slack = harness.slack
    await harness.down()
    await harness.up(secret="the-current-secret")
    ts = await slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    await slack.drain()
    assert [d.status for d in slack.deliveries()] == [401] * 4  # the first try and Slack's 3 retries
    assert harness.replies("C_SUPPORT", ts) == [] and harness.services.db.table("inbox_claims").count == 0
