"""The life of one customer thread: Baton answers, a person is waited for, claims it, closes it.

`transition(conversation, event)` is pure: it takes the thread's state and one event (a
customer message, an agent's message in the card thread, a button, a clock tick carrying
`now`) and returns the next state and the effects the Slack layer renders and sends. It
knows no clock, database or Slack, and raises nothing: an event that makes no sense in a
state changes nothing and, when a person caused it, says why (`Explain`).

Statuses: BOT (Baton answers) → WAITING (handed off, nobody yet) → CLAIMED (one agent owns
it) → RESOLVED (closed by a person) or back to BOT (handed back). A thread's *episode* runs
from its first customer turn until it is resolved; whatever happens in a RESOLVED thread
(the customer writes again, a new handoff, a Claim) opens the next episode with Baton.
An episode counts as handled by a person once it has been handed off, even if handed back.

Times are timezone-aware datetimes; Slack message ids (`ts`) are kept as strings.
This module raises no exceptions of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from handoff.triggers import Reason

UNCLAIMED_PATIENCE = timedelta(minutes=10)  # re-alert an unclaimed handoff this often


class Status(Enum):
    """Who is answering the thread."""

    BOT = "bot"
    WAITING = "waiting"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


HANDED_OFF = frozenset({Status.WAITING, Status.CLAIMED})


class Tell(Enum):
    """What Baton says to the customer in their thread (the Slack layer words it)."""

    PERSON_JOINING = "person_joining"
    CLOSING = "closing"  # invites 👍/👎 on the closing message
    BACK_TO_BOT = "back_to_bot"
    OFFER_HUMAN = "offer_human"  # after a 👎 on a bot answer


@dataclass(frozen=True)
class Place:
    """A Slack message or thread: its channel and ts."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Conversation:
    """The state of one customer thread; every time in it came from an event."""

    channel: str
    thread_ts: str
    customers: tuple[str, ...] = ()
    status: Status = Status.BOT
    agent: str | None = None  # the owner while CLAIMED; who handled it once RESOLVED
    card: Place | None = None  # the latest handoff card in the agent channel
    reasons: tuple[Reason, ...] = ()  # why this episode was handed off
    episode: int = 1
    started_at: datetime | None = None
    handed_off_at: datetime | None = None  # first handoff of this episode
    waiting_since: datetime | None = None
    alerted_at: datetime | None = None
    claimed_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    last_entry: str | None = None  # the FAQ entry of Baton's last answer
    last_answer_ts: str | None = None
    offered_for: str | None = None  # the bot answer whose 👎 last offered a person

    @property
    def key(self) -> tuple[str, str]:
        """The customer thread: (channel, thread_ts)."""
        return (self.channel, self.thread_ts)

    @property
    def thread(self) -> Place:
        """The customer thread as a place to post in."""
        return Place(self.channel, self.thread_ts)

    @property
    def owner(self) -> str | None:
        """The agent who owns the thread right now, if any."""
        return self.agent if self.status is Status.CLAIMED else None

    @property
    def handed_off(self) -> bool:
        """Whether a person, not Baton, is answering (or about to)."""
        return self.status in HANDED_OFF

    def is_customer(self, user: str) -> bool:
        """Whether `user` has written in this thread as a customer."""
        return user in self.customers


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerMessage:
    """A customer wrote in their thread."""

    user: str
    text: str
    ts: str
    at: datetime


@dataclass(frozen=True)
class CustomerEdit:
    """A customer edited the message `ts` in their thread."""

    user: str
    text: str
    ts: str
    at: datetime


@dataclass(frozen=True)
class CustomerDelete:
    """A customer deleted the message `ts` in their thread."""

    user: str
    ts: str
    at: datetime


@dataclass(frozen=True)
class BotAnswered:
    """Baton answered in the thread (from a FAQ entry, or with a question when `entry_id` is None)."""

    entry_id: str | None
    ts: str
    at: datetime


@dataclass(frozen=True)
class HandoffTriggered:
    """The trigger policy (or the customer, taking up an offer) asked for a person."""

    reasons: tuple[Reason, ...]
    at: datetime


@dataclass(frozen=True)
class CardPosted:
    """The handoff card was posted in the agent channel."""

    card: Place
    at: datetime


@dataclass(frozen=True)
class AgentReply:
    """An agent wrote in the card's thread; `note:` messages stay internal."""

    agent: str
    text: str
    ts: str
    at: datetime

    @property
    def is_note(self) -> bool:
        """Whether the message is an internal note."""
        return is_note(self.text)


@dataclass(frozen=True)
class AgentEdit:
    """An agent edited their message `ts` in the card's thread."""

    agent: str
    text: str
    ts: str
    at: datetime


@dataclass(frozen=True)
class AgentDelete:
    """An agent deleted their message `ts` in the card's thread."""

    agent: str
    ts: str
    at: datetime


@dataclass(frozen=True)
class Claim:
    """An agent pressed Claim."""

    agent: str
    at: datetime


@dataclass(frozen=True)
class Resolve:
    """Someone resolved the conversation (button, `/baton resolve`, or ✅ on the card)."""

    by: str
    at: datetime


@dataclass(frozen=True)
class HandBack:
    """Someone handed the conversation back to Baton."""

    by: str
    at: datetime


@dataclass(frozen=True)
class Tick:
    """Time passed: `at` is now; an unclaimed handoff is re-alerted every `patience`."""

    at: datetime
    patience: timedelta = UNCLAIMED_PATIENCE


@dataclass(frozen=True)
class ThumbsDown:
    """The thread's customer gave 👎 to Baton's answer `answer_ts`."""

    user: str
    answer_ts: str
    entry_id: str | None
    at: datetime


Event = (
    CustomerMessage
    | CustomerEdit
    | CustomerDelete
    | BotAnswered
    | HandoffTriggered
    | CardPosted
    | AgentReply
    | AgentEdit
    | AgentDelete
    | Claim
    | Resolve
    | HandBack
    | Tick
    | ThumbsDown
)


# -- effects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatonAnswers:
    """Run the trigger policy on this customer turn and answer it (or hand off)."""

    user: str
    text: str
    ts: str


@dataclass(frozen=True)
class TellCustomer:
    """Post Baton's message of this kind in the customer's thread."""

    thread: Place
    kind: Tell
    agent: str | None = None  # CLOSING: the person credited with the conversation


@dataclass(frozen=True)
class PostCard:
    """Post a handoff card in the agent channel (then feed back `CardPosted`)."""

    thread: Place
    customers: tuple[str, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class UpdateCard:
    """Show the conversation's new status on its card."""

    card: Place
    status: Status
    agent: str | None
    by: str | None = None  # who resolved or handed back


@dataclass(frozen=True)
class RelayToAgents:
    """Copy a customer's message into the card's thread (then `link_relay` source → copy)."""

    card: Place
    user: str
    text: str  # already neutralised
    source: Place


@dataclass(frozen=True)
class RelayToCustomer:
    """Post an agent's reply in the customer's thread under the agent's name and avatar."""

    thread: Place
    agent: str
    text: str  # already neutralised
    source: Place


@dataclass(frozen=True)
class FollowEdit:
    """Edit the relayed copy of `source`, if there is one, to the new text."""

    source: Place
    text: str  # already neutralised


@dataclass(frozen=True)
class FollowDelete:
    """Delete the relayed copy of `source`, if there is one."""

    source: Place


@dataclass(frozen=True)
class ReAlert:
    """Remind the agent channel of a handoff nobody has claimed."""

    card: Place | None
    thread: Place
    waited: timedelta
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ClaimRefused:
    """Tell `agent` (privately) that `owner` already has the conversation."""

    agent: str
    owner: str
    card: Place | None
    reply_ts: str | None = None  # set when the refused action was a reply, which was not sent


@dataclass(frozen=True)
class Explain:
    """Tell `user` (privately) why their action changed nothing."""

    user: str
    text: str
    in_thread: bool = False  # about a message in the card's thread (else a button or command)


Effect = (
    BatonAnswers
    | TellCustomer
    | PostCard
    | UpdateCard
    | RelayToAgents
    | RelayToCustomer
    | FollowEdit
    | FollowDelete
    | ReAlert
    | ClaimRefused
    | Explain
)
Step = tuple[Conversation, list[Effect]]


# -- text --------------------------------------------------------------------------------

_NOTE = re.compile(r"\s*note:", re.IGNORECASE)
_SPECIAL = re.compile(r"<!(channel|here|everyone)(?:\|[^>]*)?>", re.IGNORECASE)
_SUBTEAM = re.compile(r"<!subteam\^[^|>]*(?:\|@?([^>]*))?>", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w.])@(channel|here|everyone)\b", re.IGNORECASE)
_JOINER = "\u2060"  # word joiner: invisible, and Slack no longer sees a mention


def is_note(text: str) -> bool:
    """Whether an agent's message is internal: it starts with `note:` (any case, spaces before)."""
    return _NOTE.match(text) is not None


def neutralise(text: str) -> str:
    """The text with mass mentions (@channel, @here, @everyone, user groups) made harmless."""
    before = None
    while text != before:  # a label may hide another mention; repeat until none is left
        before = text
        text = _SPECIAL.sub(lambda m: f"@{_JOINER}{m.group(1).lower()}", text)
        text = _SUBTEAM.sub(lambda m: f"@{_JOINER}{m.group(1) or 'group'}", text)
    return _BARE.sub(lambda m: f"@{_JOINER}{m.group(1)}", text)


def waited(conversation: Conversation, now: datetime) -> timedelta:
    """How long a handed-off conversation has waited for a person (zero when it is not waiting)."""
    if conversation.status is not Status.WAITING or conversation.waiting_since is None:
        return timedelta(0)
    return max(as_utc(now) - as_utc(conversation.waiting_since), timedelta(0))


def as_utc(at: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken to be UTC already)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# -- the machine -------------------------------------------------------------------------


def transition(conversation: Conversation, event: Event) -> Step:
    """The thread's next state and what to do in Slack, for one event."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return conversation, []
    return handler(conversation, event)


def on_customer_message(c: Conversation, e: CustomerMessage) -> Step:
    """Baton answers, unless a person has the thread: then the message goes to the card."""
    if c.status is Status.RESOLVED:
        c = reopen(c, e.at)
    c = replace(c, customers=with_member(c.customers, e.user), started_at=c.started_at or e.at)
    if not c.handed_off:
        return c, [BatonAnswers(e.user, e.text, e.ts)]
    if c.card is None:  # the card, posted next, shows the transcript
        return c, []
    return c, [RelayToAgents(c.card, e.user, neutralise(e.text), Place(c.channel, e.ts))]


def on_customer_edit(c: Conversation, e: CustomerEdit) -> Step:
    """A customer's edit follows their message to its relayed copy."""
    if c.card is None:
        return c, []
    return c, [FollowEdit(Place(c.channel, e.ts), neutralise(e.text))]


def on_customer_delete(c: Conversation, e: CustomerDelete) -> Step:
    """A customer's deletion follows their message to its relayed copy."""
    if c.card is None:
        return c, []
    return c, [FollowDelete(Place(c.channel, e.ts))]


def on_bot_answered(c: Conversation, e: BotAnswered) -> Step:
    """Remember Baton's last answer (its 👎 may offer a person)."""
    if c.status is not Status.BOT:
        return c, []
    return replace(c, last_entry=e.entry_id, last_answer_ts=e.ts), []


def on_handoff(c: Conversation, e: HandoffTriggered) -> Step:
    """Hand the thread to people: tell the customer, post a card."""
    if c.handed_off:
        return c, []
    if c.status is Status.RESOLVED:
        c = reopen(c, e.at)
    c = replace(
        c,
        status=Status.WAITING,
        reasons=e.reasons,
        started_at=c.started_at or e.at,
        handed_off_at=c.handed_off_at or e.at,
        waiting_since=e.at,
        alerted_at=None,
    )
    return c, [TellCustomer(c.thread, Tell.PERSON_JOINING), PostCard(c.thread, c.customers, c.reasons)]


def on_card_posted(c: Conversation, e: CardPosted) -> Step:
    """Remember where the card is, so replies in its thread find the conversation."""
    return replace(c, card=e.card), []


def on_agent_reply(c: Conversation, e: AgentReply) -> Step:
    """Relay an agent's reply to the customer; the first reply claims the thread."""
    if e.is_note:
        return c, []
    if c.status is Status.CLAIMED and c.agent != e.agent:
        return c, [ClaimRefused(e.agent, c.agent or "", c.card, reply_ts=e.ts)]
    if not c.handed_off:
        text = REPLY_AFTER_RESOLVE if c.status is Status.RESOLVED else REPLY_NOT_SENT
        return c, [Explain(e.agent, text, in_thread=True)]
    source = Place(c.card.channel if c.card else c.channel, e.ts)
    relay = RelayToCustomer(c.thread, e.agent, neutralise(e.text), source)
    if c.status is Status.CLAIMED:
        return c, [relay]
    c = take(c, e.agent, e.at)
    return c, [relay, *card_update(c)]


def on_agent_edit(c: Conversation, e: AgentEdit) -> Step:
    """An agent's edit follows to the customer; editing a reply into a note withdraws it."""
    if c.card is None:
        return c, []
    source = Place(c.card.channel, e.ts)
    if is_note(e.text):
        return c, [FollowDelete(source)]
    return c, [FollowEdit(source, neutralise(e.text))]


def on_agent_delete(c: Conversation, e: AgentDelete) -> Step:
    """An agent's deletion follows to the customer's thread."""
    if c.card is None:
        return c, []
    return c, [FollowDelete(Place(c.card.channel, e.ts))]


def on_claim(c: Conversation, e: Claim) -> Step:
    """The first agent to claim owns the thread; later ones are told who has it."""
    if c.status is Status.CLAIMED:
        if c.agent == e.agent:
            return c, []
        return c, [ClaimRefused(e.agent, c.agent or "", c.card)]
    if c.status is Status.WAITING:
        c = take(c, e.agent, e.at)
        return c, card_update(c)
    if c.card is None:
        return c, [Explain(e.agent, NOTHING_TO_CLAIM)]
    # Claiming a thread Baton has (handed back, or resolved) takes it over.
    if c.status is Status.RESOLVED:
        c = reopen(c, e.at)
    c = replace(c, handed_off_at=c.handed_off_at or e.at, waiting_since=e.at)
    c = take(c, e.agent, e.at)
    return c, [TellCustomer(c.thread, Tell.PERSON_JOINING), *card_update(c)]


def on_resolve(c: Conversation, e: Resolve) -> Step:
    """Close a handed-off thread: the customer is invited to rate it; Baton answers next."""
    if not c.handed_off:
        return c, [Explain(e.by, ALREADY_RESOLVED if c.status is Status.RESOLVED else NOTHING_TO_RESOLVE)]
    c = replace(c, status=Status.RESOLVED, closed_at=e.at, closed_by=e.by, waiting_since=None)
    credited = c.agent or e.by
    return c, [TellCustomer(c.thread, Tell.CLOSING, credited), *card_update(c, e.by)]


def on_hand_back(c: Conversation, e: HandBack) -> Step:
    """Give a handed-off thread back to Baton, which answers the next turn."""
    if not c.handed_off:
        return c, [Explain(e.by, NOTHING_TO_HAND_BACK)]
    c = replace(c, status=Status.BOT, agent=None, waiting_since=None, alerted_at=None, claimed_at=None)
    return c, [TellCustomer(c.thread, Tell.BACK_TO_BOT), *card_update(c, e.by)]


def on_tick(c: Conversation, e: Tick) -> Step:
    """Re-alert a handoff nobody has claimed, once per `patience`."""
    if c.status is not Status.WAITING or c.waiting_since is None:
        return c, []
    last = as_utc(c.alerted_at or c.waiting_since)
    if as_utc(e.at) - last < max(e.patience, timedelta(seconds=1)):
        return c, []
    c = replace(c, alerted_at=e.at)
    return c, [ReAlert(c.card, c.thread, waited(c, e.at), c.reasons)]


def on_thumbs_down(c: Conversation, e: ThumbsDown) -> Step:
    """A 👎 on Baton's answer offers a person, once per answer."""
    if c.status is not Status.BOT or c.offered_for == e.answer_ts:
        return c, []
    return replace(c, offered_for=e.answer_ts), [TellCustomer(c.thread, Tell.OFFER_HUMAN)]


_HANDLERS: dict[type, Callable[[Conversation, Any], Step]] = {
    CustomerMessage: on_customer_message,
    CustomerEdit: on_customer_edit,
    CustomerDelete: on_customer_delete,
    BotAnswered: on_bot_answered,
    HandoffTriggered: on_handoff,
    CardPosted: on_card_posted,
    AgentReply: on_agent_reply,
    AgentEdit: on_agent_edit,
    AgentDelete: on_agent_delete,
    Claim: on_claim,
    Resolve: on_resolve,
    HandBack: on_hand_back,
    Tick: on_tick,
    ThumbsDown: on_thumbs_down,
}


def take(c: Conversation, agent: str, at: datetime) -> Conversation:
    """The conversation owned by `agent` from `at`."""
    return replace(c, status=Status.CLAIMED, agent=agent, claimed_at=at, alerted_at=None)


def reopen(c: Conversation, at: datetime) -> Conversation:
    """The next episode of a resolved thread, with Baton answering."""
    return Conversation(
        c.channel, c.thread_ts, c.customers, card=c.card, episode=c.episode + 1, started_at=at
    )


def card_update(c: Conversation, by: str | None = None) -> list[Effect]:
    """Show the new status on the card, when there is one."""
    if c.card is None:
        return []
    return [UpdateCard(c.card, c.status, c.agent, by)]


def with_member(members: tuple[str, ...], user: str) -> tuple[str, ...]:
    """The members with `user` added at the end, once."""
    return members if user in members else (*members, user)


REPLY_NOT_SENT = (
    "This conversation is with Baton now, so your message was not sent to the customer. "
    "Press Claim on the card to take it over, or start a message with note: to keep it internal."
)
REPLY_AFTER_RESOLVE = (
    "This conversation is resolved, so your message was not sent to the customer. If they need a "
    "person again, Baton hands them over with a new card. Start a message with note: to keep it internal."
)
NOTHING_TO_CLAIM = "This conversation is with Baton and has no handoff card, so there is nothing to claim."
NOTHING_TO_RESOLVE = "This conversation is with Baton, not with a person, so there is nothing to resolve."
ALREADY_RESOLVED = "This conversation is already resolved."
NOTHING_TO_HAND_BACK = "Baton already has this conversation, so there is nothing to hand back."
