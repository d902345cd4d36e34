"""The handoff bridge: a conversation's effects carried out in Slack.

`handoff.conversation.transition` decides; the bridge renders its effects. Messages (what the
customer is told, the card, relayed copies, re-alerts) go through the outbox under keys made
from the event that caused them, so each is posted once however often that event arrives.
A move is decided and rendered first, then its new state and its messages are stored in one
transaction (`settle`): a crash leaves the thread either unmoved or moved with its messages.
Edits, deletions, card updates and private explanations are direct Web API calls (repeating
them changes nothing). After a message lands, what it became is fed back: a card's ts
(`CardPosted`), a relayed copy's ts (`link_relay`), Baton's answer (`BotAnswered`).
Raises nothing of its own; Slack errors surface to the caller's error log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import cards, render
from bot.app import Baton
from handoff import handoffs, learning
from handoff.conversation import (
    BotAnswered,
    CardPosted,
    ClaimRefused,
    Conversation,
    Effect,
    Event,
    Explain,
    FollowDelete,
    FollowEdit,
    Place,
    PostCard,
    ReAlert,
    RelayToAgents,
    RelayToCustomer,
    Status,
    Step,
    Tell,
    TellCustomer,
    Tick,
    UpdateCard,
)
from handoff.handoffs import Key, TurnKind, stamp
from handoff.outbox import Outgoing, Queued
from models.kb import Entry

log = logging.getLogger("baton.bridge")

TICK_MAX = 30.0  # seconds between re-alert checks at most
SETTLE_TRIES = 5  # decide-render-store rounds when another process moves the thread meanwhile

Also = Callable[[Step, list[Outgoing]], None]  # more writes that belong to a move's transaction


def now() -> datetime:
    """The bridge's clock (events carry times; the pure code has none)."""
    return datetime.now(UTC)


def card_key(c: Conversation) -> str:
    """The outbox key of a conversation's card for its current handoff."""
    return f"card:{c.channel}:{c.thread_ts}:{c.episode}:{stamp(c.waiting_since)}"


CARD_GONE = frozenset({"message_not_found", "cant_update_message", "channel_not_found", "is_archived"})


def relay_key(source: Place) -> str:
    """The outbox key of a relayed copy of the message `source`."""
    return f"relay:{source.channel}:{source.ts}"


class Bridge:
    """Carries out conversation effects for one `Baton`."""

    def __init__(self, baton: Baton) -> None:
        self.baton = baton
        self.db = baton.services.db
        baton.courier.on_sent = self.landed  # also what the sweep delivers, e.g. after a restart

    # -- moving conversations ----------------------------------------------------------------
    async def move(
        self, key: Key, event: Event, cause: str, suggestion: Entry | None = None, also: Also | None = None
    ) -> Step:
        """Apply one event to a thread (one at a time per thread) and carry out its effects."""
        async with self.baton.thread_lock(*key):
            step, queued = await self.settle(key, event, cause, suggestion, also)
        await self.deliver(queued)
        await self.act(*step)
        return step

    async def settle(
        self, key: Key, event: Event, cause: str, suggestion: Entry | None = None, also: Also | None = None
    ) -> tuple[Step, list[Queued]]:
        """Decide and render a move, then store the state, its messages and `also` in one transaction.

        The caller holds the thread's lock; a conflict can only come from another process.
        """
        for _ in range(SETTLE_TRIES):
            before, (after, effects) = handoffs.preview(self.db, key, event)
            messages = await self.messages(after, effects, cause, suggestion)
            try:
                with handoffs.exclusive(self.db):
                    handoffs.commit(self.db, key, before, after)
                    queued = [self.baton.outbox.put(m) for m in messages]
                    if also is not None:
                        also((after, effects), messages)
            except handoffs.Moved:
                continue
            return (after, effects), queued
        raise handoffs.Moved(f"conversation {key[0]} {key[1]} kept changing")

    # -- messages through the outbox ---------------------------------------------------------
    async def messages(
        self, c: Conversation, effects: Sequence[Effect], cause: str, suggestion: Entry | None = None
    ) -> list[Outgoing]:
        """The messages the effects post, rendered (lookups happen here, before any write)."""
        found = [await self.message(c, effect, cause, suggestion) for effect in effects]
        return [message for message in found if message is not None]

    async def message(
        self, c: Conversation, effect: Effect, cause: str, suggestion: Entry | None
    ) -> Outgoing | None:
        """The message one effect posts, if it posts one."""
        if isinstance(effect, TellCustomer):
            return self.tell(c, effect, cause)
        if isinstance(effect, PostCard):
            return await self.card(c, effect, suggestion)
        if isinstance(effect, RelayToAgents):
            return await self.relayed(effect.source, effect.card, effect.user, effect.text, customer=True)
        if isinstance(effect, RelayToCustomer):
            return await self.relayed(effect.source, effect.thread, effect.agent, effect.text, customer=False)
        if isinstance(effect, ReAlert):
            return await self.realert(c, effect, cause)
        return None

    def tell(self, c: Conversation, effect: TellCustomer, cause: str) -> Outgoing:
        """What Baton says in the customer's thread."""
        thread = effect.thread
        if effect.kind is Tell.PERSON_JOINING:
            return outgoing_in(
                f"joining:{cause}", thread, render.handoff_notice(self.baton.settings.handoff_text), "handoff"
            )
        if effect.kind is Tell.CLOSING:
            key = f"closing:{c.channel}:{c.thread_ts}:{c.episode}"
            reasons = [r.kind.value for r in c.reasons]
            return outgoing_in(
                key, thread, cards.closing(effect.agent), "closing", agent=effect.agent, reasons=reasons
            )
        if effect.kind is Tell.BACK_TO_BOT:
            return outgoing_in(f"back:{cause}", thread, cards.back_to_bot(), "back")
        return outgoing_in(f"offer:{cause}", thread, cards.offer_human(c.channel, c.thread_ts), "offer")

    async def card(self, c: Conversation, effect: PostCard, suggestion: Entry | None) -> Outgoing:
        """The handoff card for the agent channel."""
        people = [await self.baton.person(user) for user in effect.customers]
        teams = {p.team for p in people if p.team} - {self.baton.team_id}
        org = await self.baton.org(sorted(teams)[0]) if teams else await self.baton.org(self.baton.team_id)
        names = {p.id: p.name for p in people}
        lines = tuple(
            cards.Line(names.get(t.who, "Baton" if t.kind is TurnKind.BATON else t.who), t.text)
            for t in handoffs.transcript(self.db, c.key, c.episode)
            if t.kind is not TurnKind.NOTE
        )
        info = cards.CardInfo(
            channel=c.channel,
            thread_ts=c.thread_ts,
            customers=tuple(p.name for p in people),
            org=org,
            external=bool(teams),
            permalink=await self.permalink(effect.thread),
            reasons=effect.reasons,
            transcript=lines,
            suggestion=suggestion,
        )
        agents = Place(self.baton.settings.agent_channel, "")
        meta = {"channel": c.channel, "thread_ts": c.thread_ts}
        return outgoing_in(card_key(c), agents, cards.card(info), "card", **meta)

    async def relayed(self, source: Place, to: Place, author: str, text: str, customer: bool) -> Outgoing:
        """A copy of a message in the other thread, under its author's name and avatar."""
        person = await self.baton.person(author)
        name = person.name
        if customer and person.team and person.team != self.baton.team_id:
            name = f"{person.name} ({await self.baton.org(person.team)})"
        meta = {
            "src_channel": source.channel,
            "src_ts": source.ts,
            "username": name,
            "icon_url": person.avatar,
        }
        return Outgoing(relay_key(source), to.channel, text or " ", (), to.ts, "relay", meta)

    async def realert(self, c: Conversation, effect: ReAlert, cause: str) -> Outgoing:
        """A reminder in the agent channel."""
        link = await self.permalink(effect.card) if effect.card else None
        agents = Place(self.baton.settings.agent_channel, "")
        return outgoing_in(
            f"realert:{c.channel}:{c.thread_ts}:{cause}",
            agents,
            cards.realert(effect.waited, effect.reasons, link),
            "realert",
        )

    async def permalink(self, where: Place) -> str | None:
        """A link to a message (None when Slack will not give one)."""
        try:
            found = await self.baton.client.chat_getPermalink(channel=where.channel, message_ts=where.ts)
        except SlackApiError:
            return None
        return str(found.get("permalink") or "") or None

    # -- after delivery --------------------------------------------------------------------------
    async def deliver(self, queued: Sequence[Queued]) -> None:
        """Deliver messages in order, then feed back what each became."""
        for item in queued:
            sent = await self.baton.courier.deliver(item)
            if sent.ts:
                self.landed(sent)

    def landed(self, sent: Queued) -> None:
        """Remember where a delivered message is."""
        m, ts = sent.message, str(sent.ts)
        if m.kind == "card":
            key = (m.meta["channel"], m.meta["thread_ts"])
            handoffs.apply(self.db, key, CardPosted(Place(m.channel, ts), now()))
        elif m.kind == "relay":
            handoffs.link_relay(self.db, m.meta["src_channel"], m.meta["src_ts"], m.channel, ts)
        elif m.kind == "answer" and m.thread_ts:
            handoffs.apply(self.db, (m.channel, m.thread_ts), BotAnswered(m.meta.get("entry"), ts, now()))

    def copy_of(self, source: Place) -> Place | None:
        """Where the message `source` was relayed to, if it was."""
        found = handoffs.relayed(self.db, source.channel, source.ts)
        if found is not None:
            return found
        sent = self.baton.outbox.get(relay_key(source))
        return Place(sent.message.channel, sent.ts) if sent and sent.ts else None

    # -- direct calls ----------------------------------------------------------------------------
    async def act(self, c: Conversation, effects: Sequence[Effect]) -> None:
        """Carry out the effects that are not new messages."""
        for effect in effects:
            if isinstance(effect, UpdateCard):
                await self.update_card(effect, c)
            elif isinstance(effect, FollowEdit):
                await self.follow_edit(effect)
            elif isinstance(effect, FollowDelete):
                await self.follow_delete(effect)
            elif isinstance(effect, ClaimRefused):
                note = " Your message was not sent to the customer." if effect.reply_ts else ""
                text = f"<@{effect.owner}> already has this conversation.{note}"
                await self.explain(effect.agent, text, c, in_thread=effect.reply_ts is not None)
            elif isinstance(effect, Explain):
                await self.explain(effect.user, effect.text, c, effect.in_thread)

    async def update_card(self, effect: UpdateCard, c: Conversation) -> None:
        """Show the conversation's new status on its card (resolved: offer to save it as FAQ)."""
        posted = self.baton.outbox.sent_as(effect.card.channel, effect.card.ts)
        if posted is None:
            return
        status = cards.status_text(effect.status, effect.agent, effect.by)
        blocks = cards.with_status(posted.message.blocks, status)
        if effect.status is Status.RESOLVED and learning.episode_draft(self.db, c.key, c.episode):
            blocks = cards.with_save_button(blocks, cards.target(c.channel, c.thread_ts, str(c.episode)))
        try:
            await self.baton.client.chat_update(
                channel=effect.card.channel, ts=effect.card.ts, text=posted.message.text, blocks=blocks
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in CARD_GONE:
                raise
            why = exc.response["error"]
            log.warning("the card of %s:%s is gone from Slack (%s)", c.channel, c.thread_ts, why)

    async def follow_edit(self, effect: FollowEdit) -> None:
        """Edit a relayed copy to the new text."""
        copy = self.copy_of(effect.source)
        if copy is not None:
            await self.baton.client.chat_update(channel=copy.channel, ts=copy.ts, text=effect.text or " ")

    async def follow_delete(self, effect: FollowDelete) -> None:
        """Delete a relayed copy."""
        copy = self.copy_of(effect.source)
        if copy is not None:
            try:
                await self.baton.client.chat_delete(channel=copy.channel, ts=copy.ts)
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":  # deleted already
                    raise

    async def explain(self, user: str, text: str, c: Conversation, in_thread: bool = False) -> None:
        """Tell one person privately: in the card's thread about a reply there, else in the channel."""
        channel = c.card.channel if c.card else self.baton.settings.agent_channel
        thread = c.card.ts if c.card and in_thread else None
        await self.baton.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread)

    # -- re-alerts ---------------------------------------------------------------------------------
    async def tick_forever(self) -> None:
        """Re-alert unclaimed handoffs, for as long as Baton runs."""
        patience = self.baton.settings.realert_after
        every = max(0.05, min(TICK_MAX, patience / 4))
        while True:
            await asyncio.sleep(every)
            try:
                await self.tick(timedelta(seconds=patience))
            except (SlackApiError, OSError) as exc:  # the next tick tries again
                log.warning("re-alert check failed: %s", exc)

    async def tick(self, patience: timedelta) -> None:
        """One check of every open handoff."""
        for c in handoffs.open_handoffs(self.db):
            if c.card is None:
                self.recover_card(c)
            at = now()
            await self.move(c.key, Tick(at, patience), cause=stamp(at) or "")

    def recover_card(self, c: Conversation) -> None:
        """A card the sweep delivered (not the turn that posted it): remember where it is."""
        sent = self.baton.outbox.get(card_key(c))
        if sent is not None and sent.ts:
            self.landed(sent)


def outgoing_in(key: str, where: Place, rendered: dict[str, Any], kind: str, **meta: Any) -> Outgoing:
    """A rendered message for the outbox, in the thread `where` (top level without a ts)."""
    blocks = tuple(rendered.get("blocks") or ())
    return Outgoing(key, where.channel, rendered["text"], blocks, where.ts or None, kind, meta)
