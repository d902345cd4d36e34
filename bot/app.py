"""The Slack app: `build_app` makes the Bolt `AsyncApp` with Baton's listeners and runtime.

`Baton` is what the listeners share: the services, the inbox and outbox, the courier that
delivers, cached lookups of channels and agents, and the background work listeners start
(tracked, so that shutdown and tests can wait for it). Listeners answer Slack at once and
do model work in the background.
Raises `SetupError` at start when Slack refuses the token or the agent channel will not do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.customers import Person, Place, Staff, person_from
from bot.delivery import Courier
from bot.services import Services
from bot.settings import Settings
from handoff.inbox import Inbox, stale_before
from handoff.outbox import Outbox, Outgoing, State
from handoff.store import keep_serving, problem

if TYPE_CHECKING:
    from bot.listeners import Listeners

log = logging.getLogger("baton.app")

PLACE_TTL = 300.0  # seconds a channel's kind is cached (it changes only when shared)
AGENTS_TTL = 30.0  # the same for the agent channel: nothing internal is posted once it is shared
STAFF_TTL = 60.0  # seconds the agent list is cached
PERSON_TTL = 300.0  # seconds a person's name, avatar and roles are cached


class SetupError(Exception):
    """Slack refuses Baton's token, or the agent channel cannot be used."""


@dataclass(frozen=True)
class Identity:
    """Who Baton is in Slack."""

    team_id: str
    bot_user_id: str
    bot_id: str


class Tasks:
    """Background work started by listeners, logged if it fails, awaited at shutdown."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, work: Coroutine[Any, Any, Any], context: dict[str, Any]) -> asyncio.Task[Any]:
        """Run `work` in the background; `context` describes it in the log if it fails."""
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(lambda done: self._finished(done, context))
        return task

    def _finished(self, task: asyncio.Task[Any], context: dict[str, Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_failure(task.exception(), context)

    async def idle(self) -> None:
        """Wait until no background work is left (including work started meanwhile)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def cancel(self) -> None:
        """Stop whatever is still running."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)


def log_failure(error: BaseException | None, context: dict[str, Any]) -> None:
    """Log an error with what Baton was doing (ids only: never message text or tokens)."""
    described = " ".join(f"{key}={value}" for key, value in context.items() if value)
    log.error("failed: %s", described or "(no context)", exc_info=error)


def request_context(body: dict[str, Any]) -> dict[str, Any]:
    """Ids that say which Slack request something happened in."""
    event = body.get("event") or {}
    actions = body.get("actions") or [{}]
    return {
        "type": body.get("type") or ("command" if body.get("command") else None),
        "event": event.get("type"),
        "subtype": event.get("subtype"),
        "event_id": body.get("event_id"),
        "channel": event.get("channel") or (body.get("channel") or {}).get("id") or body.get("channel_id"),
        "user": event.get("user") or (body.get("user") or {}).get("id") or body.get("user_id"),
        "action": actions[0].get("action_id"),
        "command": body.get("command"),
    }


class Baton:
    """Everything the listeners share, with its start and stop."""

    def __init__(self, settings: Settings, services: Services, client: AsyncWebClient) -> None:
        self.settings = settings
        self.services = services
        self.client = client
        self.inbox = Inbox(services.db)
        self.outbox = Outbox(services.db)
        self.courier = Courier(client, self.outbox)
        self.courier.hold = self.hold_back
        self.tasks = Tasks()
        self.identity: Identity | None = None
        self.started_at: datetime | None = None
        self._places: dict[str, tuple[Place, float]] = {}
        self._staff: tuple[Staff, float] | None = None
        self._people: dict[str, tuple[Person, float]] = {}
        self._orgs: dict[str, str] = {}
        self.periodic: list[Callable[[], Coroutine[Any, Any, None]]] = []  # run from start to close
        self._periodic: list[asyncio.Task[None]] = []
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the workspace, then resume delivering what a previous run left pending."""
        self.identity = await check_workspace(self.client, self.settings)
        keep_serving(self.services.db)  # a locked or read-only file: go on in memory, and say so
        # Each turn commits on the event loop (claim, outcome, sent). In WAL mode NORMAL skips
        # the fsync per commit (2-6 ms each, measured) and still survives a crash of the
        # process, which is what the dedupe and the outbox are for.
        self.services.db.execute("pragma synchronous = normal")
        self.inbox.forget_before(stale_before(datetime.now(UTC)))
        self._session = aiohttp.ClientSession()
        self.courier.client = quiet_client(self.client, self._session)
        self.courier.start()
        self._periodic = [asyncio.create_task(work()) for work in self.periodic]
        self.started_at = datetime.now(UTC)
        log.info("Baton is up as %s in team %s", self.identity and self.identity.bot_user_id, self.team_id)

    async def close(self, grace: float = 10.0) -> None:
        """Let background work finish (for at most `grace` seconds), then stop."""
        try:
            await asyncio.wait_for(self.tasks.idle(), grace)
        except TimeoutError:
            await self.tasks.cancel()
        for task in self._periodic:
            task.cancel()
        await asyncio.gather(*self._periodic, return_exceptions=True)
        self._periodic = []
        await self.courier.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def idle(self) -> None:
        """Wait until every background turn and delivery is done."""
        while len(self.tasks) or self.courier.busy:
            await self.tasks.idle()
            await asyncio.sleep(0)

    def spawn(self, work: Coroutine[Any, Any, Any], **context: Any) -> None:
        """Run listener work in the background (failures are logged with `context`)."""
        self.tasks.spawn(work, context)

    # -- who and where ---------------------------------------------------------------------
    async def whoami(self) -> Identity:
        """Baton's team and bot user (auth.test, once)."""
        if self.identity is None:
            self.identity = await identify(self.client)
        return self.identity

    @property
    def team_id(self) -> str:
        """Baton's own team ('' before `whoami`)."""
        return self.identity.team_id if self.identity else ""

    async def place(self, channel: str) -> Place:
        """A conversation's kind (conversations.info, cached)."""
        cached = self._places.get(channel)
        ttl = AGENTS_TTL if channel == self.settings.agent_channel else PLACE_TTL
        if cached and time.monotonic() - cached[1] < ttl:
            return cached[0]
        info = (await self.client.conversations_info(channel=channel))["channel"]
        place = Place(channel, bool(info.get("is_im")), bool(info.get("is_ext_shared")))
        self._places[channel] = (place, time.monotonic())
        return place

    async def hold_back(self, message: Outgoing) -> str | None:
        """Why a message must wait: the agent channel has been shared outside the company."""
        if message.channel != self.settings.agent_channel:
            return None
        try:
            shared = (await self.place(message.channel)).is_ext_shared
        except (SlackApiError, aiohttp.ClientError, OSError):  # go by what Slack said last (start: internal)
            known = self._places.get(message.channel)
            shared = bool(known and known[0].is_ext_shared)
        return f"BATON_AGENT_CHANNEL {message.channel} is shared outside the company" if shared else None

    async def staff(self) -> Staff:
        """Baton's team and the agents: members of the agent channel (cached)."""
        if self._staff and time.monotonic() - self._staff[1] < STAFF_TTL:
            return self._staff[0]
        identity = await self.whoami()
        agents = await channel_members(self.client, self.settings.agent_channel) - {identity.bot_user_id}
        staff = Staff(identity.team_id, self.settings.agent_channel, agents)
        self._staff = (staff, time.monotonic())
        return staff

    async def person(self, user: str) -> Person:
        """A person's name, avatar, team and roles (users.info, cached)."""
        cached = self._people.get(user)
        if cached and time.monotonic() - cached[1] < PERSON_TTL:
            return cached[0]
        person = person_from((await self.client.users_info(user=user))["user"])
        self._people[user] = (person, time.monotonic())
        return person

    async def org(self, team: str) -> str:
        """A team's name (team.info, cached; the id when Slack will not say)."""
        if team not in self._orgs:
            try:
                self._orgs[team] = str((await self.client.team_info(team=team))["team"]["name"])
            except SlackApiError:
                return team
        return self._orgs[team]

    def thread_lock(self, channel: str, thread_ts: str) -> asyncio.Lock:
        """One turn at a time per thread, so history counts every turn."""
        key = (channel, thread_ts)
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > 10_000:  # forget idle locks now and then
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def health(self) -> dict[str, Any]:
        """A small status for `/healthz`."""
        counts = self.outbox.counts()
        up = (datetime.now(UTC) - self.started_at).total_seconds() if self.started_at else 0.0
        trouble = problem(self.services.db)
        return {
            "status": ("degraded" if trouble else "ok") if self.started_at else "starting",
            "database": trouble or "ok",
            "team": self.team_id or None,
            "bot_user": self.identity.bot_user_id if self.identity else None,
            "uptime_s": round(up, 1),
            "working": len(self.tasks),
            "outbox": {"pending": counts[State.PENDING], "failed": counts[State.FAILED]},
        }


async def identify(client: AsyncWebClient) -> Identity:
    """Who the bot token belongs to (auth.test); `SetupError` if Slack refuses or is unreachable."""
    try:
        found = await client.auth_test()
    except SlackApiError as exc:
        raise SetupError(f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')})") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise SetupError(f"cannot reach Slack's Web API at {client.base_url}: {exc}") from None
    return Identity(str(found["team_id"]), str(found["user_id"]), str(found.get("bot_id") or ""))


async def check_agent_channel(client: AsyncWebClient, channel: str) -> None:
    """Refuse an agent channel Baton cannot see, is not in, or that is shared outside."""
    try:
        info = (await client.conversations_info(channel=channel))["channel"]
    except SlackApiError as exc:
        raise SetupError(
            f"BATON_AGENT_CHANNEL {channel}: Slack says {exc.response.get('error')}. "
            "Check the channel ID and invite Baton to it."
        ) from None
    name = f"#{info.get('name')}" if info.get("name") else channel
    if info.get("is_ext_shared"):
        raise SetupError(
            f"BATON_AGENT_CHANNEL {channel} ({name}) is shared with another organisation. "
            "Handoffs carry customers' transcripts and agents' notes: use an internal channel."
        )
    if not info.get("is_member"):
        raise SetupError(f"Baton is not in BATON_AGENT_CHANNEL {name}: invite it with /invite @Baton.")


async def channel_members(client: AsyncWebClient, channel: str) -> frozenset[str]:
    """Everyone in a channel (conversations.members, every page)."""
    members: list[str] = []
    cursor = None
    while True:
        page = await client.conversations_members(channel=channel, cursor=cursor, limit=1000)
        members += page.get("members") or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return frozenset(members)


async def check_workspace(client: AsyncWebClient, settings: Settings) -> Identity:
    """Everything Baton needs from Slack before it starts: a good token and a usable agent channel."""
    identity = await identify(client)
    await check_agent_channel(client, settings.agent_channel)
    return identity


class BatonApp(AsyncApp):
    """The Bolt app, carrying the `Baton` its listeners share, and the listeners."""

    baton: Baton
    listeners: Listeners


def quiet_client(client: AsyncWebClient, session: aiohttp.ClientSession | None) -> AsyncWebClient:
    """A copy of `client` that does not retry on its own (the courier decides) and keeps a session."""
    return AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        session=session,
        retry_handlers=[],
    )


def build_app(settings: Settings, services: Services, client: AsyncWebClient | None = None) -> BatonApp:
    """The Bolt app with every listener; `client` defaults to one for `settings.api_url`."""
    from bot.listeners import register_listeners

    client = client or AsyncWebClient(token=settings.bot_token, base_url=settings.api_url)
    bolt_log = logging.getLogger("baton.bolt")
    bolt_log.setLevel(logging.WARNING)  # Bolt logs request bodies (customer text) at INFO
    app = BatonApp(
        client=client,
        signing_secret=settings.signing_secret,  # '' in Socket Mode, where nothing is signed
        process_before_response=True,  # listeners only queue work: the ack waits for nothing slow
        ignoring_self_events_enabled=False,  # Baton skips every bot's messages itself
        attaching_conversation_kwargs_enabled=False,
        logger=bolt_log,
    )
    app.baton = Baton(settings, services, client)
    app.listeners = register_listeners(app, app.baton)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log_failure(error, request_context(body))

    return app
