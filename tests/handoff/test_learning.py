"""FAQ drafts from agents' answers, and the suggestions list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from handoff.conversation import AgentReply, CardPosted, CustomerMessage, HandoffTriggered, Place, Resolve
from handoff.handoffs import Turn, TurnKind, apply, record_turn
from handoff.learning import Outcome, draft, episode_draft, mark, saved_as, suggestions
from handoff.store import open_database
from handoff.triggers import Reason, ReasonKind

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
KEY = ("C_SUPPORT", "1.000100")
UNSURE = (Reason(ReasonKind.LOW_CONFIDENCE, "confidence 0.21 < 0.50", 0.21, 0.5),)
ANGRY = (Reason(ReasonKind.KEYWORD, "keyword 'refund'"),)


def turn(kind: TurnKind, who: str, text: str, minutes: float) -> Turn:
    return Turn(kind, who, text, f"{minutes:.6f}", T0 + timedelta(minutes=minutes))


def test_a_draft_takes_the_question_that_was_handed_off_and_the_agents_replies() -> None:
    turns = [
        turn(TurnKind.CUSTOMER, "U_C", "hi there", 0),
        turn(TurnKind.BATON, "baton", "Could you say that differently?", 0.1),
        turn(TurnKind.CUSTOMER, "U_C", "  Can I pay in yen?  ", 1),
        turn(TurnKind.NOTE, "U_A", "note: asking finance", 2),
        turn(TurnKind.AGENT, "U_A", "Yes, yen works.", 3),
        turn(TurnKind.CUSTOMER, "U_C", "thanks!", 4),
        turn(TurnKind.AGENT, "U_A", "Set it under Billing → Currency.", 5),
    ]
    found = draft(KEY, 1, turns, handed_off_at=T0 + timedelta(minutes=1))
    assert found is not None and found.question == "Can I pay in yen?"
    assert found.answer == "Yes, yen works.\n\nSet it under Billing → Currency." and found.agent == "U_A"


def test_no_draft_without_an_agents_answer() -> None:
    turns = [
        turn(TurnKind.CUSTOMER, "U_C", "Can I pay in yen?", 0),
        turn(TurnKind.NOTE, "U_A", "note: hm", 1),
    ]
    assert draft(KEY, 1, turns, T0) is None


def answered(db: Database, key: tuple[str, str], reasons: tuple[Reason, ...], minutes: float) -> None:
    """A handed-off thread the agent answered and resolved."""
    at = T0 + timedelta(minutes=minutes)
    conversation, _ = apply(db, key, CustomerMessage("U_C", "Can I pay in yen?", key[1], at))
    record_turn(db, conversation, Turn(TurnKind.CUSTOMER, "U_C", "Can I pay in yen?", key[1], at))
    apply(db, key, HandoffTriggered(reasons, at))
    apply(db, key, CardPosted(Place("C_AGENTS", f"9{key[1]}"), at))
    conversation, _ = apply(db, key, AgentReply("U_A", "Yes, yen works.", "2.0", at))
    record_turn(db, conversation, Turn(TurnKind.AGENT, "U_A", "Yes, yen works.", "2.0", at))
    apply(db, key, Resolve("U_A", at + timedelta(minutes=1)))


def test_suggestions_are_unsure_answered_episodes_until_saved_or_dismissed() -> None:
    db = open_database(None)
    answered(db, KEY, UNSURE, 0)
    answered(db, ("C_SUPPORT", "5.000100"), ANGRY, 1)  # handed off for a keyword: not a FAQ gap
    answered(db, ("C_SUPPORT", "7.000100"), UNSURE, 2)
    listed = suggestions(db)
    assert [d.thread_ts for d in listed] == ["7.000100", "1.000100"]  # newest first
    mark(db, listed[0], Outcome.SAVED, "U_A", T0, "pay-in-yen")
    mark(db, listed[1], Outcome.DISMISSED, "U_A", T0, None)
    assert suggestions(db) == []
    assert saved_as(db, ("C_SUPPORT", "7.000100"), 1) == "pay-in-yen" and saved_as(db, KEY, 1) is None
    found = episode_draft(db, KEY, 1)
    assert found is not None and found.closed_at == T0 + timedelta(minutes=1)
