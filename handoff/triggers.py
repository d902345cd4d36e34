"""The trigger policy: answer, ask a clarifying question, or hand off to a person.

`decide` is pure: it takes the turn's text, the FAQ retrieval, the sentiment, the
human-request score, the thread's history and the settings, and returns a `Decision`
listing every reason that fired with its numbers. It raises nothing for any text or
scores; bad settings are refused earlier, when they are made (`handoff.tuning.SettingError`).

Repeated failure: a *fallback* is a turn Baton cannot answer confidently (low confidence
or two close candidates). Baton may reply to `max_fallbacks` consecutive fallbacks with a
question; the turn that would be fallback number `max_fallbacks + 1` in a row is handed
off instead. With the default 2: unclear, unclear, then a person. An answer resets the
count; an empty message leaves it alone.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import Enum

from handoff.tuning import TriggerSettings, compile_keyword, fold
from models.faq import Retrieval
from models.sentiment import APOLOGY_SIGNAL, Sentiment


class Action(Enum):
    """What Baton does with a turn."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    HANDOFF = "handoff"


class ReasonKind(Enum):
    """Why a turn was not simply answered."""

    EMPTY = "empty"
    LOW_CONFIDENCE = "low_confidence"
    AMBIGUOUS = "ambiguous"
    NEGATIVE_SENTIMENT = "negative_sentiment"
    KEYWORD = "keyword"
    HUMAN_REQUEST = "human_request"
    REPEATED_FALLBACK = "repeated_fallback"
    THUMBS_DOWN = "thumbs_down"
    NO_ANSWER = "no_answer"


HANDOFF_KINDS = frozenset(
    {
        ReasonKind.NEGATIVE_SENTIMENT,
        ReasonKind.KEYWORD,
        ReasonKind.HUMAN_REQUEST,
        ReasonKind.REPEATED_FALLBACK,
        ReasonKind.THUMBS_DOWN,
        ReasonKind.NO_ANSWER,
    }
)
FALLBACK_KINDS = frozenset({ReasonKind.LOW_CONFIDENCE, ReasonKind.AMBIGUOUS})


@dataclass(frozen=True)
class Reason:
    """One trigger that fired: its kind, a human string, and the numbers behind it."""

    kind: ReasonKind
    detail: str
    value: float | None = None
    limit: float | None = None


@dataclass(frozen=True)
class History:
    """What the thread did before this turn."""

    consecutive_fallbacks: int = 0  # fallback turns in a row just before this one
    thumbs_down: bool = False  # the customer gave 👎 to Baton's last answer


@dataclass(frozen=True)
class Decision:
    """The action for a turn, every reason that fired, and the entries to offer when unsure."""

    action: Action
    reasons: tuple[Reason, ...] = ()
    choices: tuple[str, ...] = ()  # CLARIFY between two close entries: their ids, best first

    @property
    def fallback(self) -> bool:
        """Whether this turn counts towards repeated failure."""
        return any(reason.kind in FALLBACK_KINDS for reason in self.reasons)


def decide(
    text: str,
    retrieval: Retrieval,
    sentiment: Sentiment,
    human_request: float,
    history: History,
    settings: TriggerSettings,
) -> Decision:
    """Decide what to do with one customer turn, listing every reason that fired."""
    handoffs = list(check_thumbs_down(history))
    if is_blank(text):
        if handoffs:
            return Decision(Action.HANDOFF, tuple(handoffs))
        return Decision(Action.CLARIFY, (Reason(ReasonKind.EMPTY, "the message has no text"),))
    handoffs += check_keywords(text, settings.keywords)
    handoffs += check_human_request(human_request, settings.human_request)
    handoffs += check_sentiment(sentiment, settings.sentiment)
    fallbacks = check_confidence(retrieval, settings.confidence)
    fallbacks += check_ambiguity(retrieval, settings)
    if fallbacks:
        handoffs += check_repeats(history.consecutive_fallbacks + 1, settings.max_fallbacks)
    reasons = (*handoffs, *fallbacks)
    if handoffs:
        return Decision(Action.HANDOFF, reasons)
    if fallbacks:
        return Decision(Action.CLARIFY, reasons, offer_choices(fallbacks, retrieval))
    return Decision(Action.ANSWER)


def without_answers(decision: Decision, unanswered: set[str], best: str | None) -> Decision:
    """The decision when some entries have no written answer: never send one, never offer one.

    An answer from such an entry goes to a person (the topic is known, the words are not);
    a choice that includes one becomes a plain question.
    """
    if decision.action is Action.ANSWER and best in unanswered:
        reason = Reason(ReasonKind.NO_ANSWER, f"'{best}' has no answer written yet")
        return Decision(Action.HANDOFF, (reason,))
    if any(choice in unanswered for choice in decision.choices):
        return Decision(decision.action, decision.reasons)
    return decision


def advance(history: History, decision: Decision) -> History:
    """The thread's history after this turn's decision (the 👎 is used up)."""
    if decision.action is Action.HANDOFF:
        return History()
    if decision.fallback:
        return History(history.consecutive_fallbacks + 1)
    if decision.action is Action.ANSWER:
        return History()
    return History(history.consecutive_fallbacks)


def matched_keywords(text: str, keywords: tuple[str, ...]) -> tuple[str, ...]:
    """The keywords (as written by the admin) that occur in the text."""
    folded = fold(text)
    return tuple(keyword for keyword in keywords if compile_keyword(keyword).search(folded))


def check_thumbs_down(history: History) -> list[Reason]:
    """A 👎 on Baton's last answer."""
    if not history.thumbs_down:
        return []
    return [Reason(ReasonKind.THUMBS_DOWN, "👎 on a bot answer")]


def check_keywords(text: str, keywords: tuple[str, ...]) -> list[Reason]:
    """One reason per handoff keyword in the text."""
    return [Reason(ReasonKind.KEYWORD, f"keyword '{k}'") for k in matched_keywords(text, keywords)]


def check_human_request(score: float, threshold: float) -> list[Reason]:
    """An explicit request for a person, scored by `models.requests`."""
    if not score >= threshold:
        return []
    detail = f"asked for a person ({versus(score, '≥', threshold)})"
    return [Reason(ReasonKind.HUMAN_REQUEST, detail, score, threshold)]


def check_sentiment(sentiment: Sentiment, threshold: float) -> list[Reason]:
    """A clearly upset customer (not one who apologises: "sorry, I meant…" reads as sad to the model)."""
    if not sentiment.score < threshold or APOLOGY_SIGNAL in sentiment.signals:
        return []
    detail = f"sentiment {versus(sentiment.score, '<', threshold)}"
    return [Reason(ReasonKind.NEGATIVE_SENTIMENT, detail, sentiment.score, threshold)]


def check_confidence(retrieval: Retrieval, threshold: float) -> list[Reason]:
    """No FAQ entry, or one the engine is not confident enough about."""
    confidence = retrieval.confidence if retrieval.best is not None else 0.0
    if retrieval.best is not None and confidence >= threshold:  # NaN counts as unsure
        return []
    numbers = f"confidence {versus(confidence, '<', threshold)}"
    detail = numbers if retrieval.best is not None else f"no FAQ entry matches ({numbers})"
    return [Reason(ReasonKind.LOW_CONFIDENCE, detail, confidence, threshold)]


def check_ambiguity(retrieval: Retrieval, settings: TriggerSettings) -> list[Reason]:
    """Two different, plausible entries too close to tell apart."""
    best, runner_up = retrieval.best, retrieval.runner_up
    if best is None or runner_up is None or best.entry_id == runner_up.entry_id:
        return []
    gap = abs(best.probability - runner_up.probability)
    plausible = min(best.probability, runner_up.probability) >= settings.plausible
    if not (plausible and gap < settings.ambiguity_margin):
        return []
    detail = (
        f"'{best.entry_id}' ({show(best.probability)}) and '{runner_up.entry_id}' "
        f"({show(runner_up.probability)}) differ by {versus(gap, '<', settings.ambiguity_margin)}"
    )
    return [Reason(ReasonKind.AMBIGUOUS, detail, gap, settings.ambiguity_margin)]


def check_repeats(fallbacks: int, limit: int) -> list[Reason]:
    """Too many unclear turns in a row, counting this one."""
    if fallbacks <= limit:
        return []
    turns = "turn" if fallbacks == 1 else "turns"
    detail = f"{fallbacks} low-confidence {turns} in a row (max {limit})"
    return [Reason(ReasonKind.REPEATED_FALLBACK, detail, float(fallbacks), float(limit))]


def offer_choices(fallbacks: list[Reason], retrieval: Retrieval) -> tuple[str, ...]:
    """The two entry ids to ask about when the turn was ambiguous."""
    ambiguous = any(reason.kind is ReasonKind.AMBIGUOUS for reason in fallbacks)
    if not ambiguous or retrieval.best is None or retrieval.runner_up is None:
        return ()
    return (retrieval.best.entry_id, retrieval.runner_up.entry_id)


def is_blank(text: str) -> bool:
    """Whether a message has nothing to answer: only spaces or invisible characters."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def show(number: float, digits: int = 2) -> str:
    """A number with two decimals and a true minus sign, as reasons print them."""
    text = f"{number:.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def versus(value: float, sign: str, limit: float) -> str:
    """`value sign limit` with enough decimals (two to four) that the two numbers differ."""
    digits = 2
    while digits < 4 and value != limit and show(value, digits) == show(limit, digits):
        digits += 1
    return f"{show(value, digits)} {sign} {show(limit, digits)}"
