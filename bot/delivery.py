"""Delivering the outbox to Slack: one `chat.postMessage` per message, retried until it lands.

A 429 waits for Slack's Retry-After; 5xx answers, timeouts and connection errors wait with
exponential backoff. Those last failures are ambiguous (Slack may have posted the message
before the answer was lost), so before trying again the courier looks for the message, which
carries its outbox key in Slack message metadata, and marks it sent if it is there: no
message is posted twice. Other Slack errors (`channel_not_found`, `invalid_blocks`...) fail the
message for good; it stays in the outbox with the error and is logged.
A message still failing after a few tries in a row is left to the sweep, which retries every
pending message when it is due, including those a previous process left behind.
Messages to one thread (or to one channel's top level) go out one at a time, oldest first: a
message waits while an earlier one to the same place is still pending, so a 429 or a 500 on
one relayed reply never lets the next overtake it. Messages the app holds back (`hold`: Baton
posts nothing to an agent channel that has been shared outside the company) stay pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from handoff.outbox import Outbox, Outgoing, Queued, RetryPolicy, State

log = logging.getLogger("baton.delivery")

METADATA_TYPE = "baton_message"
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
AMBIGUOUS = frozenset({"internal_error", "fatal_error", "request_timeout"})
NETWORK_ERRORS = (aiohttp.ClientError, SlackClientError, TimeoutError, ConnectionError, OSError)
SWEEP_EVERY = 5.0  # seconds between sweeps when nothing is due sooner
CLOCK_SKEW = 120.0  # seconds Baton's clock may be ahead of Slack's when looking for a message
HELD_FOR = 60.0  # seconds before messages held back (see `Courier.hold`) are tried again


@dataclass(frozen=True)
class Failure:
    """Why a try failed and what that means for the next one."""

    error: str
    retry_after: float | None = None  # Slack said when to come back (429)
    ambiguous: bool = False  # the message may have been posted all the same
    permanent: bool = False  # trying again cannot help


def classify(exc: Exception) -> Failure:
    """What a Web API exception means for delivery."""
    if isinstance(exc, SlackApiError):
        status = int(getattr(exc.response, "status_code", 200) or 200)
        code = str(exc.response.get("error") or f"http_{status}")
        if status == 429:
            return Failure(code, retry_after=_retry_after(exc.response.headers))
        if status >= 500 or code in TRANSIENT:
            return Failure(code, ambiguous=status >= 500 or code in AMBIGUOUS)
        return Failure(code, permanent=True)
    return Failure(type(exc).__name__, ambiguous=True)


def _retry_after(headers: Any) -> float:
    """Seconds from a Retry-After header (1 when it is missing or odd)."""
    try:
        return float(headers.get("Retry-After") or headers.get("retry-after") or 1)
    except (TypeError, ValueError, AttributeError):
        return 1.0


def metadata(message: Outgoing) -> dict[str, Any]:
    """Slack message metadata that lets Baton recognise its own message later."""
    return {"event_type": METADATA_TYPE, "event_payload": {"key": message.key, "kind": message.kind}}


def carries_key(found: dict[str, Any], key: str) -> bool:
    """Whether a message Slack returned is the outbox message with this key."""
    meta = found.get("metadata") or {}
    return meta.get("event_type") == METADATA_TYPE and (meta.get("event_payload") or {}).get("key") == key


async def go_ahead(message: Outgoing) -> str | None:
    """Every message may be posted."""
    return None


class Courier:
    """Sends outbox messages with `chat.postMessage`, honouring Slack's limits."""

    def __init__(
        self,
        client: AsyncWebClient,
        outbox: Outbox,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._busy: set[int] = set()
        self._lanes: dict[tuple[str, str | None], asyncio.Lock] = {}
        self._born = outbox.now()  # messages written before this are a previous process's
        self.on_sent: Callable[[Queued], None] = lambda sent: None  # told of every message that lands
        self.hold: Callable[[Outgoing], Awaitable[str | None]] = go_ahead  # why a message must wait
        self._wake = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Whether a delivery is under way."""
        return bool(self._busy)

    async def send(self, message: Outgoing) -> Queued:
        """Write a message to the outbox and deliver it."""
        return await self.deliver(self.outbox.put(message))

    async def deliver(self, queued: Queued, check: bool = False) -> Queued:
        """Try a pending message until it is sent, fails for good, or is left to the sweep.

        The messages to the same place go first, oldest first, and those after it follow.

        `check`: look for the message in Slack first (a previous process may have posted it).
        """
        if queued.state is not State.PENDING:
            return queued
        message = queued.message
        async with self._lane(message.channel, message.thread_ts):
            held = await self.hold(message)
            if held is not None:
                self._hold(message, held)
                return self.outbox.by_id(queued.id) or queued
            for waiting in self.outbox.pending_to(message.channel, message.thread_ts):
                if not await self._deliver_one(waiting, check):
                    break  # still pending: what comes after it waits, to keep the thread's order
        return self.outbox.by_id(queued.id) or queued

    def _lane(self, channel: str, thread_ts: str | None) -> asyncio.Lock:
        """One delivery at a time per thread (or per channel's top level)."""
        key = (channel, thread_ts)
        if key not in self._lanes:
            if len(self._lanes) > 10_000:  # forget idle lanes now and then
                self._lanes = {k: v for k, v in self._lanes.items() if v.locked()}
            self._lanes[key] = asyncio.Lock()
        return self._lanes[key]

    def _hold(self, message: Outgoing, reason: str) -> None:
        """Keep every pending message to this place for later: they may not be posted now."""
        for waiting in self.outbox.pending_to(message.channel, message.thread_ts):
            self.outbox.mark_retry(waiting.id, reason, HELD_FOR)
        log.error("messages to %s held back: %s", message.channel, reason)

    async def _deliver_one(self, queued: Queued, check: bool) -> bool:
        """Try one message in a row; whether it is done with (sent, or failed for good)."""
        self._busy.add(queued.id)
        try:
            await self._try_in_a_row(queued, check or queued.created_at < self._born)
        finally:
            self._busy.discard(queued.id)
        now = self.outbox.by_id(queued.id)
        return now is None or now.state is not State.PENDING

    async def _try_in_a_row(self, queued: Queued, check: bool) -> None:
        check = check or queued.attempts > 0  # a previous try may have posted it
        for round_ in range(1, self.policy.inline + 1):
            failure = await self._try_once(queued, check)
            if failure is None:
                return
            if failure.permanent:
                self.outbox.mark_failed(queued.id, failure.error)
                log.error(
                    "message %s to %s failed for good: %s",
                    queued.message.key,
                    queued.message.channel,
                    failure.error,
                )
                return
            delay = self.policy.delay(queued.attempts + round_, failure.retry_after)
            self.outbox.mark_retry(queued.id, failure.error, delay)
            log.warning("message %s: %s, next try in %.1fs", queued.message.key, failure.error, delay)
            check = check or failure.ambiguous
            if round_ == self.policy.inline:
                self._wake.set()
                return
            await self._sleep(delay)

    async def _try_once(self, queued: Queued, check: bool) -> Failure | None:
        """One try; None when the message is in Slack (posted now, or found from before)."""
        try:
            ts = await self._find(queued) if check else None
            if ts is None:
                ts = await self._post(queued.message)
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            return classify(exc)
        self.outbox.mark_sent(queued.id, ts)
        self.on_sent(self.outbox.by_id(queued.id) or queued)  # the sweep's deliveries too
        return None

    async def _post(self, message: Outgoing) -> str | None:
        response = await self.client.chat_postMessage(
            channel=message.channel,
            text=message.text,
            blocks=list(message.blocks) or None,
            thread_ts=message.thread_ts,
            metadata=metadata(message),
            unfurl_links=False,
            username=message.meta.get("username"),  # a relayed agent's name and avatar
            icon_url=message.meta.get("icon_url"),
        )
        return response.get("ts")

    async def _find(self, queued: Queued) -> str | None:
        """The ts of this message if an earlier, ambiguous try did post it."""
        message = queued.message
        since = f"{queued.created_at.timestamp() - CLOCK_SKEW:.6f}"  # Slack's ts are epoch seconds
        if message.thread_ts:
            response = await self.client.conversations_replies(
                channel=message.channel, ts=message.thread_ts, oldest=since, include_all_metadata=True
            )
        else:
            response = await self.client.conversations_history(
                channel=message.channel, oldest=since, include_all_metadata=True
            )
        found = [m for m in response.get("messages") or [] if carries_key(m, message.key)]
        return str(found[0]["ts"]) if found else None

    # -- the sweep ---------------------------------------------------------------------------
    def start(self) -> None:
        """Deliver what is pending now, then keep sweeping in the background."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="baton-outbox-sweep")

    async def stop(self) -> None:
        """Stop sweeping (pending messages stay in the outbox for the next start)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def sweep(self, everything: bool = False) -> int:
        """Deliver what is due (or, looking in Slack first, all that is pending); returns how many."""
        found = self.outbox.pending() if everything else self.outbox.due()
        todo = [queued for queued in found if queued.id not in self._busy]
        for queued in todo:
            await self.deliver(queued, check=everything)
        return len(todo)

    async def _sweep_forever(self) -> None:
        await self.sweep(everything=True)  # what a previous process left behind, maybe posted
        while True:
            self._wake.clear()
            await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._until_due())

    def _until_due(self) -> float:
        when = self.outbox.next_due()
        if when is None:
            return SWEEP_EVERY
        wait = (when - self.outbox.now()).total_seconds()
        return min(SWEEP_EVERY, max(0.01, wait))
