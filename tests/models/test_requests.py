"""The human-request detector: asking for a person, told apart by meaning from look-alikes."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from handoff.tuning import HUMAN_REQUEST
from models.encoder import TransformerEncoder
from models.requests import (
    ASKING_FOR_A_PERSON,
    LOOK_ALIKES,
    HumanRequestDetector,
    RequestError,
    clauses,
    has_cue,
)

# Phrasings written for measurement, none of them a prototype: the threshold
# (handoff.tuning.HUMAN_REQUEST) was chosen from the scores of these two lists.
ASKING = (
    "could I please speak with an actual human being",
    "I'd rather talk to somebody real",
    "get me a person",
    "human please",
    "representative",
    "I want to talk to a support agent, not a machine",
    "Is anyone there? A real person?",
    "this bot is useless, put me through to staff",
    "operator!",
    "can a member of your staff help me",
    "I need to speak to someone",
    "escalate to a human",
    "talk to agent",
    "can i chat w/ a real human pls",
    "connect me to a live person",
    "are you a bot? I want a human",
    "Can I get a human on the line?",
    "I want to speak with your support team directly",
    "is there a real person I could chat with",
    "hand me over to one of your staff",
    "enough with the automated answers, I need a person",
    "please let me talk to customer support",
    "AGENT",
    "i want a human",
    "get a real human in here",
    "can I talk with somebody who works there",
    "Connect me to an agent please",
    "I'd like to speak to a manager",
    "need to talk to a live rep",
    "human!!!",
    "no more bot, real person please",
    "yo can I get an actual person",
    "I need to talk to someone on your support team",
    "please pass me to a colleague of yours",
    "real human, now",
    "can you put a person on this",
    "talk to human",
    "I don't want a chatbot, I want customer service",
    "could a support rep reach out to me?",
    "is a live agent available",
    "speak to a person please",
    "I demand to speak with a supervisor",
    "put me in touch with a real support engineer",
)
NOT_ASKING = (
    "how many agents can my plan have",
    "add a user to my workspace",
    "the human resources module",
    "how do I invite people to my channel",
    "what is a support agent license",
    "my agent app keeps crashing",
    "can I rename a user",
    "does the HR integration sync employees",
    "how do I transfer ownership of a workspace",
    "where can I download my invoice",
    "person field is missing in the export",
    "the representative field in the CRM sync is empty",
    "how do I talk to my team in a thread",
    "human readable logs",
    "can the operator role edit billing",
    "who can see my messages",
    "how do I contact sales about pricing",
    "how do I add a guest to a channel",
    "can agents see private channels",
    "what's the human review step in approvals",
    "how do I talk to the API",
    "where do I find my team's directory",
    "how do I remove a member from a channel",
    "how much does an extra agent seat cost",
    "the person icon on the sidebar is gone",
    "do you support operator overloading in the formula editor",
    "can I speak at the webinar",
    "how do I connect my calendar",
    "my manager cannot approve requests",
    "how do I chat with my whole team at once",
    "does support work on weekends",
    "is customer data stored in the EU",
    "I want to cancel my plan",
    "how do I set a person's display name",
    "where is the agent dashboard",
    "can I talk to the bot in French",
    "is there a human-readable changelog",
    "how do I make someone an admin",
    "how many people can join a huddle",
    "can I speak at your user conference",
    "how do I connect Salesforce",
    "our support rep role needs billing access",
    "reset the operator password",
    "I can't find the people tab",
    "do you have a real-time API",
    "add my colleague to the project",
)


class HashEncoder:
    """A stand-in encoder: a stable pseudo-random unit vector per text."""

    name = "hash"
    dim = 8

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text, seeded by the text."""
        rows = [np.random.default_rng(zlib.crc32(text.encode())).normal(size=self.dim) for text in texts]
        array = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return array / np.linalg.norm(array, axis=1, keepdims=True)


def scores(encoder: TransformerEncoder, texts: tuple[str, ...]) -> np.ndarray:
    """Score texts the way Baton does: one shared forward pass, then the detector."""
    detector = HumanRequestDetector(encoder)
    vectors = encoder.encode(list(texts))
    return np.array(detector.score_turns(list(texts), vectors))


def test_measurement_phrasings_are_not_prototypes() -> None:
    prototypes = {text.casefold() for text in ASKING_FOR_A_PERSON + LOOK_ALIKES}
    assert not prototypes & {text.casefold() for text in ASKING + NOT_ASKING}


@pytest.mark.model
def test_most_requests_for_a_person_pass_the_default_threshold(
    encoder: TransformerEncoder,
) -> None:
    caught = scores(encoder, ASKING) >= HUMAN_REQUEST
    assert caught.mean() >= 0.9, [text for text, hit in zip(ASKING, caught, strict=True) if not hit]


@pytest.mark.model
def test_product_questions_about_people_rarely_pass_the_default_threshold(
    encoder: TransformerEncoder,
) -> None:
    flagged = scores(encoder, NOT_ASKING) >= HUMAN_REQUEST
    assert flagged.mean() <= 0.05, [text for text, hit in zip(NOT_ASKING, flagged, strict=True) if hit]


@pytest.mark.model
@pytest.mark.parametrize(
    "text",
    [
        "how many agents can my plan have",
        "add a user to my workspace",
        "the human resources module",
    ],
)
def test_hard_negatives_stay_below_the_threshold(encoder: TransformerEncoder, text: str) -> None:
    assert scores(encoder, (text,))[0] < HUMAN_REQUEST


@pytest.mark.model
def test_default_threshold_is_as_good_as_any_other(encoder: TransformerEncoder) -> None:
    asking, not_asking = scores(encoder, ASKING), scores(encoder, NOT_ASKING)

    def errors(threshold: float) -> int:
        return int((asking < threshold).sum() + (not_asking >= threshold).sum())

    best = min(errors(threshold) for threshold in np.linspace(0.05, 0.95, 19))
    assert errors(HUMAN_REQUEST) == best


@pytest.mark.model
def test_scores_stay_between_zero_and_one(encoder: TransformerEncoder) -> None:
    both = scores(encoder, ASKING + NOT_ASKING)
    assert ((both >= 0.0) & (both <= 1.0)).all()


def test_empty_text_or_zero_vector_scores_zero() -> None:
    detector = HumanRequestDetector(HashEncoder())
    assert detector.score("   ", HashEncoder().encode(["human"])[0]) == 0.0
    assert detector.score("real person please", np.zeros(8, dtype=np.float32)) == 0.0


def test_a_cue_raises_the_score_of_the_same_vector() -> None:
    detector = HumanRequestDetector(HashEncoder())
    vector = HashEncoder().encode(["anything"])[0]
    assert detector.score("a real person please", vector) > detector.score("a thing", vector)


def test_a_vector_from_another_encoder_is_refused() -> None:
    detector = HumanRequestDetector(HashEncoder())
    with pytest.raises(RequestError, match="expected a vector of 8 numbers, got 384"):
        detector.score("hello", np.ones(384, dtype=np.float32))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("can I talk to a HUMAN?", True),
        ("Real  person\nplease", True),
        ("ａｇｅｎｔ please", True),  # full-width letters fold to "agent please"
        ("the human resources module", False),
        ("human-readable logs", False),
        ("Human   Resources", False),
        ("representative", True),
        ("humanity", False),
    ],
)
def test_lexical_cues(text: str, expected: bool) -> None:
    assert has_cue(text) is expected


# Requests inside longer turns (written for this test, not prototypes), and longer product
# questions with short polite clauses that must not count as a request.
ASKING_INSIDE = (
    "My export keeps failing with error 500 since this morning. Can I talk to a real person?",
    "I need a human please, my invoice total is wrong and the PDF shows last month's tax rate",
    "Our webhook stopped firing after we rotated the API key; please get me someone from support.",
)
NOT_ASKING_INSIDE = (
    "Thanks, that worked. How do I export last year's invoices as CSV?",
    "I forgot my password, can you help? The reset email never arrives.",
    "Quick one: how many seats does the team plan include, and can I add a person later?",
)


@pytest.mark.model
def test_a_request_for_a_person_inside_a_longer_turn_is_caught(encoder: TransformerEncoder) -> None:
    assert (scores(encoder, ASKING_INSIDE) >= HUMAN_REQUEST).all()
    assert (scores(encoder, NOT_ASKING_INSIDE) < HUMAN_REQUEST).all()
    detector = HumanRequestDetector(encoder)
    whole = [
        detector.score(t, v) for t, v in zip(ASKING_INSIDE, encoder.encode(list(ASKING_INSIDE)), strict=True)
    ]
    assert min(whole) < HUMAN_REQUEST  # the turn's embedding alone misses some of them


def test_clauses_split_a_turn_of_several_and_keep_its_ends() -> None:
    assert clauses("can I talk to a human") == []
    assert clauses("Export fails. Can I talk to a person?") == ["Export fails", "Can I talk to a person"]
    many = clauses(". ".join(f"sentence number {i}" for i in range(10)))
    assert many == [f"sentence number {i}" for i in (0, 1, 2, 7, 8, 9)]
