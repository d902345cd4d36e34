"""`baton serve` killed with SIGKILL at points of a handoff, and started again each time.

The test runs the local Slack on loopback and Baton as a real `baton serve` process on a temp
database. The emulator kills Baton the instant something happens (an event acknowledged, a
message stored in Slack before Baton hears back), so each kill lands exactly at its point:
after the customer's message is acknowledged, after the card is posted, after an agent's reply
is acknowledged, and mid relay (the copy posted, Baton not yet told). After every restart
the handoff goes on; at the end each message Baton owes is in Slack exactly once, in order,
and the outbox is empty. No duplicate window: the outbox looks for a message in Slack (by the
key in its metadata) before posting it again, and a turn acknowledged but unfinished is taken
up again from the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.localslack import Change, LocalSlack
from bot.localslack.store import Message
from tests.bot.conftest import world
from tests.faults.test_slack_faults import REFUND, key_of

BATON = Path(sys.executable).with_name("baton")
STARTUP = 120.0  # seconds `baton serve` may take to load its models on a busy machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """`baton serve` as a child process talking to the emulator; its log lines go to `log`."""

    def __init__(self, slack: LocalSlack, db: Path, log: Path, **extra: str) -> None:
        self.slack = slack
        self.port = free_port()
        self.log = log
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BATON_"))},
            "BATON_DB": str(db),
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": slack.api_url,
            "BATON_AGENT_CHANNEL": "C_AGENTS",
            "OMP_NUM_THREADS": "1",
            **extra,
        }
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.killed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start Baton and wait until /healthz answers (or it is killed again); point the emulator at it."""
        self.killed = False
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(BATON), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
        self.starts += 1
        self.slack.app_url = f"{self.url}/slack/events"
        await self.healthy()

    async def healthy(self) -> dict[str, Any]:
        """The /healthz answer once Baton serves; {} if it was killed first (fails if it died)."""
        async with asyncio.timeout(STARTUP), aiohttp.ClientSession() as session:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    assert self.killed, self.log.read_text()
                    return {}
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(f"{self.url}/healthz") as resp:
                        return dict(await resp.json())
                await asyncio.sleep(0.1)  # the port opens once the models are loaded

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.killed = True

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
        if self.process is not None:
            await self.process.wait()


@contextlib.asynccontextmanager
async def served(slack: LocalSlack, db: Path, log: Path, **extra: str) -> AsyncIterator[Served]:
    baton = Served(slack, db, log, **extra)
    try:
        await baton.start()
        yield baton
    finally:
        await baton.stop()


class Killer:
    """Kills Baton from inside the emulator the moment a change matches what it was armed with."""

    def __init__(self, slack: LocalSlack, baton: Served) -> None:
        self.slack = slack
        self.baton = baton
        self.armed: Callable[[Change], bool] | None = None
        self.fired = asyncio.Event()
        self.points: list[str] = []
        slack.subscribe(self.watch)

    def arm(self, point: str, when: Callable[[Change], bool]) -> None:
        self.points.append(point)
        self.armed, self.fired = when, asyncio.Event()

    def watch(self, change: Change) -> None:
        if self.armed is not None and self.armed(change):
            self.armed = None
            self.baton.kill()  # before the emulator answers Baton or logs anything else
            self.fired.set()

    async def then(self, point: str | None = None, when: Callable[[Change], bool] | None = None) -> None:
        """Wait for the kill, arm the next point (before anything can reach it), start Baton again."""
        await asyncio.wait_for(self.fired.wait(), STARTUP)
        assert self.baton.process is not None
        await self.baton.process.wait()
        if point is not None and when is not None:
            self.arm(point, when)
        await self.baton.start()


def acked(slack: LocalSlack, ts: str) -> Callable[[Change], bool]:
    """The moment Baton acknowledges the event of the message `ts`."""
    ids = lambda: {e["event_id"] for e in slack.events("message") if e["event"].get("ts") == ts}  # noqa: E731
    return lambda c: c.kind == "delivery" and c.data["status"] == 200 and c.data["event_id"] in ids()


def stored(channel: str, prefix: str) -> Callable[[Change], bool]:
    """The moment Slack stores Baton's message with this key (Baton has not heard back yet)."""
    return lambda c: (
        c.kind == "message"
        and c.data["channel"] == channel
        and (key_of(c.data["message"]) or "").startswith(prefix)
    )


def bot_messages(slack: LocalSlack, channel: str, ts: str | None = None) -> list[Message]:
    """Baton's messages in a thread (or at a channel's top level)."""
    found = slack.messages(channel, ts) if ts else slack.messages(channel)
    return [m for m in found if m.get("bot_id") == "B_BATON"]


def keys(messages: list[Message]) -> list[str]:
    return [key_of(m) or "" for m in messages]


async def test_killed_at_every_point_of_a_handoff_nothing_is_lost_or_doubled(
    db_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "baton.log"
    async with LocalSlack(world(), retry_backoff=(0.0,)) as slack, served(slack, db_path, log) as baton:
        kill = Killer(slack, baton)
        # 1. The customer's message is acknowledged, then Baton dies before doing anything with it;
        # 2. the turn, taken up again, tells the customer and posts the card, and Baton dies
        #    before it learns where the card is.
        ts = await slack.post("U_CUST1", "C_SUPPORT", REFUND)
        kill.arm("customer message acknowledged", acked(slack, ts))
        await kill.then("card posted", stored("C_AGENTS", "card:"))
        await kill.then()
        (card,) = await slack.wait_for(lambda: bot_messages(slack, "C_AGENTS"), timeout=STARTUP)
        await slack.drain()
        # Restarted, Baton knows where its card is: the customer's next message reaches it.
        said = await slack.post("U_CUST1", "C_SUPPORT", "my order number is 4711", ts)
        await slack.wait_for(lambda: len(bot_messages(slack, "C_AGENTS", card["ts"])) == 2, timeout=STARTUP)
        # 3. An agent replies: Baton acknowledges it and dies before relaying it;
        # 4. mid relay: the turn, taken up again, dies once the copy is in the customer's thread.
        reply = await slack.post("U_AGENT1", "C_AGENTS", "Refund is on its way", card["ts"])
        kill.arm("agent reply acknowledged", acked(slack, reply))
        await kill.then("relay to the customer posted", stored("C_SUPPORT", f"relay:C_AGENTS:{reply}"))
        await kill.then()
        # The handoff ends as usual.
        await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_resolve")
        await slack.wait_for(lambda: len(bot_messages(slack, "C_SUPPORT", ts)) == 3, timeout=STARTUP)
        await slack.drain(quiet=0.5, timeout=STARTUP)
        health = await baton.healthy()

    assert baton.starts == 5 and len(kill.points) == 4
    assert keys(bot_messages(slack, "C_SUPPORT", ts)) == [
        f"joining:C_SUPPORT:{ts}",
        f"relay:C_AGENTS:{reply}",
        f"closing:C_SUPPORT:{ts}:1",
    ]
    assert [k.split(":")[0] for k in keys(bot_messages(slack, "C_AGENTS"))] == ["card"]  # one card
    assert keys(bot_messages(slack, "C_AGENTS", card["ts"])[1:]) == [f"relay:C_SUPPORT:{said}"]
    assert health["outbox"] == {"pending": 0, "failed": 0}
