"""Exactly one answer whatever Slack does: retries, restarts, rate limits, errors, bad signatures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.app import SetupError, build_app
from bot.delivery import METADATA_TYPE, Courier
from bot.localslack.events import sign
from handoff.outbox import Outbox, Outgoing, RetryPolicy, State
from tests.bot.conftest import Harness

QUESTION = "how do I reset my password?"


def slow_first_ack(harness: Harness, seconds: float) -> None:
    """Hold back the answer to each event's first delivery, as a congested network would."""

    async def hold(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> Any:
        response = await next()
        if not req.headers.get("x-slack-retry-num"):
            await asyncio.sleep(seconds)
        return response

    harness.app.middleware(hold)


@pytest.mark.parametrize("slack_options", [{"ack_timeout": 0.2, "retry_backoff": (0.0,)}])
async def test_a_retried_event_is_answered_once(harness: Harness) -> None:
    slow_first_ack(harness, 0.5)
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await slack.wait_for(lambda: any(d.retry_num for d in slack.deliveries()))
    await harness.settle()
    question = slack.events()[0]["event_id"]
    attempts = [(d.retry_num, d.status, d.reason) for d in slack.deliveries(question)]
    assert attempts == [(0, None, "http_timeout"), (1, 200, None)]
    assert len(harness.replies("C_SUPPORT", ts)) == 1


async def test_after_a_restart_a_redelivered_event_is_not_answered_again(harness: Harness) -> None:
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await harness.settle()
    envelope = slack.events("message")[0]
    await harness.restart()
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, _ = await harness.send_raw(envelope, headers=retry)
    copy = {**envelope, "event_id": "Ev_MENTION_COPY", "event": {**envelope["event"], "type": "app_mention"}}
    status_copy, _ = await harness.send_raw(copy)
    await harness.settle()
    assert (status, status_copy) == (200, 200)
    assert len(harness.replies("C_SUPPORT", ts)) == 1


@pytest.mark.parametrize("slack_options", [{"retry_backoff": (0.0,)}])
async def test_when_slack_fails_a_lookup_its_retry_is_answered(harness: Harness) -> None:
    slack = harness.slack
    slack.faults.add("conversations.info", "error", times=1)
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await harness.settle()
    assert [d.status for d in slack.deliveries(slack.events()[0]["event_id"])] == [500, 200]
    assert len(harness.replies("C_SUPPORT", ts)) == 1


async def test_a_turn_cut_short_by_a_crash_is_answered_after_the_restart(harness: Harness) -> None:
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await slack.wait_for(lambda: any(d.ok for d in slack.deliveries()))
    await harness.app.baton.tasks.cancel()  # the process dies while the model reads the turn
    assert Outbox(harness.services.db).pending() == [] and harness.replies("C_SUPPORT", ts) == []
    envelope = slack.events("message")[0]
    await harness.restart()
    status, _ = await harness.send_raw(envelope, headers={"X-Slack-Retry-Num": "1"})
    await harness.settle()
    assert status == 200 and len(harness.replies("C_SUPPORT", ts)) == 1


async def test_a_reply_slack_kept_refusing_is_sent_after_a_restart(harness: Harness) -> None:
    slack = harness.slack
    slack.faults.add("chat.postMessage", "error", times=None)
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await harness.settle()
    assert harness.replies("C_SUPPORT", ts) == []
    (pending,) = Outbox(harness.services.db).pending()
    assert (pending.attempts, pending.last_error) == (3, "internal_error")
    slack.faults.clear()
    await harness.restart()
    await slack.wait_for(lambda: harness.replies("C_SUPPORT", ts))
    await harness.settle()
    assert len(harness.replies("C_SUPPORT", ts)) == 1
    assert Outbox(harness.services.db).counts()[State.SENT] == 1


async def test_rate_limited_reply_waits_for_retry_after_and_posts_once(harness: Harness) -> None:
    slack = harness.slack
    slack.faults.add("chat.postMessage", "ratelimit", times=1, retry_after=1)
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await slack.wait_for(lambda: harness.replies("C_SUPPORT", ts), timeout=5)
    await harness.settle()
    limited, posted = slack.calls("chat.postMessage")
    assert (limited.status, posted.status) == (429, 200)
    assert posted.time - limited.time >= 0.95
    assert len(harness.replies("C_SUPPORT", ts)) == 1


async def test_server_errors_are_retried_after_looking_for_the_message(harness: Harness) -> None:
    slack = harness.slack
    slack.faults.add("chat.postMessage", "error", times=2, status=503)
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await harness.settle()
    assert [c.status for c in slack.calls("chat.postMessage")] == [503, 503, 200]
    assert len(slack.calls("conversations.replies")) == 2  # looked before each retry
    assert len(harness.replies("C_SUPPORT", ts)) == 1


async def test_a_message_found_in_slack_is_not_posted_again(harness: Harness) -> None:
    """Slack posted it, but the answer was lost: the next try finds it by its outbox key."""
    slack, db = harness.slack, harness.services.db
    root = await slack.post("U_AGENT1", "C_SUPPORT", "hello")  # an agent: Baton stays quiet
    await harness.settle()
    outbox = Outbox(db)
    message = Outgoing("reply:lost", "C_SUPPORT", "posted before", thread_ts=root)
    queued = outbox.put(message)
    outbox.mark_retry(queued.id, "ServerDisconnectedError", 0.0)
    meta = {"event_type": METADATA_TYPE, "event_payload": {"key": "reply:lost"}}
    posted = await harness.app.client.chat_postMessage(
        channel="C_SUPPORT", text="posted before", thread_ts=root, metadata=meta
    )
    courier = Courier(harness.app.client, outbox, RetryPolicy(base=0.01))
    done = await courier.deliver(outbox.by_id(queued.id) or queued)
    assert (done.state, done.ts) == (State.SENT, posted["ts"])
    assert len(slack.calls("chat.postMessage")) == 1


async def test_a_message_slack_refuses_for_good_is_kept_as_failed(harness: Harness) -> None:
    outbox = Outbox(harness.services.db)
    courier = Courier(harness.app.client, outbox, RetryPolicy(base=0.01))
    done = await courier.send(Outgoing("note:nowhere", "C_NOWHERE", "hello"))
    assert (done.state, done.last_error, done.attempts) == (State.FAILED, "channel_not_found", 1)
    assert outbox.counts()[State.FAILED] == 1


@pytest.mark.parametrize("slack_options", [{"signing_secret": "not-baton's-secret", "retry_backoff": (0.0,)}])
async def test_bad_signatures_are_refused_and_change_nothing(harness: Harness) -> None:
    slack = harness.slack
    await harness.down()
    await harness.up(secret="baton's-own-secret")
    await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await harness.settle()
    assert {d.status for d in slack.deliveries()} == {401} and len(slack.deliveries()) == 4
    stale = json.dumps({"type": "event_callback", "event_id": "Ev_STALE", "event": {"type": "message"}})
    old = str(int(time.time()) - 6 * 60)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": old,
        "X-Slack-Signature": sign("baton's-own-secret", old, stale),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(str(slack.app_url), data=stale, headers=headers) as resp,
    ):
        assert resp.status == 401
    db = harness.services.db
    assert slack.calls("chat.postMessage") == [] and db.table("inbox_claims").count == 0


async def test_healthz_reports_status(harness: Harness) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{harness.url}/healthz") as resp:
        assert resp.status == 200
        status = await resp.json()
    assert status["status"] == "ok" and status["team"] == "T_HOST" and status["bot_user"] == "U_BATON"
    assert status["outbox"] == {"pending": 0, "failed": 0}


@pytest.mark.parametrize(
    ("channel", "problem"),
    [
        ("C_SUPPORT", "is shared with another organisation"),
        ("C_GENERAL", "Baton is not in BATON_AGENT_CHANNEL #general"),
        ("C_MISSING", "Slack says channel_not_found"),
    ],
)
async def test_start_refuses_an_unusable_agent_channel(harness: Harness, channel: str, problem: str) -> None:
    from dataclasses import replace

    app = build_app(replace(harness.settings, agent_channel=channel), harness.services, harness.app.client)
    with pytest.raises(SetupError, match=problem):
        await app.baton.start()
