"""Baton's Bolt listeners: Slack payload in, domain value, decision, rendered reply, one Slack call.

Every listener answers Slack at once. A customer's question is claimed (so retries and the
second copy of an @mention are dropped) and answered in the background: the checks run off
the event loop, and the reply goes through the outbox. Slack never sends an acknowledged
event again, so the claim keeps the turn until its outcome is stored: a turn that failed, or
that a killed process left half done, is taken up again (`resume`). Every subscribed event
has a listener, so Slack never sees a 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import cards, render
from bot.admin import Admin
from bot.app import Baton
from bot.brain import TurnCheck, clean_turn
from bot.bridge import Bridge, now
from bot.customers import is_customer, should_answer
from bot.learning import Learning
from handoff import csat, handoffs
from handoff.conversation import (
    AgentDelete,
    AgentEdit,
    AgentReply,
    BatonAnswers,
    Claim,
    Conversation,
    CustomerDelete,
    CustomerEdit,
    CustomerMessage,
    Event,
    HandBack,
    HandoffTriggered,
    RelayToCustomer,
    Resolve,
    Step,
    ThumbsDown,
    is_note,
    waited,
)
from handoff.handoffs import TurnKind
from handoff.inbox import Claim as Taken
from handoff.inbox import Work
from handoff.outbox import Outgoing, Queued
from handoff.triggers import Action, History, Reason, ReasonKind, advance, is_blank
from handoff.tuning import load_settings

log = logging.getLogger("baton.listeners")

QUESTION_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})  # edits, joins… are not questions
FOLLOWED_SUBTYPES = frozenset({"message_changed", "message_deleted"})  # relayed copies follow these
RESOLVE_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
CUSTOMER_WORK, AGENT_WORK = "customer_turn", "agent_reply"  # kinds of claimed work
RESUME_EVERY = 30.0  # seconds between looks for turns that failed and wait for another try
HOME_REFRESH_EVERY = 3.0  # seconds between looks for a change on the Home tabs people have open
HOME_KEPT_FOR = 1800.0  # seconds a Home tab is kept up to date after its person last opened it
HomeBoard = tuple[list[Conversation], tuple[render.Block, ...]]  # open handoffs, dashboard blocks
CARD_WAIT = 60.0  # seconds a turn waits for its thread's handoff card to reach Slack (then: a retry)
CARD_POLL = 0.1  # seconds between looks while waiting
NOT_STAFF = "Only people on the support team can use these buttons."
NOT_THE_CUSTOMER = "Only the customer in this thread can ask for a person here."
Ack = Callable[..., Awaitable[Any]]


class CardPending(Exception):
    """A turn needs its thread's handoff card, which has not reached Slack yet."""


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


def button_event(action_id: str, user: str, at: datetime) -> Claim | Resolve | HandBack:
    """What pressing Claim, Resolve or Hand back means for the conversation."""
    if action_id == cards.CLAIM_ACTION:
        return Claim(user, at)
    if action_id == cards.RESOLVE_ACTION:
        return Resolve(user, at)
    return HandBack(user, at)


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
    """The listeners, sharing one `Baton` and its handoff bridge."""

    def __init__(self, baton: Baton) -> None:
        self.baton = baton
        self.db = baton.services.db
        self.bridge = Bridge(baton)
        self.admin = Admin(baton, self.bridge)
        self.learning = Learning(baton)
        self.home_viewers: dict[str, float] = {}  # staff member -> when they last opened the Home tab
        self.home_shown: dict[str, str] = {}  # person -> the Home view last published to them

    # -- messages and mentions ---------------------------------------------------------------
    async def message(self, body: dict[str, Any], context: dict[str, Any]) -> None:
        """`message` and `app_mention`: claim a person's message and handle it in the background."""
        event = body.get("event") or {}
        if event.get("subtype") in FOLLOWED_SUBTYPES:
            self.baton.spawn(self.follow(event), channel=event.get("channel"), subtype=event.get("subtype"))
            return
        turn = read_turn(body, context.get("bot_user_id"))
        if turn is None:
            return
        agents = turn.channel == self.baton.settings.agent_channel
        card = agents and (self.is_card_thread(turn) or self.card_on_its_way(turn))
        if agents and (not card or turn.team not in (None, self.baton.team_id)):
            return  # only a card's thread, and only Baton's own team, as for the card's buttons
        if not agents and not await self.is_for_baton(turn):
            return
        work = Work(AGENT_WORK if agents else CUSTOMER_WORK, json.dumps(asdict(turn)))
        claim = self.baton.inbox.claim(turn.event_id, turn.channel, turn.ts, work)
        if claim is None:
            log.debug("already taken: event %s (%s %s)", turn.event_id, turn.channel, turn.ts)
            return
        self.start_turn(turn, claim, agents)

    def start_turn(self, turn: Turn, claim: Taken, agents: bool) -> None:
        """Work on a claimed turn in the background; a failure leaves it to `resume`."""
        work = self.agent_reply(turn, claim) if agents else self.take_turn(turn, claim)
        self.baton.spawn(self.guarded(work, claim), event_id=turn.event_id, channel=turn.channel, ts=turn.ts)

    async def guarded(self, work: Awaitable[None], claim: Taken) -> None:
        """Run a turn; if it fails, hand its claim back for a later try (the error is logged)."""
        try:
            await work
        except Exception:
            self.baton.inbox.fail(claim)
            raise

    async def resume(self) -> int:
        """Take up turns a previous process left unfinished, or that failed here; returns how many."""
        taken = 0
        for found in self.baton.inbox.unfinished():
            claim = self.baton.inbox.adopt(found)
            if claim is None:
                continue
            log.warning("taking up unfinished turn %s (try %d)", found.keys[0], found.attempts + 1)
            self.start_turn(Turn(**json.loads(found.work.payload)), claim, found.work.kind == AGENT_WORK)
            taken += 1
        return taken

    async def resume_forever(self) -> None:
        """Resume at start, then every `RESUME_EVERY` seconds, for as long as Baton runs."""
        while True:
            try:
                await self.resume()
            except sqlite3.Error as exc:  # the next round tries again
                log.warning("cannot look for unfinished turns: %s", exc)
            await asyncio.sleep(RESUME_EVERY)

    def is_card_thread(self, turn: Turn) -> bool:
        """Whether a message in the agent channel is a reply in a handoff card's thread."""
        return bool(turn.thread_ts) and handoffs.load_by_card(self.db, turn.channel, turn.thread) is not None

    def card_on_its_way(self, turn: Turn) -> bool:
        """Whether a reply in the agent channel may be in a card Slack has shown but not yet confirmed."""
        return bool(turn.thread_ts) and self.baton.outbox.has_pending(turn.channel, "card")

    async def card_posted(self, key: tuple[str, str]) -> None:
        """While the thread's handoff card is on its way to Slack, wait for it to land.

        A customer's message is relayed to the card's thread, so it must not be taken before the
        card is there (the card shows only what came before it). Raises `CardPending` after
        CARD_WAIT: the turn is then tried again later (see `resume`).
        """
        deadline = asyncio.get_running_loop().time() + CARD_WAIT
        while True:
            conversation = handoffs.load(self.db, *key)
            if conversation is None or not conversation.handed_off or conversation.card is not None:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise CardPending(f"the handoff card of {key[0]} {key[1]} is not in Slack yet")
            await asyncio.sleep(CARD_POLL)

    async def card_thread(self, turn: Turn) -> Conversation | None:
        """The conversation of the card whose thread `turn` is in, once that card has landed."""
        deadline = asyncio.get_running_loop().time() + CARD_WAIT
        while True:
            found = handoffs.load_by_card(self.db, turn.channel, turn.thread)
            if found is not None or not self.card_on_its_way(turn):
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise CardPending(f"no card for the reply {turn.channel} {turn.ts} yet")
            await asyncio.sleep(CARD_POLL)

    async def is_for_baton(self, turn: Turn) -> bool:
        """Whether Baton answers (or relays) this turn; looked up before the ack, so Slack retries."""
        baton = self.baton
        place, staff = await baton.place(turn.channel), await baton.staff()
        if should_answer(turn.user, turn.team, place, turn.mentioned, staff, baton.settings.support_channels):
            return True
        conversation = handoffs.load(self.db, turn.channel, turn.thread)  # a person has the thread
        return bool(
            conversation and conversation.handed_off and is_customer(turn.user, turn.team, place, staff)
        )

    async def take_turn(self, turn: Turn, claim: Taken) -> None:
        """Baton answers the turn, or, while a person has the thread, relays it to the card."""
        baton = self.baton
        async with baton.thread_lock(turn.channel, turn.thread):
            await self.card_posted((turn.channel, turn.thread))
            at = now()
            said = CustomerMessage(turn.user, turn.text, turn.ts, at)
            conversation, effects = handoffs.apply(self.db, (turn.channel, turn.thread), said)
            spoken = handoffs.Turn(TurnKind.CUSTOMER, turn.user, turn.text, turn.ts, at)
            handoffs.record_turn(self.db, conversation, spoken)
            if not any(isinstance(effect, BatonAnswers) for effect in effects):
                queued = await self.relay(conversation, effects, turn, claim)
            elif turn.files_only:
                queued = [self.note_file(turn, claim)]
            else:
                queued = await self.answer(turn, claim)
            if any(q.message.kind == "card" for q in queued):
                # Post the card before the thread's next turn, so that turn is relayed to it.
                await self.bridge.deliver(queued)
                queued = []
        await self.bridge.deliver(queued)

    async def relay(
        self, conversation: Conversation, effects: list[Any], turn: Turn, claim: Taken
    ) -> list[Queued]:
        """Store the copies of a customer's message for the agents (Baton itself stays quiet)."""
        messages = await self.bridge.messages(conversation, effects, f"{turn.channel}:{turn.ts}")
        with self.db.atomic():
            queued = [self.baton.outbox.put(message) for message in messages]
            self.baton.inbox.finish(claim)
        return queued

    def note_file(self, turn: Turn, claim: Taken) -> Queued:
        """A file without words: ask, politely, for the question in text."""
        message = outgoing(reply_key(turn), turn.channel, turn.thread, render.file_note(), "note")
        with self.db.atomic():
            queued = self.baton.outbox.put(message)
            self.baton.inbox.finish(claim)
        return queued

    async def answer(self, turn: Turn, claim: Taken) -> list[Queued]:
        """Run the checks; store the reply (or the handoff) with the thread's new history."""
        baton, db = self.baton, self.db
        history = baton.inbox.history(turn.channel, turn.thread)
        check = await baton.services.brain.check(turn.text, history, load_settings(db))
        message, kind, meta = reply_for(check)

        def keep(_: object, messages: list[Outgoing]) -> None:  # in the reply's transaction
            baton.inbox.save_history(turn.channel, turn.thread, advance(history, check.decision))
            self.note_gap(turn, check)
            self.record_baton(turn, [m for m in messages if m.channel == turn.channel])
            baton.inbox.finish(claim)

        if check.decision.action is Action.HANDOFF:
            handed = HandoffTriggered(check.decision.reasons, now())
            key, cause = (turn.channel, turn.thread), f"{turn.channel}:{turn.ts}"
            _, queued = await self.bridge.settle(key, handed, cause, check.answer, keep)
        else:
            messages = [outgoing(reply_key(turn), turn.channel, turn.thread, message, kind, **meta)]
            with db.atomic():
                queued = [baton.outbox.put(m) for m in messages]
                keep(None, messages)
        what = meta.get("entry") or ",".join(meta.get("reasons") or meta.get("choices") or [])
        log.info("turn %s in %s: %s %s (%.0f ms)", turn.event_id, turn.channel, kind, what, check.elapsed_ms)
        return queued

    def note_gap(self, turn: Turn, check: TurnCheck) -> None:
        """Keep a question Baton was unsure of, for the knowledge gaps on the Home tab."""
        unsure = [r for r in check.decision.reasons if r.kind is ReasonKind.LOW_CONFIDENCE]
        if unsure and not is_blank(clean_turn(turn.text)):
            self.baton.inbox.note_gap(turn.channel, turn.ts, clean_turn(turn.text), unsure[0].value or 0.0)

    def record_baton(self, turn: Turn, messages: list[Outgoing]) -> None:
        """Baton's replies in the customer's thread, for the transcript on the card."""
        conversation = handoffs.load(self.db, turn.channel, turn.thread) or Conversation(
            turn.channel, turn.thread
        )
        for message in messages:
            said = handoffs.Turn(TurnKind.BATON, "baton", message.text, message.key, now())
            handoffs.record_turn(self.db, conversation, said)

    # -- the agents' side ----------------------------------------------------------------------
    async def agent_reply(self, turn: Turn, claim: Taken) -> None:
        """An agent wrote in a card's thread: relay it to the customer (unless it is a note)."""
        found = await self.card_thread(turn)
        if found is None:
            self.baton.inbox.finish(claim)
            return
        at = now()

        def keep(step: Step, _: list[Outgoing]) -> None:  # in the relay's transaction
            conversation, effects = step
            kind = TurnKind.AGENT if any(isinstance(e, RelayToCustomer) for e in effects) else TurnKind.NOTE
            said = handoffs.Turn(kind, turn.user, turn.text, turn.ts, at)
            handoffs.record_turn(self.db, conversation, said)
            self.baton.inbox.finish(claim)

        cause = f"{turn.channel}:{turn.ts}"
        await self.bridge.move(found.key, AgentReply(turn.user, turn.text, turn.ts, at), cause, also=keep)

    async def follow(self, event: dict[str, Any]) -> None:
        """An edit or deletion of a relayed message follows it to its copy."""
        changed = event.get("subtype") == "message_changed"
        message = (event.get("message") if changed else event.get("previous_message")) or {}
        user, ts, channel = message.get("user"), message.get("ts"), event.get("channel")
        if not user or not ts or not channel or message.get("bot_id"):
            return
        thread, text, at = message.get("thread_ts") or ts, message.get("text") or "", now()
        if channel == self.baton.settings.agent_channel:
            conversation = handoffs.load_by_card(self.db, channel, thread)
            kind = TurnKind.NOTE if is_note(text) else TurnKind.AGENT
            happened: Event = AgentEdit(user, text, ts, at) if changed else AgentDelete(user, ts, at)
        else:
            conversation = handoffs.load(self.db, channel, thread)
            kind = TurnKind.CUSTOMER
            happened = CustomerEdit(user, text, ts, at) if changed else CustomerDelete(user, ts, at)
            if conversation is not None and not conversation.is_customer(user):
                return
        if conversation is None or (thread == ts and channel == self.baton.settings.agent_channel):
            return
        self.keep_transcript(conversation, kind, user, text, ts, changed)
        await self.bridge.move(conversation.key, happened, f"{channel}:{ts}:{event.get('event_ts')}")

    def keep_transcript(
        self, conversation: Conversation, kind: TurnKind, user: str, text: str, ts: str, changed: bool
    ) -> None:
        """The transcript follows edits and deletions too."""
        if changed:
            handoffs.record_turn(self.db, conversation, handoffs.Turn(kind, user, text, ts, now()))
            return
        for gone in (kind, TurnKind.NOTE) if kind is TurnKind.AGENT else (kind,):
            handoffs.drop_turn(self.db, conversation.key, gone, ts)

    async def card_button(self, ack: Ack, body: dict[str, Any], respond: Ack) -> None:
        """Claim, Send suggestion, Resolve, Hand back: only for people of Baton's own team."""
        await ack()
        user, action = body.get("user") or {}, (body.get("actions") or [{}])[0]
        identity = await self.baton.whoami()
        if user.get("team_id") != identity.team_id:
            await respond(**cards.ephemeral(NOT_STAFF))
            return
        channel, thread, extra = cards.read_target(str(action.get("value") or ""))
        if channel and thread and user.get("id"):
            press = self.press(
                str(action.get("action_id")), user["id"], (channel, thread), extra, action, respond
            )
            self.baton.spawn(press, channel=channel, action=action.get("action_id"), user=user["id"])

    async def press(
        self, action_id: str, user: str, key: handoffs.Key, extra: str, action: dict[str, Any], respond: Ack
    ) -> None:
        """Move the conversation as the button says."""
        at, stamp = now(), str(action.get("action_ts") or now().timestamp())
        event: Event
        if action_id == cards.SUGGEST_ACTION:
            entry = self.baton.services.knowledge.get(extra)
            if entry is None:
                await respond(**cards.ephemeral("That FAQ entry no longer exists, so nothing was sent."))
                return
            event = AgentReply(user, entry.answer, f"suggest-{stamp}", at)
        else:
            event = button_event(action_id, user, at)

        def keep(step: Step, _: list[Outgoing]) -> None:  # a sent suggestion joins the transcript
            conversation, effects = step
            if isinstance(event, AgentReply) and any(isinstance(e, RelayToCustomer) for e in effects):
                said = handoffs.Turn(TurnKind.AGENT, user, event.text, event.ts, at)
                handoffs.record_turn(self.db, conversation, said)

        await self.bridge.move(key, event, f"{action_id}:{key[0]}:{key[1]}:{stamp}", also=keep)

    async def talk(self, ack: Ack, body: dict[str, Any], respond: Ack) -> None:
        """ "Talk to a person", offered after a 👎: hand the thread to the agents."""
        await ack()
        user, action = body.get("user") or {}, (body.get("actions") or [{}])[0]
        channel, thread, _ = cards.read_target(str(action.get("value") or ""))
        if channel and thread and user.get("id"):
            self.baton.spawn(self.take_offer(user["id"], (channel, thread), respond), channel=channel)

    async def take_offer(self, user: str, key: handoffs.Key, respond: Ack) -> None:
        """The customer asked for a person after a 👎."""
        conversation = handoffs.load(self.db, *key)
        if conversation is None or not conversation.is_customer(user):
            await respond(**cards.ephemeral(NOT_THE_CUSTOMER))
            return
        reason = Reason(ReasonKind.THUMBS_DOWN, "👎 on a bot answer, then asked for a person")
        self.baton.inbox.save_history(*key, History())
        await self.bridge.move(key, HandoffTriggered((reason,), now()), f"talk:{key[0]}:{key[1]}")
        await respond(**cards.offer_taken(), replace_original=True)

    # -- reactions ---------------------------------------------------------------------------------
    async def reaction(self, event: dict[str, Any]) -> None:
        """`reaction_added` / `reaction_removed`: 👍/👎 votes, and ✅ on a card resolves it."""
        item = event.get("item") or {}
        if item.get("type") == "message" and item.get("channel") and item.get("ts") and event.get("user"):
            self.baton.spawn(self.react(event, item["channel"], item["ts"]), channel=item["channel"])

    async def react(self, event: dict[str, Any], channel: str, ts: str) -> None:
        """Count (or withdraw) a vote, or resolve a card."""
        added, user, name = (
            event.get("type") == "reaction_added",
            str(event["user"]),
            str(event.get("reaction")),
        )
        if channel != self.baton.settings.agent_channel:
            await self.rate(channel, ts, user, name, added)
            return
        conversation = handoffs.load_by_card(self.db, channel, ts)
        if not added or name not in RESOLVE_REACTIONS or conversation is None:
            return
        if (await self.baton.person(user)).team == (await self.baton.whoami()).team_id:
            cause = f"react:{channel}:{ts}:{user}:{event.get('event_ts')}"
            await self.bridge.move(conversation.key, Resolve(user, now()), cause)

    async def rate(self, channel: str, ts: str, user: str, name: str, added: bool) -> None:
        """A customer's 👍/👎 on Baton's answer or a closing message; a 👎 on an answer offers a person."""
        if csat.vote_for(name) is None:
            return
        rated = self.rateable(channel, ts)
        if rated is None:
            return
        conversation = handoffs.load(self.db, channel, rated.thread_ts)
        voter = conversation is not None and conversation.is_customer(user)
        if not added:
            csat.withdraw(self.db, channel, ts, user, name)
            return
        ballot = csat.vote(self.db, channel, ts, user, name, voter, now())
        if ballot.offers_human:
            history = self.baton.inbox.history(channel, rated.thread_ts)
            self.baton.inbox.save_history(
                channel, rated.thread_ts, History(history.consecutive_fallbacks, True)
            )
            down = ThumbsDown(user, ts, rated.entry_id, now())
            await self.bridge.move((channel, rated.thread_ts), down, f"{channel}:{ts}")

    def rateable(self, channel: str, ts: str) -> csat.RatedMessage | None:
        """The message customers may rate at (channel, ts): remembered now if it is Baton's answer."""
        found = csat.rated_message(self.db, channel, ts)
        sent = self.baton.outbox.sent_as(channel, ts) if found is None else None
        if sent is None or sent.message.kind not in ("answer", "closing") or not sent.message.thread_ts:
            return found
        thread = sent.message.thread_ts
        conversation = handoffs.load(self.db, channel, thread) or Conversation(channel, thread)
        meta = sent.message.meta
        if sent.message.kind == "answer":
            rated = csat.bot_answer(conversation, ts, meta.get("entry"), sent.created_at)
        else:
            rated = csat.closing_message(conversation, ts, meta.get("agent"), sent.created_at)
        csat.remember(self.db, rated)
        return rated

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
        with self.db.atomic():
            baton.inbox.save_history(pick.channel, pick.thread_ts, History())
            queued = baton.outbox.put(message)  # a second press finds the first choice
        await self.bridge.deliver([queued])
        first = baton.services.knowledge.get(queued.message.meta.get("entry", "")) or entry
        await respond(**render.chosen(first), replace_original=True)

    # -- the rest ----------------------------------------------------------------------------
    async def home(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """`app_home_opened`: publish the Home tab."""
        if event.get("tab", "home") == "home" and event.get("user"):
            self.baton.spawn(
                self.publish_home(event["user"], client), user=event["user"], event="app_home_opened"
            )

    async def publish_home(self, user: str, client: AsyncWebClient, board: HomeBoard | None = None) -> None:
        """Publish the Home tab: what Baton does; for its own team, the handoff dashboard too.

        A staff member's tab is then kept up to date while it is likely open: `refresh_homes`
        passes the `board` (open handoffs and dashboard blocks) it computed once for them all,
        and the tab is sent again only if it changed.
        """
        baton = self.baton
        staff = (await baton.person(user)).team == (await baton.whoami()).team_id
        opened, more = board or self.home_board(staff)
        stats = render.HomeStats(
            faq_entries=len(baton.services.knowledge.entries()),
            open_handoffs=len(opened),
            support_channels=baton.settings.support_channels,
            agent_channel=baton.settings.agent_channel,
            more=more if staff else (),
        )
        view = render.home(stats)
        shown = json.dumps(view, sort_keys=True)
        if board is not None and self.home_shown.get(user) == shown:
            return
        await client.views_publish(user_id=user, view=view)
        self.home_shown[user] = shown
        if staff and board is None:
            self.home_viewers[user] = asyncio.get_running_loop().time()

    def home_board(self, staff: bool) -> HomeBoard:
        """The open handoffs, and the dashboard's blocks for staff (none for others)."""
        opened = handoffs.open_handoffs(self.db)
        return opened, tuple(cards.dashboard(self.dashboard(opened))) if staff else ()

    async def refresh_homes(self) -> None:
        """Republish the Home tabs staff opened lately whose numbers changed (a vote, a handoff…)."""
        loop = asyncio.get_running_loop()
        for user, opened in list(self.home_viewers.items()):
            if loop.time() - opened > HOME_KEPT_FOR:
                del self.home_viewers[user]
        if self.home_viewers:
            board = self.home_board(staff=True)  # the same for every staff member: built once
            for user in list(self.home_viewers):
                await self.publish_home(user, self.baton.client, board)

    async def refresh_homes_forever(self) -> None:
        """Keep open Home tabs live, for as long as Baton runs."""
        while True:
            await asyncio.sleep(HOME_REFRESH_EVERY)
            try:
                await self.refresh_homes()
            except (SlackApiError, OSError, sqlite3.Error) as exc:  # the next round tries again
                log.warning("cannot refresh the Home tabs: %s", exc)

    def dashboard(self, opened: list[Conversation]) -> cards.Dashboard:
        """The numbers the Home tab shows."""
        at = now()
        today = csat.csat_report(self.db, at.replace(hour=0, minute=0, second=0, microsecond=0))
        return cards.Dashboard(
            open=tuple(
                cards.OpenHandoff(c.channel, c.customers, waited(c, at), c.owner) for c in opened[:20]
            ),
            csat_today=csat.show_percent(today.overall),
            resolution_today=csat.show_rate(today),
            gaps=tuple(gap.question for gap in self.baton.inbox.gaps()),
            reviews=tuple(f"{r.entry_id}: {r.down} 👎, {r.up} 👍" for r in csat.needs_review(self.db)[:5]),
            suggestions=self.learning.suggestions()[:5],
        )

    async def command(self, ack: Ack, body: dict[str, Any]) -> None:
        """`/baton`: run the command and answer privately."""
        reply = await self.admin.run(str(body.get("text") or ""), str(body.get("user_id") or ""))
        await ack(**(cards.command_reply(reply) if isinstance(reply, str) else reply))

    async def ignore(self) -> None:
        """Events Baton is subscribed to but leaves to others."""


def register_listeners(app: AsyncApp, baton: Baton) -> Listeners:
    """Attach every listener to the app; the last one takes any other event quietly."""
    listeners = Listeners(baton)
    baton.periodic.append(listeners.bridge.tick_forever)
    baton.periodic.append(listeners.resume_forever)
    baton.periodic.append(listeners.refresh_homes_forever)
    app.event("message")(listeners.message)
    app.event("app_mention")(listeners.message)
    app.action(re.compile(f"^{render.PICK_ACTION}_"))(listeners.pick)
    app.action(re.compile(f"^({'|'.join(cards.CARD_ACTIONS)})$"))(listeners.card_button)
    app.action(cards.TALK_ACTION)(listeners.talk)
    app.action(cards.SAVE_FAQ_ACTION)(listeners.learning.open_modal)
    app.action(cards.DISMISS_FAQ_ACTION)(listeners.learning.dismiss)
    app.view(cards.SAVE_FAQ_VIEW)(listeners.learning.submit)
    app.event("app_home_opened")(listeners.home)
    app.command("/baton")(listeners.command)
    app.event("reaction_added")(listeners.reaction)
    app.event("reaction_removed")(listeners.reaction)
    app.event(re.compile(".*"))(listeners.ignore)
    return listeners
