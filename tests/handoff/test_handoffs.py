"""Conversations in SQLite: they survive a restart, and two agents never both win a claim."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlite_utils import Database

from handoff.conversation import (
    AgentReply,
    BotAnswered,
    CardPosted,
    Claim,
    ClaimRefused,
    Conversation,
    CustomerMessage,
    HandBack,
    HandoffTriggered,
    Place,
    RelayToCustomer,
    Resolve,
    Status,
)
from handoff.handoffs import (
    EpisodeCount,
    Moved,
    Turn,
    TurnKind,
    apply,
    claim,
    commit,
    count_episodes,
    drop_turn,
    link_relay,
    load,
    load_by_card,
    open_handoffs,
    preview,
    record_turn,
    relayed,
    save,
    transcript,
)
from handoff.store import open_database
from handoff.triggers import Reason, ReasonKind

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
KEY = ("C_SUPPORT", "1710417600.000100")
CARD = Place("C_AGENTS", "1710417605.000200")
REASONS = (
    Reason(ReasonKind.KEYWORD, "keyword 'refund'"),
    Reason(ReasonKind.NEGATIVE_SENTIMENT, "sentiment −0.70 < −0.40", -0.7, -0.4),
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "baton.db"


@pytest.fixture
def db(path: Path) -> Database:
    return open_database(path)


def hand_off(db: Database, key: tuple[str, str] = KEY, card: Place = CARD, when: float = 0) -> Conversation:
    """A customer's refund question, handed off, its card posted."""
    apply(db, key, CustomerMessage("U_CUST", "I want a refund", key[1], at(when)))
    apply(db, key, HandoffTriggered(REASONS, at(when)))
    conversation, _ = apply(db, key, CardPosted(card, at(when)))
    return conversation


def test_an_unknown_thread_loads_as_none(db: Database) -> None:
    assert load(db, *KEY) is None
    assert load_by_card(db, CARD.channel, CARD.ts) is None


def test_save_and_load_keep_every_field(db: Database, path: Path) -> None:
    conversation = Conversation(
        *KEY,
        customers=("U_CUST", "U_COLLEAGUE"),
        status=Status.RESOLVED,
        agent="U_ANA",
        card=CARD,
        reasons=REASONS,
        episode=3,
        started_at=at(0),
        handed_off_at=at(1),
        waiting_since=at(1),
        alerted_at=at(11),
        claimed_at=at(12),
        closed_at=at(20),
        closed_by="U_ANA",
        last_entry="reset-password",
        last_answer_ts="1.5",
        offered_for="1.5",
    )
    save(db, conversation)
    db.close()
    reopened = open_database(path)
    assert load(reopened, *KEY) == conversation
    assert load_by_card(reopened, CARD.channel, CARD.ts) == conversation


def test_times_are_stored_in_utc_and_read_back_equal(db: Database) -> None:
    paris = datetime(2025, 3, 14, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    save(db, Conversation(*KEY, started_at=paris))
    loaded = load(db, *KEY)
    assert loaded is not None and loaded.started_at == paris and loaded.started_at.tzinfo == UTC


def test_apply_creates_the_conversation_on_the_first_customer_turn(db: Database) -> None:
    conversation, _ = apply(db, KEY, CustomerMessage("U_CUST", "hi", "1.1", at(0)))
    assert load(db, *KEY) == conversation
    assert conversation.customers == ("U_CUST",)


def test_apply_stores_nothing_for_an_event_that_changes_nothing(db: Database) -> None:
    _, effects = apply(db, KEY, Claim("U_ANA", at(0)))
    assert load(db, *KEY) is None
    assert effects  # the agent is told there is nothing to claim


def test_preview_stores_nothing_and_commit_stores_the_move(db: Database) -> None:
    apply(db, KEY, CustomerMessage("U_CUST", "I want a refund", KEY[1], at(0)))
    before, (after, effects) = preview(db, KEY, HandoffTriggered(REASONS, at(0)))
    assert after.status is Status.WAITING and effects and load(db, *KEY) == before
    with db.atomic():
        commit(db, KEY, before, after)
    assert load(db, *KEY) == after


def test_commit_refuses_a_move_decided_on_a_stale_conversation(db: Database) -> None:
    hand_off(db)
    before, (after, _) = preview(db, KEY, Claim("U_ANA", at(1)))
    apply(db, KEY, Claim("U_BEN", at(1)))  # another process got there first
    with pytest.raises(Moved), db.atomic():
        commit(db, KEY, before, after)
    assert load(db, *KEY).agent == "U_BEN"  # type: ignore[union-attr]


def test_every_card_of_a_thread_finds_it(db: Database) -> None:
    hand_off(db)
    apply(db, KEY, HandBack("U_ANA", at(2)))
    apply(db, KEY, HandoffTriggered(REASONS, at(5)))
    newer = Place(CARD.channel, "1710417999.000300")
    apply(db, KEY, CardPosted(newer, at(5)))
    by_old, by_new = load_by_card(db, CARD.channel, CARD.ts), load_by_card(db, newer.channel, newer.ts)
    assert by_old is not None and by_new is not None
    assert by_old.key == by_new.key == KEY and by_new.card == newer


def test_a_restart_mid_handoff_loses_nothing_and_the_relay_goes_on(db: Database, path: Path) -> None:
    before = hand_off(db)
    record_turn(db, before, Turn(TurnKind.CUSTOMER, "U_CUST", "I want a refund", "1.1", at(0)))
    link_relay(db, KEY[0], "1.1", CARD.channel, "9.0")
    db.close()

    db = open_database(path)
    conversation = load_by_card(db, CARD.channel, CARD.ts)
    assert conversation == before
    after, effects = apply(db, conversation.key, AgentReply("U_ANA", "On it!", "9.1", at(3)))
    assert effects[0] == RelayToCustomer(conversation.thread, "U_ANA", "On it!", Place(CARD.channel, "9.1"))
    assert after.owner == "U_ANA"
    assert relayed(db, KEY[0], "1.1") == Place(CARD.channel, "9.0")
    assert [t.text for t in transcript(db, KEY)] == ["I want a refund"]


# -- claims ----------------------------------------------------------------------------


def test_claim_is_a_compare_and_set(db: Database) -> None:
    hand_off(db)
    assert claim(db, KEY, "U_ANA", at(1)) is True
    assert claim(db, KEY, "U_BEN", at(1)) is False
    assert claim(db, KEY, "U_ANA", at(2)) is True  # already hers
    stored = load(db, *KEY)
    assert stored is not None and stored.owner == "U_ANA"


def test_an_unknown_thread_cannot_be_claimed(db: Database) -> None:
    assert claim(db, KEY, "U_ANA", at(1)) is False
    assert load(db, *KEY) is None


def test_two_agents_claiming_at_once_from_two_connections_exactly_one_wins(db: Database, path: Path) -> None:
    keys = [("C_SUPPORT", f"17104176{n:02d}.000100") for n in range(12)]
    for n, key in enumerate(keys):
        hand_off(db, key, Place(CARD.channel, f"9{n}.0"))
    barrier = threading.Barrier(2)
    results: dict[str, list[bool]] = {"U_ANA": [], "U_BEN": []}

    def click(agent: str) -> None:
        own = open_database(path)  # another connection, as another process would have
        try:
            for key in keys:
                barrier.wait()
                results[agent].append(claim(own, key, agent, at(1)))
        finally:
            own.close()

    workers = [threading.Thread(target=click, args=(agent,)) for agent in results]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert all(not worker.is_alive() for worker in workers)
    for n, key in enumerate(keys):
        assert results["U_ANA"][n] != results["U_BEN"][n]  # exactly one won
        winner = "U_ANA" if results["U_ANA"][n] else "U_BEN"
        stored = load(db, *key)
        assert stored is not None and stored.owner == winner


def test_the_loser_of_a_claim_is_told_who_has_it(db: Database) -> None:
    hand_off(db)
    apply(db, KEY, Claim("U_ANA", at(1)))
    _, effects = apply(db, KEY, Claim("U_BEN", at(1)))
    assert effects == [ClaimRefused("U_BEN", "U_ANA", CARD)]


# -- open handoffs and episodes --------------------------------------------------------


def test_open_handoffs_lists_waiting_and_claimed_threads_longest_waiting_first(db: Database) -> None:
    first, second, third = ("C_S", "1.0"), ("C_S", "2.0"), ("C_S", "3.0")
    hand_off(db, second, Place("C_A", "b"), when=5)
    hand_off(db, first, Place("C_A", "a"), when=1)
    hand_off(db, third, Place("C_A", "c"), when=3)
    apply(db, third, Claim("U_ANA", at(4)))
    apply(db, ("C_S", "4.0"), CustomerMessage("U_X", "hello", "4.0", at(0)))  # Baton's
    apply(db, second, Resolve("U_ANA", at(6)))
    listed = open_handoffs(db)
    assert [c.key for c in listed] == [first, third]
    assert [c.status for c in listed] == [Status.WAITING, Status.CLAIMED]
    assert listed[1].owner == "U_ANA"


def test_episodes_count_conversations_and_those_baton_settled_alone(db: Database) -> None:
    apply(db, ("C_S", "1.0"), CustomerMessage("U_X", "reset my password", "1.0", at(0)))
    apply(db, ("C_S", "1.0"), BotAnswered("reset-password", "1.1", at(0)))  # Baton alone
    apply(db, ("C_S", "2.0"), CustomerMessage("U_Y", "hello", "2.0", at(0)))
    apply(db, ("C_S", "2.0"), BotAnswered(None, "2.1", at(0)))  # "not sure I understood": not settled
    apply(db, ("C_S", "3.0"), CustomerMessage("U_Z", "invoices?", "3.0", at(0)))
    apply(db, ("C_S", "3.0"), BotAnswered(None, "3.1", at(0)))
    apply(db, ("C_S", "3.0"), BotAnswered("invoices", "3.3", at(1)))  # asked again, then answered
    hand_off(db)  # a person, resolved, then the customer comes back and Baton answers
    apply(db, KEY, Resolve("U_ANA", at(5)))
    apply(db, KEY, CustomerMessage("U_CUST", "another question", "1.7", at(30)))
    apply(db, KEY, BotAnswered("billing", "1.8", at(30)))
    assert count_episodes(db, at(-60)) == EpisodeCount(total=5, bot_only=3)
    assert count_episodes(db, at(10)) == EpisodeCount(total=1, bot_only=1)


def test_a_handed_back_episode_still_counts_as_handled_by_a_person(db: Database) -> None:
    hand_off(db)
    apply(db, KEY, HandBack("U_ANA", at(2)))
    assert count_episodes(db, at(-1)) == EpisodeCount(total=1, bot_only=0)


# -- transcript and relays -------------------------------------------------------------


def test_the_transcript_keeps_turns_in_order_and_follows_edits_and_deletions(db: Database) -> None:
    conversation = hand_off(db)
    turns = [
        Turn(TurnKind.CUSTOMER, "U_CUST", "I want a refund", "1.1", at(0)),
        Turn(TurnKind.BATON, "B_BATON", "A person is joining.", "1.2", at(0.1)),
        Turn(TurnKind.NOTE, "U_ANA", "note: VIP", "1.1", at(1)),  # same ts, other thread
        Turn(TurnKind.AGENT, "U_ANA", "Hi!", "9.2", at(2)),
    ]
    for turn in reversed(turns):
        record_turn(db, conversation, turn)
    assert transcript(db, KEY) == turns
    record_turn(db, conversation, Turn(TurnKind.AGENT, "U_ANA", "Hi there!", "9.2", at(9)))
    assert transcript(db, KEY)[-1].text == "Hi there!"
    assert len(transcript(db, KEY)) == 4
    drop_turn(db, KEY, TurnKind.CUSTOMER, "1.1")
    assert [t.kind for t in transcript(db, KEY)] == [TurnKind.BATON, TurnKind.NOTE, TurnKind.AGENT]


def test_the_transcript_can_be_read_per_episode(db: Database) -> None:
    conversation = hand_off(db)
    record_turn(db, conversation, Turn(TurnKind.CUSTOMER, "U_CUST", "refund", "1.1", at(0)))
    conversation, _ = apply(db, KEY, Resolve("U_ANA", at(1)))
    conversation, _ = apply(db, KEY, CustomerMessage("U_CUST", "new question", "1.5", at(5)))
    record_turn(db, conversation, Turn(TurnKind.CUSTOMER, "U_CUST", "new question", "1.5", at(5)))
    assert [t.text for t in transcript(db, KEY, episode=2)] == ["new question"]
    assert len(transcript(db, KEY)) == 2


def test_relays_map_each_message_to_its_copy_both_ways(db: Database) -> None:
    link_relay(db, "C_SUPPORT", "1.1", "C_AGENTS", "9.0")
    link_relay(db, "C_AGENTS", "9.1", "C_SUPPORT", "1.2")
    assert relayed(db, "C_SUPPORT", "1.1") == Place("C_AGENTS", "9.0")
    assert relayed(db, "C_AGENTS", "9.1") == Place("C_SUPPORT", "1.2")
    assert relayed(db, "C_SUPPORT", "1.2") is None
    assert relayed(db, "C_OTHER", "1.1") is None  # another thread's message is never mistaken for it
