"""An agent channel shared with another organisation is refused: nothing internal is posted there.

Handoff cards carry customers' transcripts and the card thread carries agents' notes, so
Baton will not start with such a channel, `/baton` says why, and if the channel is shared while
Baton runs, what Baton would post there is held back in the outbox (and logged) instead.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.localslack import LocalSlack
from handoff.outbox import Outbox
from tests.bot.conftest import Harness, texts, world
from tests.faults.test_restart import BATON, free_port
from tests.faults.test_slack_faults import REFUND

REFUSED = "BATON_AGENT_CHANNEL C_SUPPORT (#acme-support) is shared with another organisation"


async def test_baton_serve_will_not_start_with_a_shared_agent_channel(tmp_path: Path) -> None:
    async with LocalSlack(world()) as slack:
        env = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": slack.signing_secret}
        env |= {"SLACK_API_URL": slack.api_url, "BATON_AGENT_CHANNEL": "C_SUPPORT"}
        env |= {"BATON_DB": str(tmp_path / "baton.db")}
        process = await asyncio.create_subprocess_exec(
            str(BATON), "serve", "--host", "127.0.0.1", "--port", str(free_port()), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        printed, _ = await process.communicate()
    assert process.returncode == 2 and REFUSED in printed.decode()
    assert not (tmp_path / "baton.db").exists()  # refused before anything else


async def test_an_agent_channel_shared_while_baton_runs_gets_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    slack = harness.slack
    slack.world.channel("C_AGENTS").is_ext_shared = True  # Baton checks again at most 30 s later
    ts = await slack.post("U_CUST1", "C_SUPPORT", REFUND)
    await harness.settle()
    assert slack.messages("C_AGENTS") == []  # no card, no transcript
    assert [m.message.kind for m in Outbox(harness.services.db).pending()] == ["card"]  # held, not lost
    (held, *_) = [r for r in caplog.records if "held back" in r.getMessage()]
    assert held.levelno == logging.ERROR
    assert held.getMessage() == (
        "messages to C_AGENTS held back: BATON_AGENT_CHANNEL C_AGENTS is shared outside the company"
    )
    assert len(harness.replies("C_SUPPORT", ts)) == 1  # the customer was told a person is coming
    for command in ("help", "triggers", "set confidence 0.6"):
        await slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", command)
    said = texts(slack.ephemerals("U_ADMIN"))
    assert len(said) == 3 and all(t.startswith("BATON_AGENT_CHANNEL <#C_AGENTS> is shared") for t in said)
