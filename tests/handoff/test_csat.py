"""CSAT from 👍/👎: who may vote, the latest vote wins, and what the report adds up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Database

from handoff.conversation import (
    AgentReply,
    BotAnswered,
    CardPosted,
    Conversation,
    CustomerMessage,
    HandoffTriggered,
    Place,
    Resolve,
)
from handoff.csat import (
    Ballot,
    Outcome,
    Rated,
    Report,
    Review,
    Tally,
    bot_answer,
    closing_message,
    csat_report,
    needs_review,
    rated_message,
    remember,
    render_report,
    report_json,
    vote,
    vote_for,
    withdraw,
)
from handoff.handoffs import apply
from handoff.store import open_database
from handoff.triggers import Reason, ReasonKind

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CHANNEL = "C_SUPPORT"
REFUND = (Reason(ReasonKind.KEYWORD, "keyword 'refund'"),)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "baton.db")


def answered(db: Database, thread: str, answer_ts: str, entry_id: str) -> Conversation:
    """A thread where Baton answered from `entry_id`, the answer remembered for rating."""
    conversation, _ = apply(db, (CHANNEL, thread), CustomerMessage("U_CUST", "how?", thread, at(0)))
    apply(db, (CHANNEL, thread), BotAnswered(entry_id, answer_ts, at(0)))  # as the answer lands
    remember(db, bot_answer(conversation, answer_ts, entry_id, at(0)))
    return conversation


def closed_by_agent(db: Database, thread: str, closing_ts: str, agent: str) -> Conversation:
    """A thread handed off, answered by `agent`, resolved; its closing message remembered."""
    key = (CHANNEL, thread)
    apply(db, key, CustomerMessage("U_CUST", "refund please", thread, at(0)))
    apply(db, key, HandoffTriggered(REFUND, at(0)))
    apply(db, key, CardPosted(Place("C_AGENTS", f"card-{thread}"), at(0)))
    apply(db, key, AgentReply(agent, "Done.", f"r-{thread}", at(1)))
    conversation, _ = apply(db, key, Resolve(agent, at(2)))
    remember(db, closing_message(conversation, closing_ts, agent, at(2)))
    return conversation


# -- reactions to votes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("reaction", "expected"),
    [
        ("+1", 1),
        ("thumbsup", 1),
        ("+1::skin-tone-2", 1),
        ("thumbsup::skin-tone-6", 1),
        (":+1:", 1),
        ("-1", -1),
        ("thumbsdown", -1),
        ("-1::skin-tone-4", -1),
        ("thumbsdown::skin-tone-3", -1),
        ("white_check_mark", None),
        ("heart", None),
        ("+1::skin-tone-7", None),
        ("thumbsup_all", None),
        ("", None),
    ],
)
def test_vote_for(reaction: str, expected: int | None) -> None:
    assert vote_for(reaction) == expected


@given(st.text())
def test_vote_for_any_reaction_is_a_vote_or_none(reaction: str) -> None:
    assert vote_for(reaction) in (1, -1, None)


# -- voting ----------------------------------------------------------------------------


def test_a_customers_thumbs_up_on_a_bot_answer_is_counted_with_its_entry(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    ballot = vote(db, CHANNEL, "1.1", "U_CUST", "+1::skin-tone-3", True, at(1))
    assert (ballot.outcome, ballot.vote) == (Outcome.COUNTED, 1)
    assert ballot.message is not None and ballot.message.entry_id == "reset-password"
    assert not ballot.offers_human


def test_a_thumbs_down_on_a_bot_answer_offers_a_person_and_flags_the_entry(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    ballot = vote(db, CHANNEL, "1.1", "U_CUST", "thumbsdown", True, at(1))
    assert ballot.offers_human
    assert needs_review(db) == [Review("reset-password", down=1, up=0, last_down_at=at(1))]


def test_only_the_threads_customers_may_vote(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    ballot = vote(db, CHANNEL, "1.1", "U_STRANGER", "-1", False, at(1))
    assert ballot.outcome is Outcome.NOT_CUSTOMER and not ballot.offers_human
    assert csat_report(db, at(-60)).overall == Tally()
    assert needs_review(db) == []


def test_reactions_that_are_not_votes_or_not_on_rated_messages_are_ignored(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    assert vote(db, CHANNEL, "1.1", "U_CUST", "tada", True, at(1)) == Ballot(Outcome.NOT_A_VOTE)
    assert vote(db, CHANNEL, "1.0", "U_CUST", "+1", True, at(1)) == Ballot(Outcome.NOT_RATED)
    assert vote(db, "C_ELSEWHERE", "1.1", "U_CUST", "+1", True, at(1)) == Ballot(Outcome.NOT_RATED)


def test_one_vote_per_person_per_message_and_the_latest_wins(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    vote(db, CHANNEL, "1.1", "U_CUST", "+1", True, at(1))
    ballot = vote(db, CHANNEL, "1.1", "U_CUST", "-1", True, at(2))
    assert ballot.vote == -1
    assert csat_report(db, at(-60)).overall == Tally(up=0, down=1)


def test_removing_the_reaction_withdraws_the_vote(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    vote(db, CHANNEL, "1.1", "U_CUST", "+1", True, at(1))
    ballot = withdraw(db, CHANNEL, "1.1", "U_CUST", "+1")
    assert (ballot.outcome, ballot.vote) == (Outcome.WITHDRAWN, None)
    assert csat_report(db, at(-60)).overall == Tally()


def test_removing_an_older_reaction_leaves_the_latest_vote(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    vote(db, CHANNEL, "1.1", "U_CUST", "+1", True, at(1))
    vote(db, CHANNEL, "1.1", "U_CUST", "-1", True, at(2))
    assert withdraw(db, CHANNEL, "1.1", "U_CUST", "+1").vote == -1
    assert csat_report(db, at(-60)).overall == Tally(up=0, down=1)


def test_removing_the_latest_reaction_brings_back_the_one_still_in_place(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    vote(db, CHANNEL, "1.1", "U_CUST", "+1", True, at(1))
    vote(db, CHANNEL, "1.1", "U_CUST", "-1", True, at(2))
    assert withdraw(db, CHANNEL, "1.1", "U_CUST", "-1").vote == 1
    assert csat_report(db, at(-60)).overall == Tally(up=1, down=0)


def test_removing_a_reaction_that_was_never_counted_changes_nothing(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    vote(db, CHANNEL, "1.1", "U_CUST", "+1", True, at(1))
    assert withdraw(db, CHANNEL, "1.1", "U_OTHER", "+1").outcome is Outcome.NO_VOTE
    assert csat_report(db, at(-60)).overall == Tally(up=1, down=0)


def test_a_closing_message_is_rated_for_the_agent_with_the_handoff_reasons(db: Database) -> None:
    closed_by_agent(db, "2.0", "2.9", "U_ANA")
    message = rated_message(db, CHANNEL, "2.9")
    assert message is not None
    assert (message.kind, message.agent, message.reasons) == (Rated.CLOSING, "U_ANA", REFUND)
    ballot = vote(db, CHANNEL, "2.9", "U_CUST", "thumbsup", True, at(3))
    assert ballot.outcome is Outcome.COUNTED and not ballot.offers_human


def test_votes_survive_a_restart(tmp_path: Path) -> None:
    db = open_database(tmp_path / "baton.db")
    answered(db, "1.0", "1.1", "reset-password")
    vote(db, CHANNEL, "1.1", "U_CUST", "-1", True, at(1))
    db.close()
    assert csat_report(open_database(tmp_path / "baton.db"), at(-60)).overall == Tally(up=0, down=1)


# -- the report ------------------------------------------------------------------------


def test_the_report_splits_bot_and_human_per_entry_and_agent(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    answered(db, "3.0", "3.1", "reset-password")
    answered(db, "4.0", "4.1", "billing-cycle")
    closed_by_agent(db, "2.0", "2.9", "U_ANA")
    closed_by_agent(db, "5.0", "5.9", "U_BEN")
    vote(db, CHANNEL, "1.1", "U_CUST", "+1", True, at(3))
    vote(db, CHANNEL, "3.1", "U_CUST", "+1", True, at(3))
    vote(db, CHANNEL, "4.1", "U_CUST", "-1", True, at(3))
    vote(db, CHANNEL, "2.9", "U_CUST", "+1", True, at(3))
    vote(db, CHANNEL, "5.9", "U_CUST", "-1", True, at(3))
    report = csat_report(db, at(-60))
    assert report.overall == Tally(3, 2) and report.overall.percent == 60
    assert (report.bot, report.human) == (Tally(2, 1), Tally(1, 1))
    assert report.by_entry == {"billing-cycle": Tally(0, 1), "reset-password": Tally(2, 0)}
    assert report.by_agent == {"U_ANA": Tally(1, 0), "U_BEN": Tally(0, 1)}
    assert (report.conversations, report.bot_only) == (5, 3)
    assert report.bot_resolution_rate == 60


def test_the_report_counts_only_votes_and_conversations_since_the_start(db: Database) -> None:
    answered(db, "1.0", "1.1", "reset-password")
    vote(db, CHANNEL, "1.1", "U_CUST", "+1", True, at(3))
    report = csat_report(db, at(10))
    assert report.overall == Tally() and report.conversations == 0
    assert report.overall.percent is None and report.bot_resolution_rate is None


def test_rendering_the_report() -> None:
    report = Report(
        since=T0,
        overall=Tally(3, 1),
        bot=Tally(2, 1),
        human=Tally(1, 0),
        by_entry={"billing-cycle": Tally(0, 1), "reset-password": Tally(2, 0)},
        by_agent={"U_ANA": Tally(1, 0)},
        conversations=4,
        bot_only=3,
    )
    text = render_report(report, 7, name=lambda agent: f"<@{agent}>")
    assert "Overall: 75% (3 of 4)" in text
    assert "Baton's answers: 67% (2 of 3)" in text
    assert "People: 100% (1 of 1)" in text
    assert "Bot resolution rate: 75% (3 of 4 conversations answered by Baton alone)" in text
    assert "billing-cycle: 0% (0 of 1)  ← 1 👎, needs review" in text
    assert "<@U_ANA>: 100% (1 of 1)" in text
    assert "last 7 days" in text


def test_rendering_an_empty_report() -> None:
    text = render_report(Report(since=T0), 1)
    assert "Overall: no votes" in text and "no conversations" in text and "last 1 day " in text


def test_the_report_as_json() -> None:
    report = Report(since=T0, overall=Tally(1, 1), by_entry={"x": Tally(1, 0)}, conversations=2, bot_only=1)
    data = json.loads(json.dumps(report_json(report)))
    assert data["overall"] == {"up": 1, "down": 1, "total": 2, "csat": 50.0}
    assert data["by_entry"]["x"]["csat"] == 100.0
    assert data["bot"]["csat"] is None
    assert data["bot_resolution_rate"] == 50.0
    assert data["since"] == T0.isoformat()
