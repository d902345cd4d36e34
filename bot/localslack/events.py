"""Events API payloads, request signing and delivery with Slack's retry rules.

Payload builders are pure functions. `Sender` posts a signed body to the app; `Deliverer`
keeps one ordered queue per channel, retries like Slack (`X-Slack-Retry-Num`,
`X-Slack-Retry-Reason`, same `event_id`) and logs every attempt.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import io
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.localslack.world import Channel, World

Payload = dict[str, Any]
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
MESSAGE_SUBSCRIPTIONS = {"channel": "channels", "group": "groups", "im": "im", "mpim": "mpim"}


def sign(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str, content_type: str) -> dict[str, str]:
    """Headers Slack sends with every request to an app."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(secret, timestamp, body),
    }


def subscription_for(event: Payload, channel: Channel | None) -> str:
    """The Events API subscription an event needs (`message.channels`, `reaction_added`…)."""
    if event["type"] == "message" and channel is not None:
        return f"message.{MESSAGE_SUBSCRIPTIONS[channel.channel_type]}"
    return str(event["type"])


def envelope(world: World, event: Payload, event_id: str, channel: Channel | None, token: str) -> Payload:
    """The `event_callback` wrapper Slack posts to the Request URL."""
    app = world.app
    authorization = {
        "enterprise_id": None,
        "team_id": app.team_id,
        "user_id": app.user_id,
        "is_bot": True,
        "is_enterprise_install": False,
    }
    return {
        "token": token,
        "team_id": app.team_id,
        "context_team_id": channel.context_team_id if channel else app.team_id,
        "context_enterprise_id": None,
        "api_app_id": app.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(event["event_ts"])),
        "authorizations": [authorization],
        "is_ext_shared_channel": bool(channel and channel.is_ext_shared),
        "event_context": f"4-{event_id}",
    }


def message_event(channel: Channel, message: Payload) -> Payload:
    """A `message` event for a new message."""
    event = copy.deepcopy(message)
    event.pop("reactions", None)
    return {
        **event,
        "channel": channel.id,
        "event_ts": message["ts"],
        "channel_type": channel.channel_type,
    }


def mention_event(channel: Channel, message: Payload) -> Payload:
    """An `app_mention` event for a message that mentions the bot."""
    keep = (
        "user",
        "text",
        "ts",
        "team",
        "user_team",
        "source_team",
        "blocks",
        "client_msg_id",
        "thread_ts",
    )
    event = {k: copy.deepcopy(message[k]) for k in keep if k in message}
    return {"type": "app_mention", **event, "channel": channel.id, "event_ts": message["ts"]}


def changed_event(channel: Channel, message: Payload, previous: Payload, ts: str) -> Payload:
    """A `message_changed` event after an edit."""
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": copy.deepcopy(message),
        "previous_message": previous,
        "channel": channel.id,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel.channel_type,
    }


def deleted_event(channel: Channel, previous: Payload, ts: str) -> Payload:
    """A `message_deleted` event."""
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": previous["ts"],
        "previous_message": previous,
        "channel": channel.id,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel.channel_type,
    }


def reaction_event(kind: str, user: str, name: str, channel: Channel, message: Payload, ts: str) -> Payload:
    """A `reaction_added` / `reaction_removed` event."""
    return {
        "type": kind,
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": channel.id, "ts": message["ts"]},
        "item_user": message.get("user"),
        "event_ts": ts,
    }


def home_opened_event(user: str, channel: Channel, view: Payload | None, ts: str) -> Payload:
    """An `app_home_opened` event for the Home tab."""
    event = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel.id,
        "tab": "home",
        "event_ts": ts,
    }
    return {**event, "view": copy.deepcopy(view)} if view else event


@dataclass(frozen=True)
class AppReply:
    """The app's synchronous answer to one request (status is None if none came)."""

    status: int | None
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    error: str | None = None  # http_timeout, connection_failed

    @property
    def ok(self) -> bool:
        """Whether the app answered 2xx in time."""
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class Sender:
    """Posts signed requests to the app and reports what came back."""

    def __init__(self, signing_secret: str) -> None:
        self.signing_secret = signing_secret
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the HTTP session (inside the running loop)."""
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        url: str,
        body: str,
        content_type: str,
        timeout: float,
        extra: dict[str, str] | None = None,
    ) -> AppReply:
        """POST a signed body; timeouts and connection errors become an `AppReply`."""
        if self._session is None:
            raise RuntimeError("LocalSlack is not started")
        headers = {**signed_headers(self.signing_secret, body, content_type), **(extra or {})}
        try:
            limit = aiohttp.ClientTimeout(total=timeout)
            data = io.BytesIO(body.encode())  # raw bytes over 1 MiB would block the loop (aiohttp warns)
            async with self._session.post(url, data=data, headers=headers, timeout=limit) as resp:
                headers = {k.lower(): v for k, v in resp.headers.items()}
                return AppReply(resp.status, await resp.text(), headers)
        except TimeoutError:
            return AppReply(None, error="http_timeout")
        except aiohttp.ClientError:
            return AppReply(None, error="connection_failed")


@dataclass(frozen=True)
class DeliveryConfig:
    """How Slack waits for and retries event deliveries."""

    ack_timeout: float = 3.0
    retry_backoff: tuple[float, ...] = (0.0, 1.0, 5.0)
    max_retries: int = 3


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver one event."""

    event_id: str
    event_type: str
    channel: str | None
    retry_num: int
    status: int | None
    reason: str | None
    elapsed: float
    time: float

    @property
    def ok(self) -> bool:
        """Whether the app acknowledged this attempt in time."""
        return self.status is not None and 200 <= self.status < 300


class Deliverer:
    """Ordered per-channel event delivery with Slack-style retries."""

    def __init__(self, sender: Sender, url: Callable[[], str | None], config: DeliveryConfig) -> None:
        self.sender = sender
        self.url = url
        self.config = config
        self.log: list[Delivery] = []
        self.on_attempt: Callable[[Delivery], None] = lambda _: None
        self._queues: dict[str, deque[Payload]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    @property
    def pending(self) -> int:
        """Events queued or being delivered."""
        return sum(len(q) for q in self._queues.values()) + len(self._workers)

    def enqueue(self, key: str, payload: Payload) -> None:
        """Queue an envelope behind earlier events of the same channel."""
        self._queues.setdefault(key, deque()).append(payload)
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._drain_queue(key))

    async def stop(self) -> None:
        """Abandon queued and in-flight deliveries."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        self._queues.clear()

    async def _drain_queue(self, key: str) -> None:
        """Deliver one channel's events one after another."""
        queue = self._queues[key]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            self._workers.pop(key, None)

    async def _deliver(self, payload: Payload) -> None:
        """Try once, then retry up to `max_retries` times while the app fails."""
        reason: str | None = None
        for retry_num in range(self.config.max_retries + 1):
            if retry_num:
                await asyncio.sleep(self._backoff(retry_num))
            url = self.url()
            if url is None:
                return
            reply = await self._attempt(url, payload, retry_num, reason)
            if reply.ok or reply.headers.get("x-slack-no-retry") == "1":
                return
            reason = reply.error or "http_error"

    def _backoff(self, retry_num: int) -> float:
        """Seconds to wait before retry number `retry_num`."""
        backoff = self.config.retry_backoff or (0.0,)
        return backoff[min(retry_num, len(backoff)) - 1]

    async def _attempt(self, url: str, payload: Payload, retry_num: int, reason: str | None) -> AppReply:
        """One signed POST, logged as a `Delivery`."""
        extra = (
            {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason or ""} if retry_num else {}
        )
        started = time.monotonic()
        body = json.dumps(payload)
        reply = await self.sender.send(url, body, "application/json", self.config.ack_timeout, extra)
        event = payload.get("event", {})
        attempt = Delivery(
            event_id=payload.get("event_id", ""),
            event_type=event.get("type", payload.get("type", "")),
            channel=event.get("channel") or event.get("item", {}).get("channel"),
            retry_num=retry_num,
            status=reply.status,
            reason=reply.error or (None if reply.ok else "http_error"),
            elapsed=time.monotonic() - started,
            time=time.time(),
        )
        self.log.append(attempt)
        self.on_attempt(attempt)
        return reply
