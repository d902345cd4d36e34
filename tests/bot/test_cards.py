"""The handoff's Block Kit, built without Slack."""

from __future__ import annotations

from datetime import timedelta

from bot import cards
from handoff.conversation import Status
from handoff.triggers import Reason, ReasonKind
from models.kb import Entry

INFO = cards.CardInfo(
    channel="C1",
    thread_ts="1.0",
    customers=("Casey",),
    org="Acme Corp",
    external=True,
    permalink="https://x.slack.com/archives/C1/p10",
    reasons=(Reason(ReasonKind.KEYWORD, "keyword 'refund'"),),
    transcript=tuple(cards.Line("Casey", f"message {n} <!here>") for n in range(20)),
    suggestion=Entry("refunds", "How do refunds work?", "Refunds take 5 days."),
)


def test_the_card_shows_who_why_the_transcript_and_four_buttons() -> None:
    card = cards.card(INFO)
    text = "\n".join(str(b) for b in card["blocks"])
    assert "Acme Corp, external" in text and "keyword 'refund'" in text and "Refunds take 5 days." in text
    assert "8 earlier messages" in text and "message 19" in text and "<!here>" not in text
    actions = next(b for b in card["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == list(cards.CARD_ACTIONS)
    assert cards.read_target(actions["elements"][1]["value"]) == ("C1", "1.0", "refunds")


def test_the_status_line_is_replaced_not_added() -> None:
    blocks = cards.card(INFO)["blocks"]
    claimed = cards.with_status(blocks, cards.status_text(Status.CLAIMED, "U1"))
    assert len(claimed) == len(blocks) and "<@U1> has this conversation" in str(claimed[-1])
    assert cards.read_target("") == ("", "", "")


def test_waits_and_re_alerts_read_well() -> None:
    assert cards.show_wait(timedelta(minutes=125)) == "2 h 5 min"
    assert "waited 12 min" in cards.realert(timedelta(minutes=12), INFO.reasons, None)["text"]
