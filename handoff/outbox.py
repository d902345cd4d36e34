"""The outbox: every message Baton must send is written first, then delivered and marked sent.

A message is `PENDING` until a sender delivers it (`SENT`, with Slack's ts) or Slack refuses
it for good (`FAILED`, kept with the error for people to see). Nothing is dropped: a pending
message is retried with backoff (or after Slack's Retry-After) until it is delivered, also
after a restart. Keys make writing idempotent: the reply to one customer message is written
once however often that message is processed.

This module keeps the state; the Slack call that delivers lives in `bot.delivery`.
Nothing here raises beyond sqlite3's own errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlite_utils import Database, Migrations

from handoff.store import register

LEASE = 30.0  # seconds the writer of a message has to deliver it before the sweep may

migrations = register(Migrations("baton.outbox"))


@migrations()
def create_outbox_table(db: Database) -> None:
    """Messages to send, with their delivery state."""
    db.table("outbox").create(
        {
            "id": int,
            "key": str,
            "kind": str,
            "channel": str,
            "thread_ts": str,
            "text": str,
            "blocks": str,
            "meta": str,
            "state": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "ts": str,
            "created_at": str,
            "sent_at": str,
        },
        pk="id",
    )
    db.table("outbox").create_index(["key"], unique=True)
    db.table("outbox").create_index(["state", "next_attempt_at"])
    db.table("outbox").create_index(["channel", "ts"])


class State(Enum):
    """Where a message is on its way to Slack."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Outgoing:
    """A message Baton must send: where, what, and the key that makes it unique."""

    key: str
    channel: str
    text: str
    blocks: tuple[dict[str, Any], ...] = ()
    thread_ts: str | None = None
    kind: str = "message"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Queued:
    """A message in the outbox with its delivery state."""

    id: int
    message: Outgoing
    state: State
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    ts: str | None
    created_at: datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before trying a message again."""

    base: float = 1.0  # seconds before the first retry after a server or connection error
    cap: float = 300.0
    inline: int = 5  # tries a sender makes in a row before leaving the message to the sweep

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `attempts` failed tries (Slack's Retry-After wins)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return float(min(self.cap, self.base * 2 ** max(0, attempts - 1)))


class Outbox:
    """The `outbox` table.

    The sender that writes a message tries it at once; the sweep leaves it alone for `lease`
    seconds and steps in only if that sender has not managed by then.
    """

    def __init__(
        self, db: Database, clock: Callable[[], datetime] | None = None, lease: float = LEASE
    ) -> None:
        self._db = db
        self._clock = clock or (lambda: datetime.now(UTC))
        self.lease = lease

    def now(self) -> datetime:
        """The outbox's clock."""
        return self._clock()

    def put(self, message: Outgoing) -> Queued:
        """Write a message to send; one already written under the same key is returned as is."""
        existing = self.get(message.key)
        if existing is not None:
            return existing
        now = self._clock()
        row = {
            "key": message.key,
            "kind": message.kind,
            "channel": message.channel,
            "thread_ts": message.thread_ts,
            "text": message.text,
            "blocks": json.dumps(list(message.blocks), ensure_ascii=False),
            "meta": json.dumps(message.meta, ensure_ascii=False),
            "state": State.PENDING.value,
            "attempts": 0,
            "next_attempt_at": (now + timedelta(seconds=self.lease)).isoformat(),
            "created_at": now.isoformat(),
        }
        with self._db.atomic():
            self._db.table("outbox").insert(row)
        queued = self.get(message.key)
        assert queued is not None
        return queued

    def get(self, key: str) -> Queued | None:
        """The message written under `key`, if any."""
        return self._one("key = ?", [key])

    def by_id(self, message_id: int) -> Queued | None:
        """The message with this id, if any."""
        return self._one("id = ?", [message_id])

    def sent_as(self, channel: str, ts: str) -> Queued | None:
        """The message Slack stored as (channel, ts): what a reaction or a reply points at."""
        return self._one("channel = ? and ts = ?", [channel, ts])

    def due(self, limit: int = 100) -> list[Queued]:
        """Pending messages whose next try is due, oldest first."""
        rows = self._db.table("outbox").rows_where(
            "state = ? and next_attempt_at <= ?",
            [State.PENDING.value, self._clock().isoformat()],
            order_by="id",
            limit=limit,
        )
        return [_queued(row) for row in rows]

    def pending(self, limit: int = 1000) -> list[Queued]:
        """Every pending message, due or not, oldest first (what a restart resumes)."""
        rows = self._db.table("outbox").rows_where(
            "state = ?", [State.PENDING.value], order_by="id", limit=limit
        )
        return [_queued(row) for row in rows]

    def pending_to(self, channel: str, thread_ts: str | None) -> list[Queued]:
        """Pending messages to one thread (or to a channel's top level), oldest first."""
        rows = self._db.table("outbox").rows_where(
            "state = ? and channel = ? and thread_ts is ?",
            [State.PENDING.value, channel, thread_ts],
            order_by="id",
        )
        return [_queued(row) for row in rows]

    def has_pending(self, channel: str, kind: str) -> bool:
        """Whether a message of this kind to `channel` is still on its way (e.g. a handoff card)."""
        row = self._db.execute(
            "select 1 from outbox where state = ? and channel = ? and kind = ? limit 1",
            [State.PENDING.value, channel, kind],
        ).fetchone()
        return row is not None

    def counts(self) -> dict[State, int]:
        """How many messages are in each state."""
        rows = self._db.execute("select state, count(*) from outbox group by state").fetchall()
        found = {State(state): count for state, count in rows}
        return {state: found.get(state, 0) for state in State}

    def next_due(self) -> datetime | None:
        """When the earliest pending message is due, if there is one."""
        row = self._db.execute(
            "select min(next_attempt_at) from outbox where state = ?", [State.PENDING.value]
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def mark_sent(self, message_id: int, ts: str | None) -> None:
        """Slack accepted the message and stored it as `ts`."""
        self._update(message_id, state=State.SENT.value, ts=ts, sent_at=self._clock().isoformat())

    def mark_retry(self, message_id: int, error: str, delay: float) -> None:
        """A try failed for a reason that passes: count it and schedule the next one."""
        when = self._clock() + timedelta(seconds=delay)
        with self._db.atomic():
            self._db.execute(
                "update outbox set attempts = attempts + 1, last_error = ?, next_attempt_at = ? where id = ?",
                [error, when.isoformat(), message_id],
            )

    def mark_failed(self, message_id: int, error: str) -> None:
        """Slack refused the message for good (kept, with the error, for people to see)."""
        with self._db.atomic():
            self._db.execute(
                "update outbox set attempts = attempts + 1, state = ?, last_error = ? where id = ?",
                [State.FAILED.value, error, message_id],
            )

    def _update(self, message_id: int, **values: object) -> None:
        with self._db.atomic():
            self._db.table("outbox").update(message_id, values)

    def _one(self, where: str, args: list[object]) -> Queued | None:
        rows = list(self._db.table("outbox").rows_where(where, args, limit=1))
        return _queued(rows[0]) if rows else None


def _queued(row: dict[str, Any]) -> Queued:
    message = Outgoing(
        key=row["key"],
        channel=row["channel"],
        text=row["text"],
        blocks=tuple(json.loads(row["blocks"] or "[]")),
        thread_ts=row["thread_ts"],
        kind=row["kind"],
        meta=json.loads(row["meta"] or "{}"),
    )
    return Queued(
        id=int(row["id"]),
        message=message,
        state=State(row["state"]),
        attempts=int(row["attempts"]),
        next_attempt_at=datetime.fromisoformat(row["next_attempt_at"]),
        last_error=row["last_error"],
        ts=row["ts"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )
