"""What came in: which Slack events Baton has taken, each thread's history, handoff requests.

Slack sends an event again when it sees no 2xx within 3 seconds, and a message that mentions
Baton arrives twice (`message` and `app_mention`, with different event ids). `Inbox.claim`
takes a message once, by its event id and by its (channel, ts), in SQLite so a restart
remembers. A claim is *taken* while Baton works on the message and *done* once the outcome
is stored (the reply is in the outbox); a claim a previous process took and never finished
is taken over, so a crash mid-turn loses nothing (one Baton process per database).

Each thread's `History` (fallbacks in a row, 👎) is stored so repeated failure counts across
turns. A handoff request is recorded for the bridge (the handoff issue) to pick up.
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
from handoff.triggers import History, Reason, ReasonKind

TAKEN, DONE = "taken", "done"
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


@dataclass(frozen=True)
class Claim:
    """The keys one message was taken under (its event id, and its channel and ts)."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class HandoffRequest:
    """A thread Baton decided a person should take over, and why."""

    channel: str
    thread_ts: str
    customer: str
    reasons: tuple[Reason, ...]
    requested_at: datetime
    state: str = "open"


def claim_keys(event_id: str | None, channel: str | None, ts: str | None) -> tuple[str, ...]:
    """The dedupe keys of an event: by event id, and by message when there is one."""
    keys = [f"event:{event_id}"] if event_id else []
    if channel and ts:
        keys.append(f"message:{channel}:{ts}")
    return tuple(keys)


class Inbox:
    """Claims, thread history and handoff requests in the database."""

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self._db = db
        self._clock = clock or (lambda: datetime.now(UTC))
        self.owner = uuid.uuid4().hex  # this process; claims of other owners were abandoned

    # -- claims ----------------------------------------------------------------------------
    def claim(self, event_id: str | None, channel: str | None = None, ts: str | None = None) -> Claim | None:
        """Take a message, or None when it was already taken (done, or in progress here)."""
        keys = claim_keys(event_id, channel, ts)
        if not keys:
            return None
        with self._db.atomic():
            rows = self._claim_rows(keys)
            if any(row["state"] == DONE or row["owner"] == self.owner for row in rows):
                return None
            now = self._clock().isoformat()
            self._db.table("inbox_claims").upsert_all(
                [{"key": key, "owner": self.owner, "state": TAKEN, "at": now} for key in keys], pk="key"
            )
        return Claim(keys)

    def finish(self, claim: Claim) -> None:
        """Mark a claimed message as dealt with for good."""
        with self._db.atomic():
            marks = ",".join("?" * len(claim.keys))
            self._db.execute(f"update inbox_claims set state = ? where key in ({marks})", [DONE, *claim.keys])

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

    # -- handoff requests ------------------------------------------------------------------
    def request_handoff(
        self, channel: str, thread_ts: str, customer: str, reasons: tuple[Reason, ...]
    ) -> None:
        """Record that a person should take this thread over (the bridge picks it up)."""
        reasons_json = json.dumps(
            [{"kind": r.kind.value, "detail": r.detail, "value": r.value, "limit": r.limit} for r in reasons],
            ensure_ascii=False,
        )
        with self._db.atomic():
            self._db.table("handoff_requests").insert(
                {
                    "channel": channel,
                    "thread_ts": thread_ts,
                    "customer": customer,
                    "reasons": reasons_json,
                    "requested_at": self._clock().isoformat(),
                    "state": "open",
                }
            )

    def open_handoff(self, channel: str, thread_ts: str) -> bool:
        """Whether the thread waits for a person (Baton then stays out of it)."""
        where = "channel = ? and thread_ts = ? and state = 'open'"
        return self._db.table("handoff_requests").count_where(where, [channel, thread_ts]) > 0

    def handoff_requests(self, state: str | None = "open") -> list[HandoffRequest]:
        """Recorded requests, oldest first (all of them when `state` is None)."""
        where, args = ("state = ?", [state]) if state else (None, [])
        rows = self._db.table("handoff_requests").rows_where(where, args, order_by="id")
        return [_request_from_row(row) for row in rows]


def _request_from_row(row: dict[str, object]) -> HandoffRequest:
    reasons = tuple(
        Reason(ReasonKind(r["kind"]), r["detail"], r["value"], r["limit"])
        for r in json.loads(str(row["reasons"]))
    )
    return HandoffRequest(
        channel=str(row["channel"]),
        thread_ts=str(row["thread_ts"]),
        customer=str(row["customer"]),
        reasons=reasons,
        requested_at=datetime.fromisoformat(str(row["requested_at"])),
        state=str(row["state"]),
    )


def stale_before(now: datetime) -> datetime:
    """Claims older than this may be forgotten."""
    return now - KEEP_CLAIMS
