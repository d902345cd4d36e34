"""`baton demo`: the local Slack, Baton against it and a Slack-like page, in one process.

The page (`bot/localslack/static/`) talks to the emulator's control API; the emulator talks to
Baton over signed HTTP exactly as Slack would, and Baton answers through the emulator's Web API.
Nothing here is a shortcut around production code: Baton is built by `bot.runner.running`.
`--tour` (or the page's "Play tour" button) plays a scripted conversation through the emulator's
Python API, with pauses a person would take. With `--db FILE`, Baton's database and the local
Slack's state (`FILE.slack.json`) are kept between runs, so a restart carries on the conversations.

Raises `DemoError` when the page's port cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.localslack import AppIdentity, LocalSlack, World
from bot.localslack.store import Message
from bot.localslack.world import DEFAULT_SCOPES
from bot.runner import build_web_app, configure_logging, running, stop_on_signals
from bot.settings import Settings

if TYPE_CHECKING:
    from sqlite_utils import Database

    from bot.app import BatonApp

log = logging.getLogger("baton.demo")
DEFAULT_PORT = 3000
DEMO_DIR = Path(".baton")
AGENT_CHANNEL, SUPPORT_CHANNEL = "C_AGENTS", "C_SUPPORT"
CUSTOMER, AGENT = "U_CUST1", "U_AGENT1"
TOUR_FALLBACK = 15.0  # seconds `--tour` waits for a page to open before it plays anyway


class DemoError(Exception):
    """The demo cannot start (its port is taken or cannot be bound)."""


# -- the world and Baton ---------------------------------------------------------------------
def demo_world() -> World:
    """The emulator's Tally Labs / Acme Corp seed, with the scopes Baton's manifest asks for."""
    scopes = (*DEFAULT_SCOPES, "chat:write.customize", "groups:read", "im:read")
    return World(app=AppIdentity(scopes=scopes))


def demo_settings(settings: Settings, slack: LocalSlack) -> Settings:
    """`settings` pointed at the emulator; channel and admin ids come from the demo world."""
    return replace(
        settings,
        bot_token=slack.bot_token,
        signing_secret=slack.signing_secret,
        api_url=slack.api_url,
        agent_channel=AGENT_CHANNEL,
        support_channels=(),
        admins=(),
    )


class DemoSlack(LocalSlack):
    """The emulator plus `GET /_demo/info` and `POST /_demo/tour` for the page."""

    tour: Tour | None = None

    def web_app(self) -> web.Application:
        """The emulator's routes and the demo's two."""
        app = super().web_app()
        app.router.add_get("/_demo/info", self._info)
        app.router.add_post("/_demo/tour", self._play)
        return app

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self.tour.status() if self.tour else {})

    async def _play(self, request: web.Request) -> web.Response:
        if self.tour is None or not self.tour.start():
            return web.json_response({"ok": False, "error": "tour_running"}, status=409)
        return web.json_response({"ok": True})


@dataclass
class Demo:
    """A running demo: the emulator (which serves the page), Baton and the tour."""

    slack: DemoSlack
    app: BatonApp
    tour: Tour

    @property
    def url(self) -> str:
        """The page's address."""
        return self.slack.url


@contextlib.asynccontextmanager
async def serving(app: BatonApp) -> AsyncIterator[str]:
    """Serve Baton's HTTP endpoint on a free loopback port; yields its events URL."""
    runner = web.AppRunner(build_web_app(app), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    finally:
        await runner.cleanup()


async def start_slack(host: str, port: int, state_file: Path | None = None) -> DemoSlack:
    """The emulator serving the page on host:port (kept in `state_file`, if given); `DemoError`
    if the port cannot be used."""
    slack = DemoSlack(demo_world(), state_file=state_file)
    try:
        await slack.start(host, port)
    except OSError as exc:
        await slack.stop()
        raise DemoError(f"cannot serve the demo on {host}:{port} ({exc.strerror}): try --port N") from None
    return slack


@contextlib.asynccontextmanager
async def running_demo(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    pace: float = 1.0,
    state_file: Path | None = None,
) -> AsyncIterator[Demo]:
    """The emulator on host:port and Baton (built by `bot.runner.running`) serving it."""
    slack = await start_slack(host, port, state_file)
    try:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        async with running(demo_settings(settings, slack), client) as app, serving(app) as app_url:
            slack.app_url = app_url
            slack.tour = Tour(slack, pace)
            try:
                yield Demo(slack, app, slack.tour)
            finally:
                await slack.tour.stop()
    finally:
        await slack.stop()


# -- the database ----------------------------------------------------------------------------
def seed_path(settings: Settings, directory: Path = DEMO_DIR) -> Path:
    """Where the demo keeps its FAQ and embedding cache between runs (one file per FAQ file)."""
    if settings.faq_path is None:
        return directory / "demo.db"
    digest = hashlib.sha256(str(settings.faq_path.resolve()).encode()).hexdigest()[:10]
    return directory / f"demo-{digest}.db"


def slack_state_path(db: Path) -> Path:
    """Where `--db FILE` keeps the local Slack's messages and views: `FILE.slack.json`."""
    return db.with_name(db.name + ".slack.json")


def copy_database(source: sqlite3.Connection, target: Path) -> None:
    """A consistent copy of an open SQLite database, written atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(partial)) as copy:
        source.backup(copy)
    os.replace(partial, target)


def fresh_database(seed: Path, directory: Path) -> Path:
    """A new database for one run: a copy of the seed when there is one (embeddings cached)."""
    run = directory / "demo.db"
    if seed.exists():
        with contextlib.closing(sqlite3.connect(seed)) as source:
            copy_database(source, run)
    return run


def save_seed(db: Database, seed: Path) -> None:
    """Keep this run's FAQ and embeddings (no conversation yet) for the next run."""
    try:
        copy_database(db.conn, seed)
    except (sqlite3.Error, OSError) as exc:  # a read-only checkout still runs the demo, only slower
        log.warning("cannot save the demo database to %s: %s", seed, exc)


# -- the tour --------------------------------------------------------------------------------
QUESTION = "Hi! How do I reset my password? The reset email never arrives."
ANGRY = "This is the third time I'm asking. I want a refund for last month's charge NOW."
AGENT_REPLY = (
    "Hi Casey, Sam from Tally here. Sorry for the runaround! I've refunded last month's charge: "
    "you'll see it on your card in 3 to 5 working days."
)
THANKS = "Thank you Sam, that's all I needed!"


@dataclass
class TourLog:
    """What the tour posted, for whoever wants to look (the tests do)."""

    thread_ts: str = ""
    card_ts: str = ""
    steps: list[str] = field(default_factory=list)


class Tour:
    """A scripted conversation played through the emulator, as people would type and click."""

    def __init__(self, slack: LocalSlack, pace: float = 1.0, timeout: float = 30.0) -> None:
        self.slack = slack
        self.pace = pace  # 0 plays without pauses
        self.timeout = timeout
        self.autoplay = False
        self.played = 0
        self.log = TourLog()
        self.task: asyncio.Task[TourLog] | None = None
        self.on_caption: Callable[[str], Any] | None = None

    def status(self) -> dict[str, Any]:
        """What the page needs to know about the tour."""
        return {"tour": {"autoplay": self.autoplay, "running": self.running, "played": self.played}}

    @property
    def running(self) -> bool:
        """Whether the tour is playing now."""
        return self.task is not None and not self.task.done()

    def start(self) -> bool:
        """Start playing unless it already is; returns whether it started."""
        if self.running:
            return False
        self.played += 1
        self.task = asyncio.create_task(self.play())
        self.task.add_done_callback(_report_failure)
        return True

    async def stop(self) -> None:
        """Stop playing."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def play(self) -> TourLog:
        """The whole tour: an answer, an angry follow-up handed off, a relayed reply, a 👍."""
        self.log = TourLog()
        steps = (self.answered, self.handed_off, self.relayed, self.rated, self.dashboard)
        for number, step in enumerate(steps, start=1):
            await step(number, len(steps))
        await self.caption(
            len(steps),
            len(steps),
            "That's the whole loop. Your turn: pick who you are at the top, and type or click.",
            done=True,
        )
        return self.log

    # -- the steps ------------------------------------------------------------------------
    async def answered(self, step: int, of: int) -> None:
        """A customer asks in the Slack Connect channel; Baton answers in the thread."""
        await self.caption(step, of, "Casey from Acme Corp asks a question in the shared channel…", CUSTOMER)
        ts = await self.say(CUSTOMER, SUPPORT_CHANNEL, QUESTION)
        self.log.thread_ts = ts
        await self.caption(step, of, "…and Baton answers from the FAQ, in the thread.", CUSTOMER, ts)
        await self.until(lambda: self.bot_replies(SUPPORT_CHANNEL, ts))
        await self.pause(3.0)

    async def handed_off(self, step: int, of: int) -> None:
        """An angry follow-up: Baton tells the customer a person is coming and posts a card."""
        ts = self.log.thread_ts
        await self.caption(step, of, "Casey is upset and asks for a refund: a person should take over.")
        await self.say(CUSTOMER, SUPPORT_CHANNEL, ANGRY, ts)
        await self.until(lambda: len(self.bot_replies(SUPPORT_CHANNEL, ts)) >= 2)
        card = await self.until(lambda: self.card_for(ts))
        self.log.card_ts = card["ts"]
        text = "Baton passes the baton: a card with the reasons lands in the agents' channel."
        await self.caption(step, of, text, AGENT, card["ts"], channel=AGENT_CHANNEL)
        await self.pause(3.5)
        await self.slack.click(AGENT, AGENT_CHANNEL, card["ts"], "baton_claim")
        await self.pause(1.5)

    async def relayed(self, step: int, of: int) -> None:
        """The agent replies in the card's thread; the customer sees it under the agent's name."""
        ts, card_ts = self.log.thread_ts, self.log.card_ts
        text = "Sam claims it and replies in the card's thread…"
        await self.caption(step, of, text, AGENT, card_ts, channel=AGENT_CHANNEL)
        await self.say(AGENT, AGENT_CHANNEL, AGENT_REPLY, card_ts)
        await self.until(lambda: self.relays(ts))
        text = "…and Casey sees Sam's reply in their own thread, under Sam's name."
        await self.caption(step, of, text, CUSTOMER, ts)
        await self.pause(3.0)
        await self.say(CUSTOMER, SUPPORT_CHANNEL, THANKS, ts)
        await self.pause(2.0)

    async def rated(self, step: int, of: int) -> None:
        """The agent resolves; the customer rates the help with a 👍."""
        ts, card_ts = self.log.thread_ts, self.log.card_ts
        text = "Sam resolves the conversation; Baton asks Casey how it went."
        await self.caption(step, of, text, AGENT, card_ts, channel=AGENT_CHANNEL)
        await self.pause(2.0)
        await self.slack.click(AGENT, AGENT_CHANNEL, card_ts, "baton_resolve")
        closing = await self.until(lambda: self.closing(ts))
        await self.caption(step, of, "Casey answers with a 👍.", CUSTOMER, ts)
        await self.pause(2.5)
        await self.slack.react(CUSTOMER, SUPPORT_CHANNEL, closing["ts"], "+1")
        await self.pause(2.0)

    async def dashboard(self, step: int, of: int) -> None:
        """The agent's App Home: open handoffs, today's CSAT, questions Baton was unsure of."""
        await self.caption(step, of, "Sam's App Home: open handoffs and today's CSAT.", AGENT, view="home")
        await self.slack.open_home(AGENT)
        await self.until(lambda: self.slack.views(AGENT))
        await self.pause(3.0)

    # -- how people act ---------------------------------------------------------------------
    async def caption(
        self,
        step: int,
        of: int,
        text: str,
        user: str | None = None,
        thread_ts: str | None = None,
        *,
        channel: str = SUPPORT_CHANNEL,
        view: str | None = None,
        done: bool = False,
    ) -> None:
        """Tell the page (and the terminal) what happens next, and whom to watch."""
        self.log.steps.append(text)
        data = {"step": step, "of": of, "text": text, "as": user, "channel": channel}
        data.update(thread_ts=thread_ts, view=view, done=done)
        self.slack.workspace.notify("tour", data)
        if self.on_caption:
            self.on_caption(f"tour {step}/{of}: {text}")
        await self.pause(1.0)

    async def say(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> str:
        """Type (the page shows "… is typing") and post."""
        seconds = min(4.0, 1.0 + len(text) / 30) * self.pace
        data = {"user": user, "channel": channel, "thread_ts": thread_ts, "seconds": seconds}
        self.slack.workspace.notify("typing", data, channel)
        await asyncio.sleep(seconds)
        return await self.slack.post(user, channel, text, thread_ts)

    async def pause(self, seconds: float) -> None:
        """A person's pause (none at pace 0)."""
        await asyncio.sleep(seconds * self.pace)

    async def until(self, found: Callable[[], Any]) -> Any:
        """Wait for Baton (through the emulator) until `found()` is truthy."""
        return await self.slack.wait_for(found, timeout=self.timeout)

    # -- what the tour looks for ------------------------------------------------------------
    def bot_replies(self, channel: str, ts: str) -> list[Message]:
        """Baton's own messages in a thread (not relayed ones)."""
        thread = self.slack.messages(channel, ts)[1:]
        return [m for m in thread if m.get("bot_id") and not m.get("username")]

    def relays(self, ts: str) -> list[Message]:
        """Messages relayed into the customer's thread under a person's name."""
        return [m for m in self.slack.messages(SUPPORT_CHANNEL, ts)[1:] if m.get("username")]

    def card_for(self, ts: str) -> Message | None:
        """The handoff card for a customer thread (its buttons name the thread)."""
        wanted = f"{SUPPORT_CHANNEL} {ts}"
        for message in self.slack.messages(AGENT_CHANNEL):
            values = [e.get("value") for b in message.get("blocks") or [] for e in b.get("elements", [])]
            if message.get("bot_id") and wanted in values:
                return message
        return None

    def closing(self, ts: str) -> Message | None:
        """Baton's message asking the customer to rate the help."""
        return next((m for m in self.bot_replies(SUPPORT_CHANNEL, ts) if ":+1:" in m.get("text", "")), None)


def _report_failure(task: asyncio.Task[TourLog]) -> None:
    """Log a tour that stopped on an error (the demo keeps running)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("the tour stopped: %r", task.exception())


# -- the command -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    """`baton demo` options (and what tests change)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tour: bool = False
    db: Path | None = None  # None: a fresh database (copied from the seed in `home`) and Slack each run
    home: Path = DEMO_DIR
    pace: float = 1.0  # of the tour's pauses
    since: float | None = None  # the perf_counter() that "ready in" counts from (default: now)


def run_demo(args: argparse.Namespace) -> int:
    """`baton demo`: serve until Ctrl-C."""
    configure_logging(logging.WARNING)
    since = time.perf_counter() - process_age()  # the process start: imports count too
    options = Options(args.host, args.port, args.tour, args.db, since=since)
    try:
        asyncio.run(demo(Settings.from_env(os.environ), options))
    except DemoError as exc:
        print(f"baton: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the demo was ready (its signal handlers come later)
        print("Stopped.", file=sys.stderr)
        return 130
    return 0


async def demo(
    settings: Settings, options: Options, stop: asyncio.Event | None = None, out: TextIO = sys.stdout
) -> None:
    """Start everything and serve until `stop` (or Ctrl-C)."""
    async with launched(settings, options, out) as live:
        fallback = asyncio.create_task(autoplay(live.tour)) if options.tour else None
        await (stop or stop_on_signals()).wait()
        if fallback:
            fallback.cancel()


@contextlib.asynccontextmanager
async def launched(settings: Settings, options: Options, out: TextIO) -> AsyncIterator[Demo]:
    """The running demo, on a fresh database and Slack unless `--db`; says where and how fast."""
    since = time.perf_counter() if options.since is None else options.since
    say = functools.partial(print, file=out, flush=True)
    say("Starting the local Slack and Baton (loading the models)…")
    with tempfile.TemporaryDirectory(prefix="baton-demo-") as scratch:
        seed = seed_path(settings, options.home)
        settings = replace(settings, db_path=options.db or fresh_database(seed, Path(scratch)))
        state = slack_state_path(options.db) if options.db else None
        async with running_demo(settings, options.host, options.port, options.pace, state) as live:
            if live.slack.state_error:
                say(f"The local Slack starts empty: cannot use {live.slack.state_error}")
            if options.db is None:
                save_seed(live.app.baton.services.db, seed)
            say(f"Baton demo ready in {time.perf_counter() - since:.1f} s: open {live.url}")
            say("Press Ctrl-C to stop.")
            live.tour.on_caption = say
            live.tour.autoplay = options.tour
            yield live
    say("Stopped.")


async def autoplay(tour: Tour) -> None:
    """The first page that opens starts the tour (`autoplay`); play it anyway if none does."""
    await asyncio.sleep(TOUR_FALLBACK)
    if not tour.played:
        tour.start()


def process_age() -> float:
    """Seconds since this process started (Linux), or 0 where that cannot be read."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
