"""The outbox: messages written once, kept until delivered, retried on schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from handoff.outbox import LEASE, Outbox, Outgoing, RetryPolicy, State
from handoff.store import open_database

NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
ANSWER = Outgoing(
    "reply:C1:1.0",
    "C1",
    "Click *Forgot password?*",
    ({"type": "section", "text": {"type": "mrkdwn", "text": "Click"}},),
    thread_ts="1.0",
    kind="answer",
    meta={"entry": "reset-password"},
)


class Clock:
    def __init__(self) -> None:
        self.now = NOON

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "baton.db")


def test_a_message_is_written_once_per_key(db: Database, clock: Clock) -> None:
    outbox = Outbox(db, clock)
    first = outbox.put(ANSWER)
    second = outbox.put(Outgoing("reply:C1:1.0", "C1", "something else"))
    assert second == first and first.message == ANSWER
    assert (first.state, first.attempts, first.created_at) == (State.PENDING, 0, NOON)
    assert outbox.counts() == {State.PENDING: 1, State.SENT: 0, State.FAILED: 0}


def test_the_sweep_leaves_a_new_message_to_its_writer_for_a_while(db: Database, clock: Clock) -> None:
    outbox = Outbox(db, clock)
    queued = outbox.put(ANSWER)
    assert outbox.due() == [] and outbox.pending() == [queued]
    assert outbox.next_due() == NOON + timedelta(seconds=LEASE)
    clock.advance(LEASE)
    assert outbox.due() == [queued]


def test_failed_tries_are_counted_and_rescheduled(db: Database, clock: Clock) -> None:
    outbox = Outbox(db, clock, lease=0)
    queued = outbox.put(ANSWER)
    outbox.mark_retry(queued.id, "ratelimited", 2.0)
    later = outbox.by_id(queued.id)
    assert later is not None and (later.attempts, later.last_error) == (1, "ratelimited")
    assert outbox.due() == []
    clock.advance(2.0)
    assert [q.id for q in outbox.due()] == [queued.id]


def test_sent_and_failed_messages_leave_the_queue_but_stay_on_record(tmp_path: Path, clock: Clock) -> None:
    outbox = Outbox(open_database(tmp_path / "baton.db"), clock, lease=0)
    sent, refused = outbox.put(ANSWER), outbox.put(Outgoing("note:C9:2.0", "C9", "hi"))
    outbox.mark_sent(sent.id, "1700000000.000200")
    outbox.mark_failed(refused.id, "channel_not_found")
    reopened = Outbox(open_database(tmp_path / "baton.db"), clock)
    assert reopened.pending() == [] and reopened.due() == [] and reopened.next_due() is None
    assert reopened.counts() == {State.PENDING: 0, State.SENT: 1, State.FAILED: 1}
    found = reopened.sent_as("C1", "1700000000.000200")
    assert found is not None and found.message.meta == {"entry": "reset-password"}
    failed = reopened.get("note:C9:2.0")
    assert failed is not None and (failed.state, failed.last_error) == (State.FAILED, "channel_not_found")


def test_pending_messages_survive_a_restart_in_order(tmp_path: Path, clock: Clock) -> None:
    first = Outbox(open_database(tmp_path / "baton.db"), clock)
    for n in range(3):
        first.put(Outgoing(f"k{n}", "C1", f"message {n}"))
    again = Outbox(open_database(tmp_path / "baton.db"), clock)
    assert [q.message.text for q in again.pending()] == ["message 0", "message 1", "message 2"]


def test_retry_delays_back_off_and_follow_retry_after() -> None:
    policy = RetryPolicy(base=1.0, cap=10.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.delay(3, retry_after=30) == 30.0 and policy.delay(1, retry_after=-5) == 0.0
