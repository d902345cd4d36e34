"""What came in: which Slack events Baton has taken, each thread's history, knowledge gaps.

Slack sends an event again when it sees no 2xx within 3 seconds, and a message that mentions
Baton arrives twice (`message` and `app_mention`, with different event ids). `Inbox.claim`
takes a message once, by its event id and by its (channel, ts), in SQLite so a restart
remembers. A claim is *taken* while Baton works on the message and *done* once the outcome
is stored (the reply is in the outbox). Slack does not send an event again once Baton has
acknowledged it, so a claim also keeps the work itself (`Work`): a turn that a previous
process took and never finished, or that failed here, is found by `unfinished` and taken up
again with `adopt`, so a crash mid-turn loses nothing (one Baton process per database).

Each thread's `History` (fallbacks in a row, 👎) is stored so repeated failure counts across
turns. Questions Baton was unsure of are kept as knowledge gaps for the App Home. Whether a
thread is handed off lives in its conversation (`handoff.handoffs`), the single source of truth.
Writes go through the caller's connection; nothing here raises beyond sqlite3's own errors.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database, Migrations

from handoff.store import register
from handoff.triggers import History

TAKEN, DONE = "taken", "done"
MAX_ATTEMPTS = 3  # a turn that failed this often is left (and logged), not retried forever
MAX_GAP_CHARS = 500
KEEP_CLAIMS = timedelta(days=7)  # Slack retries for minutes; a week is plenty of margin

migrations = register(Migrations("baton.inbox"))


@migrations()
def create_inbox_tables(db: Database) -> None:
    """Claims on events and messages, per-thread history, handoff requests."""
    db.table("inbox_claims").create({"key": str, "owner": str, "state": str, "at": str}, pk="key")
    db.table("thread_history").create(
        {
            "channel": str,
            "thread_ts": str,
            "consecutive_fallbacks": int,
            "thumbs_down": int,
            "updated_at": str,
        },
        pk=("channel", "thread_ts"),
    )
    db.table("handoff_requests").create(
        {
            "id": int,
            "channel": str,
            "thread_ts": str,
            "customer": str,
            "reasons": str,
            "requested_at": str,
            "state": str,
        },
        pk="id",
    )
    db.table("handoff_requests").create_index(["channel", "thread_ts"])


@migrations()
def conversations_replace_handoff_requests(db: Database) -> None:
    """Handoffs live in `conversations` (handoff.handoffs); low-confidence questions are kept."""
    db.table("handoff_requests").drop(ignore=True)
    db.table("knowledge_gaps").create(
        {"channel": str, "ts": str, "question": str, "confidence": float, "at": str}, pk=("channel", "ts")
    )
    db.table("knowledge_gaps").create_index(["at"])


@migrations()
def keep_unfinished_work(db: Database) -> None:
    """The work a claim stands for, until its outcome is stored."""
    db.table("inbox_work").create(
        {"key": str, "keys": str, "kind": str, "payload": str, "owner": str, "attempts": int, "at": str},
        pk="key",
    )


@dataclass(frozen=True)
class Claim:
    """The keys one message was taken under (its event id, and its channel and ts)."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Work:
    """What to do with a claimed message, kept until it is done: a kind and an opaque payload."""

    kind: str
    payload: str


@dataclass(frozen=True)
class Unfinished:
    """Claimed work that no running turn is doing: its process died, or the turn failed."""

    keys: tuple[str, ...]
    work: Work
    attempts: int


@dataclass(frozen=True)
class Gap:
    """A question Baton could not answer confidently."""

    question: str
    confidence: float
    at: datetime


def claim_keys(event_id: str | None, channel: str | None, ts: str | None) -> tuple[str, ...]:
    """The dedupe keys of an event: by event id, and by message when there is one."""
    keys = [f"event:{event_id}"] if event_id else []
    if channel and ts:
        keys.append(f"message:{channel}:{ts}")
    return tuple(keys)


class Inbox:
    """Claims, thread history and knowledge gaps in the database."""

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self._db = db
        self._clock = clock or (lambda: datetime.now(UTC))
        self.owner = uuid.uuid4().hex  # this process; claims of other owners were abandoned

    # -- claims ----------------------------------------------------------------------------
    def claim(
        self,
        event_id: str | None,
        channel: str | None = None,
        ts: str | None = None,
        work: Work | None = None,
    ) -> Claim | None:
        """Take a message (keeping its `work` until it is done), or None when it was already taken."""
        keys = claim_keys(event_id, channel, ts)
        if not keys:
            return None
        with self._db.atomic():
            rows = self._claim_rows(keys)
            if any(row["state"] == DONE or row["owner"] == self.owner for row in rows):
                return None
            self._take(keys)
            if work is not None:
                row: dict[str, object] = {"key": keys[0], "keys": json.dumps(keys), "kind": work.kind}
                row |= {"payload": work.payload, "owner": self.owner, "attempts": 1}
                self._db.table("inbox_work").upsert(row | {"at": self._clock().isoformat()}, pk="key")
        return Claim(keys)

    def _take(self, keys: Iterable[str]) -> None:
        now = self._clock().isoformat()
        self._db.table("inbox_claims").upsert_all(
            [{"key": key, "owner": self.owner, "state": TAKEN, "at": now} for key in keys], pk="key"
        )

    def finish(self, claim: Claim) -> None:
        """Mark a claimed message as dealt with for good."""
        with self._db.atomic():
            marks = ",".join("?" * len(claim.keys))
            self._db.execute(f"update inbox_claims set state = ? where key in ({marks})", [DONE, *claim.keys])
            self._db.execute("delete from inbox_work where key = ?", [claim.keys[0]])

    def fail(self, claim: Claim) -> None:
        """A turn failed here: leave its work for `unfinished` to find (Slack will not resend it)."""
        with self._db.atomic():
            self._db.execute("update inbox_work set owner = '' where key = ?", [claim.keys[0]])

    def unfinished(self) -> list[Unfinished]:
        """Work no running turn is doing (a dead process's, or failed here), oldest first."""
        rows = self._db.table("inbox_work").rows_where(
            "owner != ? and attempts < ?", [self.owner, MAX_ATTEMPTS], order_by="at, rowid"
        )
        return [
            Unfinished(tuple(json.loads(row["keys"])), Work(row["kind"], row["payload"]), row["attempts"])
            for row in rows
        ]

    def adopt(self, found: Unfinished) -> Claim | None:
        """Take over unfinished work, or None when it was finished or taken up meanwhile."""
        keys = found.keys
        with self._db.atomic():
            rows = list(self._db.table("inbox_work").rows_where("key = ?", [keys[0]]))
            done = any(row["state"] == DONE for row in self._claim_rows(keys))
            if not rows or rows[0]["owner"] == self.owner or done:
                return None
            self._take(keys)
            self._db.execute(
                "update inbox_work set owner = ?, attempts = attempts + 1 where key = ?",
                [self.owner, keys[0]],
            )
        return Claim(keys)

    def release(self, claim: Claim) -> None:
        """Give a claim back so that Slack's next retry is taken afresh (the turn failed)."""
        with self._db.atomic():
            marks = ",".join("?" * len(claim.keys))
            self._db.execute(
                f"delete from inbox_claims where state = ? and key in ({marks})", [TAKEN, *claim.keys]
            )

    def forget_before(self, when: datetime) -> int:
        """Drop claims older than `when` (Slack stopped retrying them long ago)."""
        with self._db.atomic():
            cursor = self._db.execute("delete from inbox_claims where at < ?", [when.isoformat()])
            self._db.execute("delete from inbox_work where at < ?", [when.isoformat()])
        return cursor.rowcount

    def _claim_rows(self, keys: Iterable[str]) -> list[dict[str, object]]:
        keys = list(keys)
        marks = ",".join("?" * len(keys))
        return list(self._db.table("inbox_claims").rows_where(f"key in ({marks})", keys))

    # -- thread history --------------------------------------------------------------------
    def history(self, channel: str, thread_ts: str) -> History:
        """What the thread did before this turn (a new thread has an empty history)."""
        rows = list(
            self._db.table("thread_history").rows_where("channel = ? and thread_ts = ?", [channel, thread_ts])
        )
        if not rows:
            return History()
        return History(int(rows[0]["consecutive_fallbacks"]), bool(rows[0]["thumbs_down"]))

    def save_history(self, channel: str, thread_ts: str, history: History) -> None:
        """Store the thread's history after a turn."""
        with self._db.atomic():
            self._db.table("thread_history").upsert(
                {
                    "channel": channel,
                    "thread_ts": thread_ts,
                    "consecutive_fallbacks": history.consecutive_fallbacks,
                    "thumbs_down": int(history.thumbs_down),
                    "updated_at": self._clock().isoformat(),
                },
                pk=("channel", "thread_ts"),
            )

    # -- knowledge gaps --------------------------------------------------------------------
    def note_gap(self, channel: str, ts: str, question: str, confidence: float) -> None:
        """Remember a question Baton could not answer confidently (App Home lists recent ones)."""
        with self._db.atomic():
            self._db.table("knowledge_gaps").upsert(
                {
                    "channel": channel,
                    "ts": ts,
                    "question": question[:MAX_GAP_CHARS],
                    "confidence": confidence,
                    "at": self._clock().isoformat(),
                },
                pk=("channel", "ts"),
            )

    def gaps(self, limit: int = 5) -> list[Gap]:
        """The most recent low-confidence questions, newest first."""
        rows = self._db.table("knowledge_gaps").rows_where(order_by="at desc", limit=limit)
        return [
            Gap(row["question"], float(row["confidence"]), datetime.fromisoformat(row["at"])) for row in rows
        ]


def stale_before(now: datetime) -> datetime:
    """Claims older than this may be forgotten."""
    return now - KEEP_CLAIMS
