"""The trigger policy: which turns Baton answers, clarifies or hands off, and why."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handoff.triggers import (
    Action,
    Decision,
    History,
    Reason,
    ReasonKind,
    advance,
    check_sentiment,
    decide,
    matched_keywords,
    without_answers,
)
from handoff.tuning import SettingError, TriggerSettings, compile_keyword
from models.faq import Candidate, Retrieval
from models.sentiment import Polarity, Sentiment

DEFAULTS = TriggerSettings()
NO_HISTORY = History()
CONFIDENT = Retrieval(Candidate("reset-password", 0.82, 0.90), Candidate("change-email", 0.41, 0.04), 0.93)


def unsure(confidence: float = 0.31) -> Retrieval:
    """A retrieval whose best entry is well ahead of the runner-up but not confident."""
    return Retrieval(
        Candidate("reset-password", 0.55, 0.60), Candidate("change-email", 0.30, 0.10), confidence
    )


def close_call(best: float = 0.41, runner_up: float = 0.35) -> Retrieval:
    """A retrieval with two different entries close together."""
    return Retrieval(
        Candidate("reset-password", 0.60, best), Candidate("change-email", 0.58, runner_up), 0.40
    )


def turn(
    text: str = "how do I reset my password",
    retrieval: Retrieval = CONFIDENT,
    sentiment: float = 0.0,
    human_request: float = 0.0,
    history: History = NO_HISTORY,
    settings: TriggerSettings = DEFAULTS,
) -> Decision:
    """Decide one turn, with calm, confident defaults for everything not under test."""
    mood = Sentiment(sentiment, Polarity.NEGATIVE if sentiment < 0 else Polarity.NEUTRAL)
    return decide(text, retrieval, mood, human_request, history, settings)


def details(decision: Decision) -> list[str]:
    return [reason.detail for reason in decision.reasons]


def test_a_confident_answer_is_given_without_reasons() -> None:
    assert turn() == Decision(Action.ANSWER)


def test_low_confidence_asks_to_rephrase() -> None:
    decision = turn(retrieval=unsure(0.31))
    assert decision.action is Action.CLARIFY
    assert decision.reasons == (Reason(ReasonKind.LOW_CONFIDENCE, "confidence 0.31 < 0.50", 0.31, 0.5),)
    assert decision.choices == ()


def test_confidence_exactly_at_the_threshold_is_answered() -> None:
    assert turn(retrieval=unsure(0.5)).action is Action.ANSWER


def test_no_matching_entry_is_low_confidence() -> None:
    decision = turn(retrieval=Retrieval(None, None, 0.0))
    assert details(decision) == ["no FAQ entry matches (confidence 0.00 < 0.50)"]
    assert decision.action is Action.CLARIFY


def test_two_close_entries_offer_both_instead_of_guessing() -> None:
    decision = turn(retrieval=close_call(0.41, 0.35))
    assert decision.action is Action.CLARIFY
    assert decision.choices == ("reset-password", "change-email")
    assert "'reset-password' (0.41) and 'change-email' (0.35) differ by 0.06 < 0.15" in details(decision)


def test_close_entries_clarify_even_when_confidence_is_high() -> None:
    retrieval = replace(close_call(0.45, 0.40), confidence=0.8)
    decision = turn(retrieval=retrieval)
    assert decision.action is Action.CLARIFY
    assert [reason.kind for reason in decision.reasons] == [ReasonKind.AMBIGUOUS]


def test_close_but_implausible_entries_are_just_low_confidence() -> None:
    decision = turn(retrieval=close_call(0.12, 0.10))
    assert [reason.kind for reason in decision.reasons] == [ReasonKind.LOW_CONFIDENCE]
    assert decision.choices == ()


def test_entries_far_apart_are_not_ambiguous() -> None:
    decision = turn(retrieval=replace(close_call(0.60, 0.30), confidence=0.7))
    assert decision.action is Action.ANSWER


def test_the_same_entry_twice_is_not_ambiguous() -> None:
    same = Candidate("reset-password", 0.6, 0.45)
    decision = turn(retrieval=Retrieval(same, same, 0.7))
    assert decision.action is Action.ANSWER


def test_negative_sentiment_hands_off_with_a_true_minus_sign() -> None:
    decision = turn(text="this is useless and I'm furious", sentiment=-0.72)
    assert decision.action is Action.HANDOFF
    assert details(decision) == ["sentiment −0.72 < −0.40"]
    assert decision.reasons[0].value == -0.72


def test_sentiment_at_the_threshold_does_not_hand_off() -> None:
    assert turn(sentiment=-0.4).action is Action.ANSWER


def test_a_keyword_hands_off_naming_the_keyword() -> None:
    decision = turn(text="I will file a CHARGEBACK today")
    assert decision.action is Action.HANDOFF
    assert details(decision) == ["keyword 'chargeback'"]


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("please cancel  my\naccount now", "cancel my account"),
        ("Refund, please!", "refund"),
        ("(gdpr)", "GDPR"),
        ("we had a data breach.", "data breach"),
    ],
)
def test_default_keywords_match_across_case_spacing_and_punctuation(text: str, keyword: str) -> None:
    assert keyword in matched_keywords(text, TriggerSettings().keywords)


@pytest.mark.parametrize(
    "text", ["is this refundable?", "illegally good", "legality", "cancel my accounting export"]
)
def test_keywords_only_match_whole_words(text: str) -> None:
    assert matched_keywords(text, TriggerSettings().keywords) == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my c++ build fails", ("c++",)),
        ("I paid $$$ for this", ("$$$",)),
        ("see section a.b", ("a.b",)),
        ("abc and axb", ()),
        ("the c+ grade and $$", ()),
        ("abc++", ()),
    ],
)
def test_keywords_with_regex_characters_match_literally(text: str, expected: tuple[str, ...]) -> None:
    assert matched_keywords(text, ("c++", "$$$", "a.b")) == expected


def test_regex_keywords_are_patterns() -> None:
    keywords = ("re:refund(s|ed)?", "/charge ?backs?/")
    assert matched_keywords("it was refunded", keywords) == ("re:refund(s|ed)?",)
    assert matched_keywords("a CHARGE BACK", keywords) == ("/charge ?backs?/",)
    assert matched_keywords("refunding", keywords) == ("re:refund(s|ed)?",)  # no edges added


@pytest.mark.parametrize(
    ("keyword", "text"),
    [
        ("Straße", "STRASSE problem"),
        ("GDPR", "ＧＤＰＲ request"),  # full-width letters
        ("café", "the CAFE\u0301 menu"),  # decomposed accent
        ("🔥", "this is 🔥🔥"),
        ("❤️", "I ❤ it"),  # with and without the emoji variation selector
        ("сбой", "У нас СБОЙ"),
        (":rage:", "still down 😡"),  # Slack sends `/baton keyword add 😡` as its code
        ("🤬", "still down :face_with_symbols_on_mouth:"),
    ],
)
def test_unicode_keywords_match_caselessly(keyword: str, text: str) -> None:
    assert matched_keywords(text, (keyword,)) == (keyword,)


def test_an_invalid_regex_keyword_is_refused_when_set_not_when_matching() -> None:
    with pytest.raises(SettingError, match="not a valid pattern"):
        TriggerSettings(keywords=("re:refund(",))


def test_asking_for_a_person_hands_off_with_the_score() -> None:
    decision = turn(text="can I talk to a human", human_request=0.834)
    assert decision.action is Action.HANDOFF
    assert details(decision) == ["asked for a person (0.83 ≥ 0.50)"]


def test_a_weak_human_request_score_is_ignored() -> None:
    assert turn(human_request=0.49).action is Action.ANSWER


def test_thumbs_down_hands_off() -> None:
    decision = turn(history=History(thumbs_down=True))
    assert decision.action is Action.HANDOFF
    assert details(decision) == ["👎 on a bot answer"]


def test_thumbs_down_without_text_still_hands_off() -> None:
    assert turn(text="", history=History(thumbs_down=True)).action is Action.HANDOFF


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u200b", " \u00a0 "])
def test_an_empty_message_asks_for_a_question(text: str) -> None:
    decision = turn(text=text, retrieval=Retrieval(None, None, 0.0), sentiment=-0.9)
    assert decision.action is Action.CLARIFY
    assert [reason.kind for reason in decision.reasons] == [ReasonKind.EMPTY]


def test_the_third_unclear_turn_in_a_row_hands_off() -> None:
    history, actions = History(), []
    for _ in range(3):
        decision = turn(retrieval=unsure(), history=history)
        actions.append(decision.action)
        history = advance(history, decision)
    assert actions == [Action.CLARIFY, Action.CLARIFY, Action.HANDOFF]
    assert details(decision) == [
        "3 low-confidence turns in a row (max 2)",
        "confidence 0.31 < 0.50",
    ]


def test_clarify_turns_count_as_fallbacks_too() -> None:
    decision = turn(retrieval=close_call(), history=History(consecutive_fallbacks=2))
    assert decision.action is Action.HANDOFF
    assert decision.reasons[0].kind is ReasonKind.REPEATED_FALLBACK


def test_an_answer_resets_the_count_and_an_empty_message_keeps_it() -> None:
    unclear = turn(retrieval=unsure())
    assert advance(History(1), unclear) == History(2)
    assert advance(History(1), turn(text=" ")) == History(1)
    assert advance(History(1, thumbs_down=True), turn()) == History()
    assert advance(History(1), turn(text="refund")) == History()


def test_zero_fallbacks_allowed_hands_off_the_first_unclear_turn() -> None:
    decision = turn(retrieval=unsure(), settings=TriggerSettings(max_fallbacks=0))
    assert decision.action is Action.HANDOFF
    assert "1 low-confidence turn in a row (max 0)" in details(decision)


def test_every_reason_that_fired_is_listed() -> None:
    decision = turn(
        text="I want a refund and a real person, now",
        retrieval=unsure(0.2),
        sentiment=-0.65,
        human_request=0.91,
        history=History(consecutive_fallbacks=2, thumbs_down=True),
    )
    assert decision.action is Action.HANDOFF
    assert details(decision) == [
        "👎 on a bot answer",
        "keyword 'refund'",
        "asked for a person (0.91 ≥ 0.50)",
        "sentiment −0.65 < −0.40",
        "3 low-confidence turns in a row (max 2)",
        "confidence 0.20 < 0.50",
    ]


def test_handoff_beats_clarify_and_offers_no_choices() -> None:
    decision = turn(text="lawyer here, which one?", retrieval=close_call())
    assert decision.action is Action.HANDOFF
    assert decision.choices == ()
    assert {ReasonKind.KEYWORD, ReasonKind.AMBIGUOUS} <= {r.kind for r in decision.reasons}


def test_settings_move_the_thresholds() -> None:
    strict = TriggerSettings(confidence=0.95, sentiment=-0.1, human_request=0.3)
    decision = turn(sentiment=-0.2, human_request=0.35, settings=strict)
    assert details(decision) == [
        "asked for a person (0.35 ≥ 0.30)",
        "sentiment −0.20 < −0.10",
        "confidence 0.93 < 0.95",
    ]


def usable(keyword: str) -> bool:
    try:
        compile_keyword(keyword)
    except SettingError:
        return False
    return True


unit = st.floats(0, 1)
any_float = st.floats(allow_nan=True, allow_infinity=True)
candidates = st.builds(Candidate, st.sampled_from(["a", "b", "c"]), any_float, any_float)
settings_strategy = st.builds(
    TriggerSettings,
    confidence=unit,
    ambiguity_margin=unit,
    plausible=unit,
    sentiment=st.floats(-1, 1),
    human_request=unit,
    max_fallbacks=st.integers(0, 10),
    keywords=st.lists(
        st.one_of(st.text(min_size=1), st.text().map(lambda body: "re:" + body)), max_size=5
    ).map(lambda words: tuple(word for word in words if usable(word))),
)
NUMBER = re.compile(r"[−-]?\d+\.(\d+)")


@given(
    text=st.text(),
    retrieval=st.builds(Retrieval, st.none() | candidates, st.none() | candidates, any_float),
    sentiment=any_float,
    human_request=any_float,
    history=st.builds(History, st.integers(0, 1000), st.booleans()),
    settings=settings_strategy,
)
def test_any_turn_gets_a_coherent_decision(
    text: str,
    retrieval: Retrieval,
    sentiment: float,
    human_request: float,
    history: History,
    settings: TriggerSettings,
) -> None:
    mood = Sentiment(sentiment, Polarity.NEUTRAL)
    decision = decide(text, retrieval, mood, human_request, history, settings)
    kinds = {reason.kind for reason in decision.reasons}
    handoff = kinds & {
        ReasonKind.THUMBS_DOWN,
        ReasonKind.KEYWORD,
        ReasonKind.HUMAN_REQUEST,
        ReasonKind.NEGATIVE_SENTIMENT,
        ReasonKind.REPEATED_FALLBACK,
    }
    assert (decision.action is Action.HANDOFF) == bool(handoff)
    assert (decision.action is Action.ANSWER) == (not decision.reasons)
    assert len(decision.choices) in (0, 2)
    assert not decision.choices or decision.action is Action.CLARIFY
    for reason in decision.reasons:
        if reason.kind is not ReasonKind.KEYWORD:
            assert all(2 <= len(decimals) <= 4 for decimals in NUMBER.findall(reason.detail))


def test_a_reason_shows_its_numbers_with_enough_decimals_to_tell_them_apart() -> None:
    (reason,) = check_sentiment(Sentiment(-0.404, Polarity.NEGATIVE, ()), -0.40)
    assert reason.detail == "sentiment −0.404 < −0.400"
    (reason,) = check_sentiment(Sentiment(-0.72, Polarity.NEGATIVE, ()), -0.40)
    assert reason.detail == "sentiment −0.72 < −0.40"


def test_an_entry_without_a_written_answer_is_never_sent_nor_offered() -> None:
    answer = without_answers(Decision(Action.ANSWER), {"billing"}, "billing")
    assert answer.action is Action.HANDOFF
    assert [r.detail for r in answer.reasons] == ["'billing' has no answer written yet"]
    unsure = Reason(ReasonKind.AMBIGUOUS, "close")
    offered = Decision(Action.CLARIFY, (unsure,), ("billing", "password"))
    assert without_answers(offered, {"billing"}, "billing") == Decision(Action.CLARIFY, (unsure,))
    assert without_answers(Decision(Action.ANSWER), {"billing"}, "password") == Decision(Action.ANSWER)


def test_a_polite_apology_is_not_handed_off_on_its_score_alone() -> None:
    sorry = Sentiment(-0.86, Polarity.NEGATIVE, ("model -0.80", "apology"))
    assert check_sentiment(sorry, -0.40) == []
    upset = Sentiment(-0.86, Polarity.NEGATIVE, ("model -0.80",))
    assert [r.kind for r in check_sentiment(upset, -0.40)] == [ReasonKind.NEGATIVE_SENTIMENT]
