"""The inbox: each Slack message taken once, across retries, duplicates and restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from handoff.inbox import MAX_ATTEMPTS, Inbox, Work, claim_keys, stale_before
from handoff.store import open_database
from handoff.triggers import History

NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "baton.db"


@pytest.fixture
def db(path: Path) -> Database:
    return open_database(path)


def test_a_message_is_taken_once_by_event_id_and_by_channel_and_ts(db: Database) -> None:
    inbox = Inbox(db)
    claim = inbox.claim("Ev1", "C1", "1.000100")
    assert claim is not None and claim.keys == ("event:Ev1", "message:C1:1.000100")
    assert inbox.claim("Ev1", "C1", "1.000100") is None  # Slack's retry
    assert inbox.claim("Ev2", "C1", "1.000100") is None  # the app_mention copy
    assert inbox.claim("Ev1") is None
    assert inbox.claim("Ev3", "C1", "1.000200") is not None


def test_a_finished_claim_survives_a_restart(path: Path) -> None:
    first = Inbox(open_database(path))
    claim = first.claim("Ev1", "C1", "1.000100")
    assert claim is not None
    first.finish(claim)
    assert Inbox(open_database(path)).claim("Ev1", "C1", "1.000100") is None


def test_a_claim_left_unfinished_by_a_dead_process_is_taken_over(path: Path) -> None:
    assert Inbox(open_database(path)).claim("Ev1", "C1", "1.000100") is not None
    after_restart = Inbox(open_database(path))
    assert after_restart.claim("Ev1", "C1", "1.000100") is not None
    assert after_restart.claim("Ev1", "C1", "1.000100") is None


def test_a_released_claim_can_be_taken_again(db: Database) -> None:
    inbox = Inbox(db)
    claim = inbox.claim("Ev1", "C1", "1.0")
    assert claim is not None
    inbox.release(claim)
    assert inbox.claim("Ev1", "C1", "1.0") is not None


def test_nothing_to_claim_without_ids() -> None:
    assert claim_keys(None, None, None) == ()
    assert Inbox(open_database(None)).claim(None) is None


def test_old_claims_are_forgotten(db: Database) -> None:
    clock = [NOON - timedelta(days=8)]
    inbox = Inbox(db, clock=lambda: clock[0])
    assert inbox.claim("Ev_old") is not None
    clock[0] = NOON
    assert inbox.claim("Ev_new") is not None
    assert inbox.forget_before(stale_before(NOON)) == 1
    assert [row["key"] for row in db.table("inbox_claims").rows] == ["event:Ev_new"]


def test_thread_history_persists(path: Path) -> None:
    inbox = Inbox(open_database(path))
    assert inbox.history("C1", "1.0") == History()
    inbox.save_history("C1", "1.0", History(2, thumbs_down=True))
    inbox.save_history("C1", "2.0", History(1))
    again = Inbox(open_database(path))
    assert again.history("C1", "1.0") == History(2, True)
    assert again.history("C1", "2.0") == History(1)


def test_knowledge_gaps_are_kept_newest_first(db: Database) -> None:
    clock = [NOON]
    inbox = Inbox(db, clock=lambda: clock[0])
    inbox.note_gap("C1", "1.0", "banana smoothie recipe", 0.12)
    clock[0] = NOON + timedelta(minutes=1)
    inbox.note_gap("C1", "2.0", "x" * 900, 0.3)
    inbox.note_gap("C1", "2.0", "x" * 900, 0.3)  # Slack's retry of the same message
    gaps = inbox.gaps()
    assert [len(g.question) for g in gaps] == [500, len("banana smoothie recipe")]
    assert gaps[1].confidence == 0.12 and gaps[1].at == NOON


def test_the_old_handoff_requests_table_is_gone(db: Database) -> None:
    assert "handoff_requests" not in db.table_names() and "conversations" in db.table_names()


def test_claimed_work_is_kept_until_the_turn_is_done(path: Path) -> None:
    inbox = Inbox(open_database(path))
    claim = inbox.claim("Ev1", "C1", "1.000100", Work("customer_turn", '{"text": "hi"}'))
    assert claim is not None and inbox.unfinished() == []  # in progress here
    inbox.finish(claim)
    assert Inbox(open_database(path)).unfinished() == []


def test_a_dead_process_work_is_taken_up_once_by_the_next(path: Path) -> None:
    first = Inbox(open_database(path))
    first.claim("Ev1", "C1", "1.000100", Work("customer_turn", "{}"))
    second = Inbox(open_database(path))  # the restarted process
    (found,) = second.unfinished()
    assert found.work == Work("customer_turn", "{}") and found.keys == ("event:Ev1", "message:C1:1.000100")
    claim = second.adopt(found)
    assert claim is not None and second.adopt(found) is None and second.unfinished() == []
    assert second.claim("Ev1", "C1", "1.000100") is None  # a late retry from Slack is dropped
    second.finish(claim)
    assert Inbox(open_database(path)).unfinished() == []


def test_failed_work_is_retried_a_few_times_then_left(db: Database) -> None:
    inbox = Inbox(db)
    claim = inbox.claim("Ev1", "C1", "1.000100", Work("customer_turn", "{}"))
    for _ in range(MAX_ATTEMPTS - 1):
        assert claim is not None
        inbox.fail(claim)
        (found,) = inbox.unfinished()
        claim = inbox.adopt(found)
    assert claim is not None
    inbox.fail(claim)
    assert inbox.unfinished() == []
