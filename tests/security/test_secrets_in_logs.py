"""The bot token and the signing secret never reach a log: not Baton's, not a library's, not a trace.

Two runs that log as much as they can (answers, a handoff, relays, Slack failing, forged
requests, `/baton`, a message Slack refuses for good): one in-process with every logger at
DEBUG, one a real `baton serve` whose whole output is scanned. Customers' words stay out too.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from bot.localslack import LocalSlack
from bot.localslack.events import signed_headers
from handoff.outbox import Outgoing
from tests.bot.conftest import Harness, world
from tests.faults.test_restart import BATON, free_port, served
from tests.faults.test_slack_faults import REFUND, card_for

TOKEN = "xoxb-1111-2222-NEVER-LOG-ME"
SECRET = "signing-secret-NEVER-LOG-ME"
PRIVATE = "my card is 4242-4242-PRIVATE"
OURS = [{"bot_token": TOKEN, "signing_secret": SECRET, "retry_backoff": (0.0,)}]


async def everything_that_logs(harness: Harness) -> None:
    """A busy stretch of Baton's life, with errors of every kind."""
    slack = harness.slack
    slack.faults.add("chat.postMessage", "ratelimit", times=1, retry_after=0)
    slack.faults.add("chat.postMessage", "error", times=1)
    slack.faults.add("conversations.info", "error", times=1)  # a lookup before the ack: Slack retries
    await harness.answer_to("U_CUST1", "C_SUPPORT", f"how do I reset my password? {PRIVATE}")
    ts = await slack.post("U_CUST2", "C_SUPPORT", f"{REFUND} {PRIVATE}")
    card = await card_for(harness, ts)
    await slack.post("U_AGENT1", "C_AGENTS", f"got it {PRIVATE}", card["ts"])
    await slack.post("U_CUST2", "C_SUPPORT", f"thanks {PRIVATE}", ts)
    await harness.send_raw({"type": "event_callback", "event": {"text": PRIVATE}}, secret="forged")
    for text in ("triggers", "set confidence nonsense", "faq list"):
        await slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", text)
    await harness.app.baton.courier.send(Outgoing("note:nowhere", "C_NOWHERE", PRIVATE))
    await harness.settle()


@pytest.mark.parametrize("slack_options", OURS)
async def test_nothing_secret_in_any_log_at_debug_level(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await everything_that_logs(harness)
    logged = caplog.text
    assert "failed for good: channel_not_found" in logged and "ratelimited" in logged  # it did log
    assert TOKEN not in logged and SECRET not in logged
    # Libraries print bodies at DEBUG (slack_sdk does); from INFO up, as Baton runs, no customer text.
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and PRIVATE in r.getMessage()]


async def test_nothing_secret_in_what_baton_serve_prints(db_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "baton.log"
    slack = LocalSlack(world(), bot_token=TOKEN, signing_secret=SECRET, retry_backoff=(0.0,))
    async with slack, served(slack, db_path, log) as baton:
        slack.faults.add("chat.postMessage", "error", times=1)
        ts = await slack.post("U_CUST1", "C_SUPPORT", f"{REFUND} {PRIVATE}")
        await slack.wait_for(lambda: len(slack.messages("C_AGENTS")) == 1, timeout=30)
        await slack.post("U_CUST1", "C_SUPPORT", f"hello? {PRIVATE}", ts)
        body = json.dumps({"type": "event_callback", "event": {"type": "message", "text": PRIVATE}})
        forged = signed_headers("forged", body, "application/json")
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{baton.url}/slack/events", data=body, headers=forged) as resp,
        ):
            assert resp.status == 401
        await slack.drain()
        assert (await baton.healthy())["status"] == "ok"
    printed = log.read_text()
    assert "Baton is up" in printed and "handoff" in printed and "internal_error" in printed
    assert TOKEN not in printed and SECRET not in printed and PRIVATE not in printed


async def test_a_token_slack_refuses_is_not_printed(tmp_path: Path) -> None:
    async with LocalSlack(world()) as slack:  # whose token is another one
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url}
        env |= {"BATON_AGENT_CHANNEL": "C_AGENTS", "BATON_DB": str(tmp_path / "b.db")}
        process = await asyncio.create_subprocess_exec(
            str(BATON), "serve", "--host", "127.0.0.1", "--port", str(free_port()), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        printed, _ = await process.communicate()
    assert process.returncode == 2 and b"Slack refused SLACK_BOT_TOKEN (invalid_auth)" in printed
    assert TOKEN.encode() not in printed and SECRET.encode() not in printed
