"""`LocalSlack`: the aiohttp server and the Python API that tests, benchmarks and the demo use.

Routes: `/api/<method>` (Web API), `/response/<id>` (response_urls), `/_emulator/...` (JSON
control API and live websocket for the demo UI, see `control.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from bot.localslack import control, snapshot
from bot.localslack.errors import LocalSlackError, SlackError, StateFileError
from bot.localslack.events import AppReply, Deliverer, Delivery, DeliveryConfig, Payload, Sender
from bot.localslack.faults import FaultSchedule
from bot.localslack.interactive import Interactions
from bot.localslack.store import Message, TsClock
from bot.localslack.webapi import Call, WebApi
from bot.localslack.workspace import Change, Subscriber, Workspace, rich_text, typed
from bot.localslack.world import Channel, User, World

T = TypeVar("T")
DEFAULT_SIGNING_SECRET = "localslack-signing-secret"
DEFAULT_BOT_TOKEN = "xoxb-localslack-baton"
DEFAULT_VERIFICATION_TOKEN = "localslack-verification-token"
STATIC = Path(__file__).parent / "static"


@contextlib.contextmanager
def python_api() -> Iterator[None]:
    """Report Slack error codes from the Python API as `LocalSlackError`."""
    try:
        yield
    except SlackError as error:
        raise LocalSlackError(error.code) from error


async def index(request: web.Request) -> web.FileResponse:
    """The demo UI's page, when `static/index.html` is installed."""
    return web.FileResponse(STATIC / "index.html")


class LocalSlack:
    """A local Slack: Web API, signed Events API delivery, interactivity and fault injection.

    With `state_file`, what Slack holds is loaded from that file and saved back to it (see
    `snapshot`), so a restart on the same file carries on where the last run stopped.
    """

    def __init__(
        self,
        world: World | None = None,
        app_url: str | None = None,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        bot_token: str = DEFAULT_BOT_TOKEN,
        *,
        verification_token: str = DEFAULT_VERIFICATION_TOKEN,
        ack_timeout: float = 3.0,
        retry_backoff: tuple[float, ...] = (0.0, 1.0, 5.0),
        max_retries: int = 3,
        trigger_ttl: float = 3.0,
        ts_start: float | None = None,
        commands_url: str | None = None,
        interactivity_url: str | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.world = world or World()
        self.app_url = app_url
        self.commands_url = commands_url
        self.interactivity_url = interactivity_url
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.url = ""
        self.faults = FaultSchedule()
        self._stopping = asyncio.Event()
        self._sender = Sender(signing_secret)
        config = DeliveryConfig(ack_timeout, retry_backoff, max_retries)
        self._deliverer = Deliverer(self._sender, lambda: self.app_url, config)
        self.workspace = Workspace(self.world, TsClock(ts_start), self._deliverer, verification_token)
        self.workspace.trigger_ttl = trigger_ttl
        self._deliverer.on_attempt = self._on_delivery
        self._webapi = WebApi(self.workspace, self.faults, bot_token, self._stopping)
        self._interactions = Interactions(self.workspace, self._sender, lambda: self.url, self._endpoint)
        self._interactions.timeout = ack_timeout
        self._runner: web.AppRunner | None = None
        self.state_error: StateFileError | None = None  # why a saved state could not be used
        self._autosave = self._resume(state_file) if state_file else None

    def _resume(self, path: Path) -> snapshot.Autosave:
        """Carry on from the state saved at `path` (an unreadable one is set aside) and keep saving."""
        try:
            snapshot.resume(self.workspace, path)
        except StateFileError as error:
            aside = snapshot.set_aside(path)
            kept = f"; it is kept as {aside}" if aside else ""
            self.state_error = StateFileError(f"{path}: {error}{kept}")
        return snapshot.Autosave(self.workspace, path)

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The `base_url` for `AsyncWebClient` (ends with a slash)."""
        return f"{self.url}/api/"

    def web_app(self) -> web.Application:
        """The aiohttp application serving the Web API, response_urls and the control API."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._webapi.handle)
        app.router.add_post("/response/{id}", self._interactions.handle_response)
        control.add_routes(app, self)
        if STATIC.is_dir():
            app.router.add_static("/static/", STATIC)
            app.router.add_get("/", index)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); returns the base URL."""
        self._runner = web.AppRunner(self.web_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound_port}"
        await self._sender.open()
        return self.url

    async def stop(self) -> None:
        """Stop delivering, close live streams and shut the server down."""
        self._stopping.set()
        await self._deliverer.stop()
        await self.workspace.stop()
        if self._runner is not None:
            await control.close_streams(self._runner.app)
            await self._runner.cleanup()
            self._runner = None
        await self._sender.close()
        if self._autosave is not None:
            self._autosave.close()

    async def __aenter__(self) -> LocalSlack:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _endpoint(self, kind: str) -> str | None:
        """The app's Request URL for events, commands or interactivity."""
        if kind == "commands" and self.commands_url:
            return self.commands_url
        if kind == "interactivity" and self.interactivity_url:
            return self.interactivity_url
        return self.app_url

    def _on_delivery(self, attempt: Delivery) -> None:
        """Publish each delivery attempt as a change."""
        self.workspace.notify("delivery", asdict(attempt), attempt.channel)

    # --- people do things ----------------------------------------------------------------

    def _member(self, user: str, channel: str) -> tuple[User, Channel]:
        """A user and a channel they belong to (ids, names or `#name`)."""
        with python_api():
            who, where = self.world.user(user), self.world.channel(channel)
        if who.id not in where.members:
            raise LocalSlackError(f"{who.id} is not a member of {where.id}")
        return who, where

    async def post(
        self,
        user: str,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        *,
        files: list[dict[str, Any]] | None = None,
    ) -> str:
        """A user posts a message (in a thread, with files if given); returns its ts."""
        who, where = self._member(user, channel)
        with python_api():
            return str(self.workspace.post(who, where, text, {"files": files}, thread_ts)["ts"])

    async def edit(self, user: str, channel: str, ts: str, text: str) -> None:
        """A user edits their own message."""
        who, where = self._member(user, channel)
        with python_api():
            self.workspace.edit(who, where, ts, {"text": typed(text), "blocks": rich_text(typed(text))})

    async def delete(self, user: str, channel: str, ts: str) -> None:
        """A user deletes their own message."""
        who, where = self._member(user, channel)
        with python_api():
            self.workspace.delete(who, where, ts)

    async def react(self, user: str, channel: str, ts: str, name: str) -> None:
        """A user adds an emoji reaction."""
        who, where = self._member(user, channel)
        with python_api():
            self.workspace.react(who, where, ts, name.strip(":"))

    async def unreact(self, user: str, channel: str, ts: str, name: str) -> None:
        """A user removes their emoji reaction."""
        who, where = self._member(user, channel)
        with python_api():
            self.workspace.react(who, where, ts, name.strip(":"), add=False)

    async def slash_command(self, user: str, channel: str, command: str, text: str = "") -> AppReply:
        """A user runs a slash command; the app's immediate answer is shown and returned."""
        who, where = self._member(user, channel)
        with python_api():
            return await self._interactions.slash_command(who, where, command, text)

    async def click(
        self, user: str, channel: str, message_ts: str, action_id: str, value: str | None = None
    ) -> AppReply:
        """A user presses a button (or picks `value`) in a message or their ephemeral."""
        who, where = self._member(user, channel)
        with python_api():
            return await self._interactions.click(who, where, message_ts, action_id, value)

    async def click_view(self, user: str, view_id: str, action_id: str, value: str | None = None) -> AppReply:
        """A user presses a button in their Home tab or an open modal."""
        with python_api():
            return await self._interactions.click_view(self.world.user(user), view_id, action_id, value)

    async def submit_view(
        self, user: str, view_id: str, values: dict[str, dict[str, Any]] | None = None
    ) -> AppReply:
        """A user submits a modal with `{block_id: {action_id: text_or_state}}` values."""
        with python_api():
            return await self._interactions.submit_view(self.world.user(user), view_id, values or {})

    async def close_view(self, user: str, view_id: str, clear: bool = False) -> AppReply | None:
        """A user closes their modal (Cancel; × with `clear`); the app hears of it if it asked."""
        with python_api():
            return await self._interactions.close_view(self.world.user(user), view_id, clear)

    async def open_home(self, user: str) -> None:
        """A user opens the app's Home tab (`app_home_opened`)."""
        with python_api():
            self.workspace.open_home(self.world.user(user))

    async def verify_url(self, challenge: str = "localslack-challenge") -> AppReply:
        """Send the `url_verification` challenge; the app should echo it back."""
        return await self._interactions.verify_url(challenge)

    # --- what Slack holds ----------------------------------------------------------------

    def messages(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        """The channel's timeline, or with `thread_ts` the thread (parent first), oldest first."""
        with python_api():
            where = self.world.channel(channel)
            found = (
                self.workspace.store.thread(where.id, thread_ts)
                if thread_ts
                else self.workspace.store.timeline(where.id)
            )
        return copy.deepcopy(found)

    def ephemerals(self, user: str, channel: str | None = None) -> list[Message]:
        """The ephemeral messages shown to one user (each carries its `channel`)."""
        with python_api():
            who = self.world.user(user)
        found = self.workspace.store.ephemerals.get(who.id, [])
        return copy.deepcopy([m for m in found if channel in (None, m["channel"])])

    def views(self, user: str) -> list[dict[str, Any]]:
        """The user's Home tab view and open modals."""
        with python_api():
            return copy.deepcopy(self.workspace.store.views_of(self.world.user(user).id))

    def calls(self, method: str | None = None) -> list[Call]:
        """Recorded Web API calls, optionally of one method."""
        return [c for c in self._webapi.calls if method in (None, c.method)]

    def events(self, type: str | None = None) -> list[Payload]:
        """Event envelopes sent to the app (once per event_id), optionally of one event type."""
        sent = self.workspace.events
        return copy.deepcopy([e for e in sent if type in (None, e["event"]["type"])])

    def deliveries(self, event_id: str | None = None) -> list[Delivery]:
        """Every delivery attempt (first tries and retries)."""
        return [d for d in self._deliverer.log if event_id in (None, d.event_id)]

    # --- waiting and watching ------------------------------------------------------------

    def subscribe(self, target: Subscriber) -> Callable[[], None]:
        """Receive every `Change` in an `asyncio.Queue` or (async) callback; returns unsubscribe."""
        return self.workspace.subscribe(target)

    @property
    def busy(self) -> bool:
        """Whether deliveries, Web API calls or interactions are in progress."""
        return self.workspace.busy or bool(self._webapi.in_flight or self._interactions.in_flight)

    async def drain(self, quiet: float = 0.1, timeout: float = 10.0) -> None:
        """Wait until nothing is in flight and nothing changed for `quiet` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                while self.busy:
                    await asyncio.sleep(0.005)
                version = self.workspace.version
                await asyncio.sleep(quiet)
                if not self.busy and version == self.workspace.version:
                    return

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Wait until `predicate()` is truthy (checked after every change); returns its value."""
        async with asyncio.timeout(timeout):
            while not (result := predicate()):
                await self.workspace.next_change()
        return result


__all__ = ["Change", "LocalSlack"]
