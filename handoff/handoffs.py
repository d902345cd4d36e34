"""Conversations kept in SQLite: their state, episodes, transcripts, cards and relayed copies.

`apply` is how the Slack layer moves a conversation: it loads the thread, runs the pure
`transition` and saves the result in one write transaction that takes SQLite's lock before
reading, so two agents pressing Claim at once (even from two processes) cannot both win.
When the move posts messages, `preview` decides without storing and `commit` stores the new
state in the caller's transaction, together with those messages: a crash leaves either both
or neither. Everything is in the database file, so a restart loses nothing.
Raises `Moved` when a conversation changed between `preview` and `commit`; otherwise nothing
beyond sqlite3's own errors (`handoff.store.StoreError` covers opening the file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlite_utils import Database, Migrations

from handoff.conversation import (
    HANDED_OFF,
    Claim,
    Conversation,
    Event,
    Place,
    Status,
    Step,
    as_utc,
    transition,
)
from handoff.store import register
from handoff.triggers import Reason, ReasonKind

Key = tuple[str, str]  # the customer thread: (channel, thread_ts)

migrations = register(Migrations("baton.handoffs"))


@migrations()
def create_handoff_tables(db: Database) -> None:
    """Conversations, their episodes, cards, transcripts and the relay map."""
    db.table("conversations").create(
        {
            "channel": str,
            "thread_ts": str,
            "customers": str,
            "status": str,
            "agent": str,
            "card_channel": str,
            "card_ts": str,
            "reasons": str,
            "episode": int,
            "started_at": str,
            "handed_off_at": str,
            "waiting_since": str,
            "alerted_at": str,
            "claimed_at": str,
            "closed_at": str,
            "closed_by": str,
            "last_entry": str,
            "last_answer_ts": str,
            "offered_for": str,
        },
        pk=("channel", "thread_ts"),
    )
    db.table("conversations").create_index(["status"])
    db.table("conversation_cards").create(
        {"card_channel": str, "card_ts": str, "channel": str, "thread_ts": str},
        pk=("card_channel", "card_ts"),
    )
    db.table("conversation_episodes").create(
        {
            "channel": str,
            "thread_ts": str,
            "episode": int,
            "started_at": str,
            "handed_off_at": str,
            "agent": str,
            "closed_at": str,
            "closed_by": str,
            "reasons": str,
        },
        pk=("channel", "thread_ts", "episode"),
    )
    db.table("conversation_episodes").create_index(["started_at"])
    db.table("conversation_turns").create(
        {
            "channel": str,
            "thread_ts": str,
            "side": str,
            "ts": str,
            "episode": int,
            "kind": str,
            "who": str,
            "text": str,
            "at": str,
        },
        pk=("channel", "thread_ts", "side", "ts"),
    )
    db.table("relays").create(
        {"src_channel": str, "src_ts": str, "dst_channel": str, "dst_ts": str},
        pk=("src_channel", "src_ts"),
    )


class TurnKind(Enum):
    """Who spoke in a transcript turn."""

    CUSTOMER = "customer"
    BATON = "baton"
    AGENT = "agent"  # relayed to the customer
    NOTE = "note"  # internal to the agents


@dataclass(frozen=True)
class Turn:
    """One message of a conversation's transcript."""

    kind: TurnKind
    who: str
    text: str
    ts: str
    at: datetime

    @property
    def side(self) -> str:
        """Where the message lives: the customer's thread or the card's thread."""
        return side_of(self.kind)


def side_of(kind: TurnKind) -> str:
    """Agents write in the card's thread; customers and Baton in the customer's."""
    return "card" if kind in (TurnKind.AGENT, TurnKind.NOTE) else "thread"


@dataclass(frozen=True)
class EpisodeCount:
    """How many conversation episodes began in a period, and how many Baton settled alone."""

    total: int
    bot_only: int


# -- moving a conversation ---------------------------------------------------------------


def apply(db: Database, key: Key, event: Event) -> Step:
    """Load the thread (a new one starts with Baton), run `transition`, save; atomically."""
    with exclusive(db):
        before = load(db, *key) or Conversation(*key)
        after, effects = transition(before, event)
        if after != before:
            save(db, after)
    return after, effects


class Moved(Exception):
    """The conversation changed between `preview` and `commit` (another process moved it)."""


def preview(db: Database, key: Key, event: Event) -> tuple[Conversation | None, Step]:
    """What `event` does to the thread, decided but not stored (`commit` stores it)."""
    before = load(db, *key)
    return before, transition(before or Conversation(*key), event)


def commit(db: Database, key: Key, before: Conversation | None, after: Conversation) -> None:
    """Store a previewed move in the caller's write transaction, if the thread is still `before`."""
    if load(db, *key) != before:
        raise Moved(f"conversation {key[0]} {key[1]} changed meanwhile")
    if after != (before or Conversation(*key)):
        save(db, after)


def claim(db: Database, key: Key, agent: str, now: datetime) -> bool:
    """Compare-and-set: make `agent` the owner unless another agent owns it; True if `agent` owns it."""
    if load(db, *key) is None:
        return False
    after, _ = apply(db, key, Claim(agent, now))
    return after.owner == agent


@contextmanager
def exclusive(db: Database) -> Iterator[None]:
    """A write transaction that takes the lock before reading, so read-modify-write never interleaves."""
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.execute("COMMIT")


# -- conversations -----------------------------------------------------------------------


def load(db: Database, channel: str, thread_ts: str) -> Conversation | None:
    """The conversation of a customer thread, or None when Baton has not seen it."""
    rows = list(db.table("conversations").rows_where("channel = ? and thread_ts = ?", [channel, thread_ts]))
    return conversation_from_row(rows[0]) if rows else None


def load_by_card(db: Database, channel: str, card_ts: str) -> Conversation | None:
    """The conversation a handoff card (this one or an earlier one) belongs to."""
    rows = list(
        db.table("conversation_cards").rows_where("card_channel = ? and card_ts = ?", [channel, card_ts])
    )
    return load(db, rows[0]["channel"], rows[0]["thread_ts"]) if rows else None


def save(db: Database, conversation: Conversation) -> None:
    """Store the conversation, its current episode and its card."""
    c = conversation
    with db.atomic():
        db.table("conversations").upsert(conversation_row(c), pk=("channel", "thread_ts"))
        if c.card is not None:
            card = {"card_channel": c.card.channel, "card_ts": c.card.ts}
            db.table("conversation_cards").upsert(
                {**card, "channel": c.channel, "thread_ts": c.thread_ts}, pk=("card_channel", "card_ts")
            )
        if c.started_at is not None:
            db.table("conversation_episodes").upsert(episode_row(c), pk=("channel", "thread_ts", "episode"))


def open_handoffs(db: Database) -> list[Conversation]:
    """Conversations waiting for a person or owned by one, longest waiting first."""
    marks = ",".join("?" * len(HANDED_OFF))
    rows = db.table("conversations").rows_where(
        f"status in ({marks})", [s.value for s in HANDED_OFF], order_by="waiting_since, started_at"
    )
    return [conversation_from_row(row) for row in rows]


def count_episodes(db: Database, since: datetime) -> EpisodeCount:
    """Episodes begun since `since`: all of them, and those Baton settled alone.

    Baton settled an episode alone when it never reached a person and Baton's last word in it
    was an answer from the FAQ (not "I'm not sure I understood"). An episode that was never
    handed off is its thread's latest, so the thread's last answer is that episode's.
    """
    args = [stamp(since)]
    table = db.table("conversation_episodes")
    total = table.count_where("started_at >= ?", args)
    alone = db.execute(
        "select count(*) from conversation_episodes e join conversations c "
        "on c.channel = e.channel and c.thread_ts = e.thread_ts "
        "where e.started_at >= ? and e.handed_off_at is null and c.last_entry is not null",
        args,
    ).fetchone()[0]
    return EpisodeCount(total, int(alone))


# -- transcript and relays ---------------------------------------------------------------


def record_turn(db: Database, conversation: Conversation, turn: Turn) -> None:
    """Add a turn to the transcript; recording the same message again (an edit) replaces its text."""
    c, t = conversation, turn
    with db.atomic():
        db.execute(
            "insert into conversation_turns (channel, thread_ts, side, ts, episode, kind, who, text, at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (channel, thread_ts, side, ts) "
            "do update set text = excluded.text, kind = excluded.kind",
            [c.channel, c.thread_ts, t.side, t.ts, c.episode, t.kind.value, t.who, t.text, stamp(t.at)],
        )


def drop_turn(db: Database, key: Key, kind: TurnKind, ts: str) -> None:
    """Remove a deleted message from the transcript."""
    with db.atomic():
        db.table("conversation_turns").delete_where(
            "channel = ? and thread_ts = ? and side = ? and ts = ?", [*key, side_of(kind), ts]
        )


def transcript(db: Database, key: Key, episode: int | None = None) -> list[Turn]:
    """The thread's turns in the order they happened (one episode's, or all)."""
    where, args = "channel = ? and thread_ts = ?", list[Any]([*key])
    if episode is not None:
        where, args = where + " and episode = ?", [*args, episode]
    rows = db.table("conversation_turns").rows_where(where, args, order_by="at, rowid")
    return [
        Turn(TurnKind(row["kind"]), row["who"], row["text"], row["ts"], datetime.fromisoformat(row["at"]))
        for row in rows
    ]


def link_relay(db: Database, src_channel: str, src_ts: str, dst_channel: str, dst_ts: str) -> None:
    """Remember that the message `src` was relayed as `dst`, so its edits and deletion follow."""
    with db.atomic():
        db.table("relays").upsert(
            {"src_channel": src_channel, "src_ts": src_ts, "dst_channel": dst_channel, "dst_ts": dst_ts},
            pk=("src_channel", "src_ts"),
        )


def relayed(db: Database, src_channel: str, src_ts: str) -> Place | None:
    """Where the message `src` was relayed to, or None when it was not."""
    rows = list(db.table("relays").rows_where("src_channel = ? and src_ts = ?", [src_channel, src_ts]))
    return Place(rows[0]["dst_channel"], rows[0]["dst_ts"]) if rows else None


# -- rows --------------------------------------------------------------------------------


def stamp(at: datetime | None) -> str | None:
    """A time as stored: ISO 8601 in UTC, so that stored times sort and compare as text."""
    return None if at is None else as_utc(at).isoformat()


def unstamp(text: str | None) -> datetime | None:
    """A stored time back as an aware datetime."""
    return None if text is None else datetime.fromisoformat(text)


def reasons_json(reasons: tuple[Reason, ...]) -> str:
    """Reasons as stored."""
    return json.dumps(
        [{"kind": r.kind.value, "detail": r.detail, "value": r.value, "limit": r.limit} for r in reasons],
        ensure_ascii=False,
    )


def reasons_from_json(text: str | None) -> tuple[Reason, ...]:
    """Stored reasons back as `Reason`s."""
    items = json.loads(text) if text else []
    return tuple(Reason(ReasonKind(r["kind"]), r["detail"], r["value"], r["limit"]) for r in items)


def conversation_row(c: Conversation) -> dict[str, Any]:
    """A conversation as a `conversations` row."""
    return {
        "channel": c.channel,
        "thread_ts": c.thread_ts,
        "customers": json.dumps(list(c.customers)),
        "status": c.status.value,
        "agent": c.agent,
        "card_channel": c.card.channel if c.card else None,
        "card_ts": c.card.ts if c.card else None,
        "reasons": reasons_json(c.reasons),
        "episode": c.episode,
        "started_at": stamp(c.started_at),
        "handed_off_at": stamp(c.handed_off_at),
        "waiting_since": stamp(c.waiting_since),
        "alerted_at": stamp(c.alerted_at),
        "claimed_at": stamp(c.claimed_at),
        "closed_at": stamp(c.closed_at),
        "closed_by": c.closed_by,
        "last_entry": c.last_entry,
        "last_answer_ts": c.last_answer_ts,
        "offered_for": c.offered_for,
    }


def conversation_from_row(row: dict[str, Any]) -> Conversation:
    """A `conversations` row back as a conversation."""
    card = Place(row["card_channel"], row["card_ts"]) if row["card_channel"] is not None else None
    return Conversation(
        channel=row["channel"],
        thread_ts=row["thread_ts"],
        customers=tuple(json.loads(row["customers"])),
        status=Status(row["status"]),
        agent=row["agent"],
        card=card,
        reasons=reasons_from_json(row["reasons"]),
        episode=row["episode"],
        started_at=unstamp(row["started_at"]),
        handed_off_at=unstamp(row["handed_off_at"]),
        waiting_since=unstamp(row["waiting_since"]),
        alerted_at=unstamp(row["alerted_at"]),
        claimed_at=unstamp(row["claimed_at"]),
        closed_at=unstamp(row["closed_at"]),
        closed_by=row["closed_by"],
        last_entry=row["last_entry"],
        last_answer_ts=row["last_answer_ts"],
        offered_for=row["offered_for"],
    )


def episode_row(c: Conversation) -> dict[str, Any]:
    """The conversation's current episode as a `conversation_episodes` row."""
    return {
        "channel": c.channel,
        "thread_ts": c.thread_ts,
        "episode": c.episode,
        "started_at": stamp(c.started_at),
        "handed_off_at": stamp(c.handed_off_at),
        "agent": c.agent,
        "closed_at": stamp(c.closed_at),
        "closed_by": c.closed_by,
        "reasons": reasons_json(c.reasons),
    }
