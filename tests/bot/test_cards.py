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


def test_a_resolved_card_keeps_everything_but_trades_its_buttons_for_save_as_faq() -> None:
    blocks = cards.card(INFO)["blocks"]
    resolved = cards.with_save_button(blocks, "C_SUPPORT 1.000100 1")
    assert len(resolved) == len(blocks)
    (actions,) = [b for b in resolved if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("baton_save_faq", "C_SUPPORT 1.000100 1")
    ]


def test_the_save_as_faq_modal_reads_back_what_was_typed() -> None:
    modal = cards.save_faq_modal("Can I pay in yen?", "Yes.", "C 1.0 1")
    assert modal["callback_id"] == cards.SAVE_FAQ_VIEW and modal["private_metadata"] == "C 1.0 1"
    values = {
        "faq_question": {"value": {"value": "  Can I pay in yen? "}},
        "faq_alternates": {"value": {"value": "yen?\n\n  pay with JPY  \n"}},
        "faq_answer": {"value": {"value": "Yes."}},
    }
    assert cards.read_faq_modal(values) == ("Can I pay in yen?", ("yen?", "pay with JPY"), "Yes.")
    assert cards.read_faq_modal({}) == ("", (), "")


def test_a_quoted_answer_keeps_its_lines_and_stays_within_the_limit() -> None:
    answer = "Refunds take 5 business days.\n\n• Tally   creates a credit note\n• it emails it"
    assert (
        cards.quote(answer)
        == "Refunds take 5 business days.\n>\n>• Tally creates a credit note\n>• it emails it"
    )
    long = cards.quote("\n".join(["word " * 40] * 20), limit=500)
    assert len(long) <= 500 + 20 * 2 and long.endswith("…") and long.count("\n>") >= 2


def test_a_suggestion_shows_slack_text_as_slack_shows_it_without_mass_mentions() -> None:
    suggested = cards.Suggested(
        "Tom &amp; Jerry &lt;ops&gt; <!channel>", "See <https://x.example|the docs> &amp; more", None, "v"
    )
    (section, _) = cards.suggestion_blocks([suggested])
    text = section["text"]["text"]
    assert "Tom &amp; Jerry &lt;ops&gt;" in text and "&amp;amp;" not in text
    assert "<https://x.example|the docs>" in text and "<!channel>" not in text
