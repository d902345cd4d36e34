"""Baton's Bolt listeners: Slack payload in, domain value, decision, rendered reply, one Slack call.

Every listener answers Slack at once. A customer's question is claimed (so retries and the
second copy of an @mention are dropped) and answered in the background: the checks run off
the event loop, and the reply goes through the outbox. Every subscribed event has a
listener, so Slack never sees a 404.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import render
from bot.app import Baton
from bot.brain import TurnCheck, clean_turn
from bot.customers import is_customer, should_answer
from handoff.inbox import Claim
from handoff.outbox import Outgoing, Queued
from handoff.triggers import Action, History, advance, is_blank
from handoff.tuning import load_settings

log = logging.getLogger("baton.listeners")

QUESTION_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})  # edits, joins… are not questions
Ack = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Turn:
    """One message from a person that Baton may answer."""

    event_id: str
    channel: str
    ts: str
    thread_ts: str | None
    user: str
    team: str | None
    text: str
    mentioned: bool
    files_only: bool

    @property
    def thread(self) -> str:
        """The thread Baton answers in: the message's own, or the one it is part of."""
        return self.thread_ts or self.ts


@dataclass(frozen=True)
class Pick:
    """A customer pressed one of the entries Baton offered."""

    user: str
    team: str | None
    channel: str
    message_ts: str
    thread_ts: str
    entry_id: str


def read_turn(body: dict[str, Any], bot_user_id: str | None) -> Turn | None:
    """The turn in a `message` or `app_mention` event, or None for bots, edits and the like."""
    event = body.get("event") or {}
    user = event.get("user")
    if event.get("bot_id") or event.get("subtype") not in QUESTION_SUBTYPES:
        return None
    if not user or user == bot_user_id or not event.get("channel") or not event.get("ts"):
        return None
    text = event.get("text") or ""
    return Turn(
        event_id=str(body.get("event_id") or ""),
        channel=event["channel"],
        ts=event["ts"],
        thread_ts=event.get("thread_ts"),
        user=user,
        team=event.get("user_team") or event.get("team"),
        text=text,
        mentioned=bool(bot_user_id) and f"<@{bot_user_id}" in text,
        files_only=bool(event.get("files")) and is_blank(clean_turn(text)),
    )


def read_pick(body: dict[str, Any]) -> Pick | None:
    """The choice in a `block_actions` payload from Baton's clarifying question."""
    container = body.get("container") or {}
    action = (body.get("actions") or [{}])[0]
    user = body.get("user") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    message_ts = container.get("message_ts")
    if not (channel and message_ts and action.get("value") and user.get("id")):
        return None
    return Pick(
        user=user["id"],
        team=user.get("team_id"),
        channel=channel,
        message_ts=message_ts,
        thread_ts=container.get("thread_ts") or (body.get("message") or {}).get("thread_ts") or message_ts,
        entry_id=action["value"],
    )


def reply_for(check: TurnCheck) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """What to post for a checked turn: the message, its kind and what to remember about it."""
    decision = check.decision
    if decision.action is Action.ANSWER and check.answer is not None:
        return render.answer(check.answer), "answer", {"entry": check.answer.id}
    if decision.action is Action.HANDOFF:
        return render.handoff_notice(), "handoff", {"reasons": [r.kind.value for r in decision.reasons]}
    if len(check.choices) >= 2:
        return render.clarify(check.choices[:2]), "clarify", {"choices": [e.id for e in check.choices[:2]]}
    return render.rephrase(), "rephrase", {}


def reply_key(turn: Turn) -> str:
    """The outbox key of Baton's reply to a turn: one reply per message, however often it arrives."""
    return f"reply:{turn.channel}:{turn.ts}"


def outgoing(
    key: str, channel: str, thread_ts: str, message: dict[str, Any], kind: str, **meta: Any
) -> Outgoing:
    """A rendered message as an outbox entry."""
    blocks = tuple(message.get("blocks") or ())
    return Outgoing(key, channel, message["text"], blocks, thread_ts, kind, meta)


class Listeners:
    """The listeners, sharing one `Baton`."""

    def __init__(self, baton: Baton) -> None:
        self.baton = baton

    # -- messages and mentions ---------------------------------------------------------------
    async def message(self, body: dict[str, Any], context: dict[str, Any]) -> None:
        """`message` and `app_mention`: claim a person's message and answer it in the background."""
        turn = read_turn(body, context.get("bot_user_id"))
        if turn is None or not await self.is_for_baton(turn):
            return
        claim = self.baton.inbox.claim(turn.event_id, turn.channel, turn.ts)
        if claim is None:
            log.debug("already taken: event %s (%s %s)", turn.event_id, turn.channel, turn.ts)
            return
        self.baton.spawn(
            self.take_turn(turn, claim), event_id=turn.event_id, channel=turn.channel, ts=turn.ts
        )

    async def is_for_baton(self, turn: Turn) -> bool:
        """Whether Baton answers this turn (looked up before the ack: if Slack fails, it retries)."""
        baton = self.baton
        if turn.channel == baton.settings.agent_channel:
            return False
        place, staff = await baton.place(turn.channel), await baton.staff()
        return should_answer(
            turn.user, turn.team, place, turn.mentioned, staff, baton.settings.support_channels
        )

    async def take_turn(self, turn: Turn, claim: Claim) -> None:
        """Decide what the turn needs, store it with the reply, then deliver the reply."""
        baton = self.baton
        async with baton.thread_lock(turn.channel, turn.thread):
            if baton.inbox.open_handoff(turn.channel, turn.thread):
                baton.inbox.finish(claim)  # a person is taking this thread over
                return
            queued = self.note_file(turn, claim) if turn.files_only else await self.answer(turn, claim)
        await baton.courier.deliver(queued)

    def note_file(self, turn: Turn, claim: Claim) -> Queued:
        """A file without words: ask, politely, for the question in text."""
        message = outgoing(reply_key(turn), turn.channel, turn.thread, render.file_note(), "note")
        with self.baton.services.db.atomic():
            queued = self.baton.outbox.put(message)
            self.baton.inbox.finish(claim)
        return queued

    async def answer(self, turn: Turn, claim: Claim) -> Queued:
        """Run the checks; store the reply with the thread's new history (and any handoff)."""
        baton, db = self.baton, self.baton.services.db
        history = baton.inbox.history(turn.channel, turn.thread)
        check = await baton.services.brain.check(turn.text, history, load_settings(db))
        message, kind, meta = reply_for(check)
        with db.atomic():
            baton.inbox.save_history(turn.channel, turn.thread, advance(history, check.decision))
            if check.decision.action is Action.HANDOFF:
                baton.inbox.request_handoff(turn.channel, turn.thread, turn.user, check.decision.reasons)
            queued = baton.outbox.put(
                outgoing(reply_key(turn), turn.channel, turn.thread, message, kind, **meta)
            )
            baton.inbox.finish(claim)
        what = meta.get("entry") or ",".join(meta.get("reasons") or meta.get("choices") or [])
        log.info("turn %s in %s: %s %s (%.0f ms)", turn.event_id, turn.channel, kind, what, check.elapsed_ms)
        return queued

    # -- a choice from a clarifying question -------------------------------------------------
    async def pick(self, ack: Ack, body: dict[str, Any], respond: Ack) -> None:
        """A button of the clarifying question: answer with that entry in the thread."""
        await ack()
        pick = read_pick(body)
        if pick is not None:
            self.baton.spawn(self.answer_pick(pick, respond), channel=pick.channel, action=render.PICK_ACTION)

    async def answer_pick(self, pick: Pick, respond: Ack) -> None:
        """Post the picked entry's answer once, then show the choice in place of the buttons."""
        baton = self.baton
        place, staff = await baton.place(pick.channel), await baton.staff()
        entry = baton.services.knowledge.get(pick.entry_id)
        if not is_customer(pick.user, pick.team, place, staff) or entry is None:
            await respond(**(render.pick_refused() if entry else render.rephrase()), replace_original=False)
            return
        key = f"pick:{pick.channel}:{pick.message_ts}"
        message = outgoing(key, pick.channel, pick.thread_ts, render.answer(entry), "answer", entry=entry.id)
        with baton.services.db.atomic():
            baton.inbox.save_history(pick.channel, pick.thread_ts, History())
            queued = baton.outbox.put(message)  # a second press finds the first choice
        await baton.courier.deliver(queued)
        first = baton.services.knowledge.get(queued.message.meta.get("entry", "")) or entry
        await respond(**render.chosen(first), replace_original=True)

    # -- the rest ----------------------------------------------------------------------------
    async def home(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """`app_home_opened`: publish the Home tab."""
        if event.get("tab", "home") == "home" and event.get("user"):
            self.baton.spawn(
                self.publish_home(event["user"], client), user=event["user"], event="app_home_opened"
            )

    async def publish_home(self, user: str, client: AsyncWebClient) -> None:
        """Publish the Home tab for one user."""
        baton = self.baton
        stats = render.HomeStats(
            faq_entries=len(baton.services.knowledge.entries()),
            open_handoffs=len(baton.inbox.handoff_requests()),
            support_channels=baton.settings.support_channels,
            agent_channel=baton.settings.agent_channel,
        )
        await client.views_publish(user_id=user, view=render.home(stats))

    async def command(self, ack: Ack) -> None:
        """`/baton`: what Baton does (the admin commands come with the handoff bridge)."""
        await ack(**render.command_help())

    async def ignore(self) -> None:
        """Events Baton is subscribed to but leaves to others (reactions: the bridge's CSAT)."""


def register_listeners(app: AsyncApp, baton: Baton) -> Listeners:
    """Attach every listener to the app; the last one takes any other event quietly."""
    listeners = Listeners(baton)
    app.event("message")(listeners.message)
    app.event("app_mention")(listeners.message)
    app.action(re.compile(f"^{render.PICK_ACTION}_"))(listeners.pick)
    app.event("app_home_opened")(listeners.home)
    app.command("/baton")(listeners.command)
    app.event("reaction_added")(listeners.ignore)
    app.event("reaction_removed")(listeners.ignore)
    app.event(re.compile(".*"))(listeners.ignore)
    return listeners
