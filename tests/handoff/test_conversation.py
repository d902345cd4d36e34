"""The per-thread state machine: who answers, what is relayed where, and what people are told."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.conversation import (
    AgentDelete,
    AgentEdit,
    AgentReply,
    BatonAnswers,
    BotAnswered,
    CardPosted,
    Claim,
    ClaimRefused,
    Conversation,
    CustomerDelete,
    CustomerEdit,
    CustomerMessage,
    Effect,
    Event,
    Explain,
    FollowDelete,
    FollowEdit,
    HandBack,
    HandoffTriggered,
    Place,
    PostCard,
    ReAlert,
    RelayToAgents,
    RelayToCustomer,
    Resolve,
    Status,
    Tell,
    TellCustomer,
    ThumbsDown,
    Tick,
    UpdateCard,
    is_note,
    neutralise,
    transition,
    waited,
)
from handoff.triggers import Reason, ReasonKind

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CHANNEL, THREAD = "C_SUPPORT", "1710417600.000100"
CARD = Place("C_AGENTS", "1710417605.000200")
THREAD_PLACE = Place(CHANNEL, THREAD)
REFUND = (Reason(ReasonKind.KEYWORD, "keyword 'refund'"),)
MASS_MENTION = re.compile(
    r"<!(channel|here|everyone)(\|[^>]*)?>|<!subteam\^[^>]*>|(?<![\w.])@(channel|here|everyone)\b", re.I
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(conversation: Conversation, *events: Event) -> tuple[Conversation, list[Effect]]:
    """Feed events in order; the final state and the last event's effects."""
    effects: list[Effect] = []
    for event in events:
        conversation, effects = transition(conversation, event)
    return conversation, effects


def new() -> Conversation:
    return Conversation(CHANNEL, THREAD)


def waiting() -> Conversation:
    """A thread handed off for a refund, its card posted."""
    conversation, _ = run(
        new(),
        CustomerMessage("U_CUST", "I want a refund", "1710417600.000100", at(0)),
        HandoffTriggered(REFUND, at(0)),
        CardPosted(CARD, at(0)),
    )
    return conversation


def claimed(agent: str = "U_ANA") -> Conversation:
    conversation, _ = transition(waiting(), Claim(agent, at(1)))
    return conversation


# -- Baton answers ---------------------------------------------------------------------


def test_a_new_thread_is_answered_by_baton() -> None:
    conversation, effects = transition(new(), CustomerMessage("U_CUST", "hi", "1.1", at(0)))
    assert effects == [BatonAnswers("U_CUST", "hi", "1.1")]
    assert conversation.status is Status.BOT
    assert conversation.customers == ("U_CUST",)
    assert conversation.started_at == at(0)


def test_every_customer_of_the_thread_is_remembered_once() -> None:
    conversation, _ = run(
        new(),
        CustomerMessage("U_CUST", "hi", "1.1", at(0)),
        CustomerMessage("U_COLLEAGUE", "same here", "1.2", at(1)),
        CustomerMessage("U_CUST", "hello?", "1.3", at(2)),
    )
    assert conversation.customers == ("U_CUST", "U_COLLEAGUE")
    assert conversation.is_customer("U_COLLEAGUE") and not conversation.is_customer("U_ANA")


def test_bot_answers_are_remembered() -> None:
    conversation, effects = transition(new(), BotAnswered("reset-password", "1.2", at(0)))
    assert effects == []
    assert (conversation.last_entry, conversation.last_answer_ts) == ("reset-password", "1.2")


# -- handing off -----------------------------------------------------------------------


def test_a_handoff_tells_the_customer_and_posts_a_card() -> None:
    conversation, _ = transition(new(), CustomerMessage("U_CUST", "I want a refund", "1.1", at(0)))
    conversation, effects = transition(conversation, HandoffTriggered(REFUND, at(0.5)))
    assert effects == [
        TellCustomer(THREAD_PLACE, Tell.PERSON_JOINING),
        PostCard(THREAD_PLACE, ("U_CUST",), REFUND),
    ]
    assert conversation.status is Status.WAITING
    assert conversation.reasons == REFUND
    assert conversation.waiting_since == conversation.handed_off_at == at(0.5)


def test_a_second_handoff_while_handed_off_changes_nothing() -> None:
    conversation = waiting()
    assert transition(conversation, HandoffTriggered(REFUND, at(3))) == (conversation, [])


def test_the_card_is_remembered() -> None:
    assert waiting().card == CARD


def test_customer_messages_go_to_the_card_and_baton_stays_quiet() -> None:
    conversation, effects = transition(
        waiting(), CustomerMessage("U_CUST", "still there? <!here>", "1.5", at(2))
    )
    assert effects == [RelayToAgents(CARD, "U_CUST", "still there? @\u2060here", Place(CHANNEL, "1.5"))]
    assert conversation.status is Status.WAITING


def test_customer_messages_before_the_card_is_posted_wait_for_its_transcript() -> None:
    conversation, _ = run(
        new(), CustomerMessage("U_CUST", "refund", "1.1", at(0)), HandoffTriggered(REFUND, at(0))
    )
    assert transition(conversation, CustomerMessage("U_CUST", "hello?", "1.2", at(1)))[1] == []


# -- agents ----------------------------------------------------------------------------


def test_the_first_reply_claims_and_is_relayed_under_the_agents_name() -> None:
    conversation, effects = transition(waiting(), AgentReply("U_ANA", "Hi, I'm Ana", "9.1", at(2)))
    assert effects == [
        RelayToCustomer(THREAD_PLACE, "U_ANA", "Hi, I'm Ana", Place(CARD.channel, "9.1")),
        UpdateCard(CARD, Status.CLAIMED, "U_ANA"),
    ]
    assert (conversation.status, conversation.owner, conversation.claimed_at) == (
        Status.CLAIMED,
        "U_ANA",
        at(2),
    )


def test_the_owners_later_replies_are_relayed_without_updating_the_card() -> None:
    conversation, effects = transition(claimed(), AgentReply("U_ANA", "Done!", "9.2", at(3)))
    assert effects == [RelayToCustomer(THREAD_PLACE, "U_ANA", "Done!", Place(CARD.channel, "9.2"))]
    assert conversation == claimed()


@pytest.mark.parametrize("text", ["note: VIP customer", "NOTE: check", "   Note:x", "\tnote: <!channel>"])
def test_notes_stay_internal_and_do_not_claim(text: str) -> None:
    assert transition(waiting(), AgentReply("U_ANA", text, "9.1", at(2))) == (waiting(), [])


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("note: x", True),
        ("  NoTe: x", True),
        ("notes: x", False),
        ("a note: x", False),
        ("note x", False),
        ("", False),
    ],
)
def test_is_note(text: str, note: bool) -> None:
    assert is_note(text) is note


def test_a_second_agents_reply_is_refused_and_not_sent() -> None:
    conversation, effects = transition(claimed("U_ANA"), AgentReply("U_BEN", "I can help", "9.3", at(3)))
    assert effects == [ClaimRefused("U_BEN", "U_ANA", CARD, reply_ts="9.3")]
    assert conversation.owner == "U_ANA"


def test_claim_makes_the_agent_the_owner() -> None:
    conversation, effects = transition(waiting(), Claim("U_ANA", at(1)))
    assert effects == [UpdateCard(CARD, Status.CLAIMED, "U_ANA")]
    assert conversation.owner == "U_ANA"


def test_a_second_claim_by_another_agent_is_refused() -> None:
    conversation, effects = transition(claimed("U_ANA"), Claim("U_BEN", at(2)))
    assert effects == [ClaimRefused("U_BEN", "U_ANA", CARD)]
    assert conversation == claimed("U_ANA")


def test_claiming_again_changes_nothing() -> None:
    assert transition(claimed("U_ANA"), Claim("U_ANA", at(2))) == (claimed("U_ANA"), [])


# -- closing ---------------------------------------------------------------------------


def test_resolve_invites_a_rating_and_the_next_turn_goes_to_baton() -> None:
    conversation, effects = transition(claimed("U_ANA"), Resolve("U_ANA", at(5)))
    assert effects == [
        TellCustomer(THREAD_PLACE, Tell.CLOSING, "U_ANA"),
        UpdateCard(CARD, Status.RESOLVED, "U_ANA", "U_ANA"),
    ]
    assert (conversation.status, conversation.closed_at, conversation.closed_by) == (
        Status.RESOLVED,
        at(5),
        "U_ANA",
    )
    later, effects = transition(conversation, CustomerMessage("U_CUST", "one more thing", "1.9", at(60)))
    assert effects == [BatonAnswers("U_CUST", "one more thing", "1.9")]
    assert (later.status, later.episode, later.agent, later.handed_off_at) == (Status.BOT, 2, None, None)
    assert (later.started_at, later.card, later.customers) == (at(60), CARD, ("U_CUST",))


def test_resolving_an_unclaimed_handoff_credits_whoever_resolved_it() -> None:
    _, effects = transition(waiting(), Resolve("U_LEAD", at(5)))
    assert TellCustomer(THREAD_PLACE, Tell.CLOSING, "U_LEAD") in effects


def test_a_new_handoff_after_resolving_opens_the_next_episode() -> None:
    resolved, _ = transition(claimed(), Resolve("U_ANA", at(5)))
    conversation, effects = transition(resolved, HandoffTriggered(REFUND, at(30)))
    assert (conversation.status, conversation.episode, conversation.agent) == (Status.WAITING, 2, None)
    assert PostCard(THREAD_PLACE, ("U_CUST",), REFUND) in effects


def test_hand_back_returns_the_thread_to_baton_in_the_same_episode() -> None:
    conversation, effects = transition(claimed("U_ANA"), HandBack("U_ANA", at(4)))
    assert effects == [
        TellCustomer(THREAD_PLACE, Tell.BACK_TO_BOT),
        UpdateCard(CARD, Status.BOT, None, "U_ANA"),
    ]
    assert (conversation.status, conversation.owner, conversation.episode) == (Status.BOT, None, 1)
    assert conversation.handed_off_at == at(0)  # the episode still counts as handled by a person
    _, effects = transition(conversation, CustomerMessage("U_CUST", "thanks", "1.7", at(6)))
    assert effects == [BatonAnswers("U_CUST", "thanks", "1.7")]


def test_after_hand_back_agent_replies_are_not_sent_but_claim_takes_over() -> None:
    handed_back, _ = transition(claimed("U_ANA"), HandBack("U_ANA", at(4)))
    conversation, effects = transition(handed_back, AgentReply("U_ANA", "oh, and", "9.9", at(5)))
    assert conversation == handed_back
    assert [type(e) for e in effects] == [Explain]
    conversation, effects = transition(handed_back, Claim("U_BEN", at(6)))
    assert conversation.owner == "U_BEN"
    assert effects == [
        TellCustomer(THREAD_PLACE, Tell.PERSON_JOINING),
        UpdateCard(CARD, Status.CLAIMED, "U_BEN"),
    ]


@pytest.mark.parametrize(
    ("conversation", "event"),
    [
        (new(), Resolve("U_ANA", at(1))),
        (new(), HandBack("U_ANA", at(1))),
        (new(), Claim("U_ANA", at(1))),
        (new(), AgentReply("U_ANA", "hello", "9.1", at(1))),
        (transition(claimed(), Resolve("U_ANA", at(2)))[0], Resolve("U_BEN", at(3))),
        (transition(claimed(), Resolve("U_ANA", at(2)))[0], HandBack("U_BEN", at(3))),
    ],
)
def test_actions_that_make_no_sense_change_nothing_and_say_why(
    conversation: Conversation, event: Event
) -> None:
    after, effects = transition(conversation, event)
    assert after == conversation
    assert len(effects) == 1 and isinstance(effects[0], Explain) and effects[0].text


# -- edits and deletions ---------------------------------------------------------------


def test_customer_edits_and_deletions_follow_their_message() -> None:
    conversation = waiting()
    source = Place(CHANNEL, "1.5")
    assert transition(conversation, CustomerEdit("U_CUST", "fixed <!channel>", "1.5", at(3)))[1] == [
        FollowEdit(source, "fixed @\u2060channel")
    ]
    assert transition(conversation, CustomerDelete("U_CUST", "1.5", at(3)))[1] == [FollowDelete(source)]


def test_edits_in_a_thread_never_handed_off_have_nothing_to_follow() -> None:
    assert transition(new(), CustomerEdit("U_CUST", "x", "1.1", at(1)))[1] == []
    assert transition(new(), CustomerDelete("U_CUST", "1.1", at(1)))[1] == []


def test_agent_edits_follow_and_an_edit_into_a_note_withdraws_the_copy() -> None:
    conversation = claimed()
    source = Place(CARD.channel, "9.1")
    assert transition(conversation, AgentEdit("U_ANA", "Hi <!here>", "9.1", at(3)))[1] == [
        FollowEdit(source, "Hi @\u2060here")
    ]
    assert transition(conversation, AgentEdit("U_ANA", "note: oops", "9.1", at(3)))[1] == [
        FollowDelete(source)
    ]
    assert transition(conversation, AgentDelete("U_ANA", "9.1", at(3)))[1] == [FollowDelete(source)]


# -- re-alerts -------------------------------------------------------------------------


def test_an_unclaimed_handoff_is_re_alerted_once_per_period() -> None:
    conversation = waiting()
    assert transition(conversation, Tick(at(9.9)))[1] == []
    conversation, effects = transition(conversation, Tick(at(10)))
    assert effects == [ReAlert(CARD, THREAD_PLACE, timedelta(minutes=10), REFUND)]
    conversation, effects = transition(conversation, Tick(at(15)))
    assert effects == []
    _, effects = transition(conversation, Tick(at(20)))
    assert effects == [ReAlert(CARD, THREAD_PLACE, timedelta(minutes=20), REFUND)]


def test_the_re_alert_period_is_configurable() -> None:
    assert transition(waiting(), Tick(at(3), patience=timedelta(minutes=2)))[1] != []


@pytest.mark.parametrize("conversation", [new(), claimed()])
def test_only_waiting_handoffs_are_re_alerted(conversation: Conversation) -> None:
    assert transition(conversation, Tick(at(60))) == (conversation, [])


def test_waited_counts_from_the_handoff() -> None:
    assert waited(waiting(), at(7)) == timedelta(minutes=7)
    assert waited(claimed(), at(7)) == timedelta(0)
    assert waited(waiting(), at(-1)) == timedelta(0)


# -- 👎 --------------------------------------------------------------------------------


def test_thumbs_down_on_a_bot_answer_offers_a_person_once_per_answer() -> None:
    conversation, effects = transition(new(), ThumbsDown("U_CUST", "1.2", "reset-password", at(1)))
    assert effects == [TellCustomer(THREAD_PLACE, Tell.OFFER_HUMAN)]
    assert transition(conversation, ThumbsDown("U_CUST", "1.2", "reset-password", at(2)))[1] == []
    assert transition(conversation, ThumbsDown("U_CUST", "1.4", "billing", at(2)))[1] != []


def test_thumbs_down_while_a_person_has_the_thread_offers_nothing() -> None:
    assert transition(waiting(), ThumbsDown("U_CUST", "1.2", "reset-password", at(1))) == (waiting(), [])


# -- neutralising mass mentions --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel> help", "@\u2060channel help"),
        ("<!here|here> now", "@\u2060here now"),
        ("<!everyone>", "@\u2060everyone"),
        ("ping <!subteam^S123|@support-team>", "ping @\u2060support-team"),
        ("ping <!subteam^S123>", "ping @\u2060group"),
        ("plain @here and @channel", "plain @\u2060here and @\u2060channel"),
        ("mail me at bob@here.com", "mail me at bob@here.com"),
        ("<@U123> and <#C123|general> stay", "<@U123> and <#C123|general> stay"),
        ("<!date^1392734382^{date}|Feb 18>", "<!date^1392734382^{date}|Feb 18>"),
    ],
)
def test_neutralise(text: str, expected: str) -> None:
    assert neutralise(text) == expected


MENTION_PARTS = st.sampled_from(
    ["<!", "channel", "here", "everyone", "subteam^S1", "|", "@", ">", "<", " ", "x", "!"]
)


@given(st.one_of(st.text(), st.lists(MENTION_PARTS).map("".join)))
def test_neutralised_text_has_no_mass_mention_and_is_stable(text: str) -> None:
    once = neutralise(text)
    assert MASS_MENTION.search(once) is None
    assert neutralise(once) == once


@given(st.text().filter(lambda t: "@" not in t and "<!" not in t))
def test_text_without_mentions_is_left_alone(text: str) -> None:
    assert neutralise(text) == text


# -- any sequence of events ------------------------------------------------------------

USERS = st.sampled_from(["U_CUST", "U_OTHER"])
AGENTS = st.sampled_from(["U_ANA", "U_BEN", "U_CAL"])
TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["note: internal <!here>", "  NOTE: x", "hi <!channel>", "<!subteam^S1|@t>", "hello"]),
)
TSS = st.sampled_from(["1.1", "1.2", "9.1", "9.2"])
TIMES = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2025, 1, 2), timezones=st.just(UTC))
REASONS = st.lists(st.sampled_from([*REFUND, Reason(ReasonKind.THUMBS_DOWN, "👎")]), max_size=2).map(tuple)
EVENTS = st.one_of(
    st.builds(CustomerMessage, USERS, TEXTS, TSS, TIMES),
    st.builds(CustomerEdit, USERS, TEXTS, TSS, TIMES),
    st.builds(CustomerDelete, USERS, TSS, TIMES),
    st.builds(BotAnswered, st.one_of(st.none(), st.just("reset-password")), TSS, TIMES),
    st.builds(HandoffTriggered, REASONS, TIMES),
    st.builds(CardPosted, st.builds(Place, st.just("C_AGENTS"), TSS), TIMES),
    st.builds(AgentReply, AGENTS, TEXTS, TSS, TIMES),
    st.builds(AgentEdit, AGENTS, TEXTS, TSS, TIMES),
    st.builds(AgentDelete, AGENTS, TSS, TIMES),
    st.builds(Claim, AGENTS, TIMES),
    st.builds(Resolve, AGENTS, TIMES),
    st.builds(HandBack, AGENTS, TIMES),
    st.builds(Tick, TIMES, st.sampled_from([timedelta(minutes=10), timedelta(0), timedelta(minutes=-5)])),
    st.builds(ThumbsDown, USERS, TSS, st.none(), TIMES),
)


def check_invariants(before: Conversation, event: Event, after: Conversation, effects: list[Effect]) -> None:
    """What must hold after any event in any state."""
    assert after.key == before.key
    assert (after.status is Status.CLAIMED) == (after.owner is not None)
    if after.status in (Status.BOT, Status.WAITING):
        assert after.agent is None
    if after.status is Status.WAITING:
        assert after.waiting_since is not None
    if after.status is Status.RESOLVED:
        assert after.closed_at is not None and after.closed_by is not None
    # Ownership never passes straight from one agent to another.
    if before.owner is not None and after.owner is not None:
        assert before.owner == after.owner
    assert after.episode in (before.episode, before.episode + 1)
    for effect in effects:
        if isinstance(effect, RelayToCustomer):
            assert isinstance(event, AgentReply) and not event.is_note
            assert effect.thread == after.thread and effect.agent == after.owner
        if isinstance(effect, RelayToCustomer | RelayToAgents | FollowEdit):
            assert MASS_MENTION.search(effect.text) is None
        if isinstance(effect, FollowEdit) and isinstance(event, AgentEdit):
            assert not is_note(event.text)
        if isinstance(effect, TellCustomer | PostCard):
            assert effect.thread == after.thread
        if isinstance(effect, BatonAnswers):
            assert after.status is Status.BOT
        if isinstance(effect, RelayToAgents):
            assert after.handed_off


@settings(max_examples=300)
@given(st.lists(EVENTS, max_size=25))
def test_any_sequence_of_events_keeps_the_conversation_valid(events: list[Event]) -> None:
    conversation = new()
    for event in events:
        after, effects = transition(conversation, event)
        check_invariants(conversation, event, after, effects)
        conversation = after
