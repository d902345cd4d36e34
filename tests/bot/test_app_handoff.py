"""The handoff through the local Slack: the card, the live relay, resolve, CSAT, /baton, re-alerts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.localslack.store import Message
from handoff import handoffs
from handoff.csat import csat_report
from handoff.tuning import audit_log, load_settings
from tests.bot.conftest import Harness, texts
from tests.bot.test_app import blocks_text

REFUND = "I want a refund for last month's charge"


def card_of(harness: Harness) -> Message:
    """The one handoff card in the agent channel."""
    (card,) = [m for m in harness.slack.messages("C_AGENTS") if m.get("bot_id") == "B_BATON"]
    return card


def in_card_thread(harness: Harness, card: Message) -> list[Message]:
    """Everything after the card in its thread."""
    return harness.slack.messages("C_AGENTS", card["ts"])[1:]


async def hand_off(harness: Harness, user: str = "U_CUST1") -> tuple[str, Message]:
    """A customer asks for a refund: the thread's ts and the card."""
    ts = await harness.slack.post(user, "C_SUPPORT", REFUND)
    await harness.settle()
    return ts, card_of(harness)


async def say(harness: Harness, user: str, channel: str, text: str, thread_ts: str) -> str:
    ts = await harness.slack.post(user, channel, text, thread_ts)
    await harness.settle()
    return ts


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_a_handoff_tells_the_customer_and_posts_a_card_with_everything(harness: Harness) -> None:
    await harness.answer_to("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    first = harness.slack.messages("C_SUPPORT")[0]["ts"]
    ts = await say(harness, "U_CUST1", "C_SUPPORT", REFUND, first)
    assert ts and "passing you to a person" in harness.replies("C_SUPPORT", first)[-1]["text"]
    card = card_of(harness)
    shown = blocks_text(card)
    assert "Casey" in shown and "Acme Corp" in shown and "external" in shown
    assert "<#C_SUPPORT>" in shown and "archives/C_SUPPORT" in shown  # the permalink to the thread
    assert "keyword 'refund'" in shown
    assert "how do I reset my password?" in shown and REFUND in shown  # the transcript so far
    assert "Baton's best guess" in shown
    assert buttons(card) == ["baton_claim", "baton_suggest", "baton_resolve", "baton_hand_back"]
    (conversation,) = handoffs.open_handoffs(harness.services.db)
    assert conversation.card is not None and conversation.card.ts == card["ts"]


@pytest.mark.parametrize("app_settings", [{"handoff_text": "Hang on, Sam from support is on the way."}])
async def test_the_handoff_notice_is_configurable(harness: Harness) -> None:
    ts, _ = await hand_off(harness)
    assert texts(harness.replies("C_SUPPORT", ts)) == ["Hang on, Sam from support is on the way."]


async def test_replies_relay_both_ways_and_notes_stay_internal(harness: Harness) -> None:
    slack = harness.slack
    ts, card = await hand_off(harness)
    await say(harness, "U_AGENT1", "C_AGENTS", "Hi Casey, I'm on it <!channel>", card["ts"])
    await say(harness, "U_AGENT1", "C_AGENTS", "note: check Stripe first", card["ts"])
    relayed = [m for m in slack.messages("C_SUPPORT", ts)[1:] if m.get("username")]
    assert [m["username"] for m in relayed] == ["Sam"]
    assert relayed[0]["icons"]["image_48"].endswith("U_AGENT1_192.png")
    assert "<!channel>" not in relayed[0]["text"] and "on it" in relayed[0]["text"]
    assert "Stripe" not in " ".join(texts(slack.messages("C_SUPPORT", ts)))
    replies_before = len(harness.replies("C_SUPPORT", ts))
    await say(harness, "U_CUST1", "C_SUPPORT", "how do I reset my password?", ts)
    assert len(harness.replies("C_SUPPORT", ts)) == replies_before  # Baton stays out of it
    copy = in_card_thread(harness, card)[-1]
    assert copy["text"] == "how do I reset my password?" and copy["username"] == "Casey (Acme Corp)"
    assert handoffs.load(harness.services.db, "C_SUPPORT", ts).owner == "U_AGENT1"  # type: ignore[union-attr]


async def test_edits_and_deletions_follow_their_message(harness: Harness) -> None:
    slack = harness.slack
    ts, card = await hand_off(harness)
    reply = await say(harness, "U_AGENT1", "C_AGENTS", "It should arrive in 3 days", card["ts"])
    await slack.edit("U_AGENT1", "C_AGENTS", reply, "It should arrive in 5 days")
    await harness.settle()
    (relayed,) = [m for m in slack.messages("C_SUPPORT", ts) if m.get("username")]
    assert relayed["text"] == "It should arrive in 5 days"
    question = await say(harness, "U_CUST1", "C_SUPPORT", "any news?", ts)
    await slack.delete("U_CUST1", "C_SUPPORT", question)
    await harness.settle()
    assert "any news?" not in texts(in_card_thread(harness, card))


async def test_a_second_agents_claim_is_refused(harness: Harness) -> None:
    _, card = await hand_off(harness)
    await harness.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_claim")
    await harness.settle()
    await harness.slack.click("U_AGENT2", "C_AGENTS", card["ts"], "baton_claim")
    await harness.settle()
    assert texts(harness.slack.ephemerals("U_AGENT2")) == ["<@U_AGENT1> already has this conversation."]
    (told,) = harness.slack.ephemerals("U_AGENT2")
    assert told.get("thread_ts") is None  # shown where the button was pressed, not in the closed thread
    assert "<@U_AGENT1> has this conversation" in blocks_text(card_of(harness))
    (conversation,) = handoffs.open_handoffs(harness.services.db)
    assert conversation.owner == "U_AGENT1"


async def test_a_customer_cannot_press_the_cards_buttons(harness: Harness) -> None:
    harness.slack.world.channel("C_AGENTS").members.append("U_CUST1")
    _, card = await hand_off(harness)
    await harness.slack.click("U_CUST1", "C_AGENTS", card["ts"], "baton_claim")
    await harness.settle()
    assert texts(harness.slack.ephemerals("U_CUST1")) == [
        "Only people on the support team can use these buttons."
    ]
    (conversation,) = handoffs.open_handoffs(harness.services.db)
    assert conversation.owner is None


async def test_send_suggestion_relays_baton_s_guess_as_the_agent(harness: Harness) -> None:
    ts, card = await hand_off(harness)
    await harness.slack.click("U_AGENT2", "C_AGENTS", card["ts"], "baton_suggest")
    await harness.settle()
    (relayed,) = [m for m in harness.slack.messages("C_SUPPORT", ts) if m.get("username")]
    assert relayed["username"] == "Riley" and relayed["text"]
    assert handoffs.load(harness.services.db, "C_SUPPORT", ts).owner == "U_AGENT2"  # type: ignore[union-attr]


async def test_resolve_closes_asks_for_a_rating_and_baton_answers_again(harness: Harness) -> None:
    slack = harness.slack
    ts, card = await hand_off(harness)
    await say(harness, "U_AGENT1", "C_AGENTS", "Refunded!", card["ts"])
    await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_resolve")
    await harness.settle()
    closing = harness.replies("C_SUPPORT", ts)[-1]
    assert "resolved" in closing["text"] and ":+1:" in closing["text"]
    assert "Resolved by <@U_AGENT1>" in blocks_text(card_of(harness))
    await slack.react("U_CUST1", "C_SUPPORT", closing["ts"], "+1::skin-tone-3")
    await slack.react("U_AGENT1", "C_SUPPORT", closing["ts"], "-1")  # not the customer: not counted
    await harness.settle()
    report = csat_report(harness.services.db, datetime.now(UTC) - timedelta(days=1))
    assert (report.human.up, report.human.down, report.by_agent["U_AGENT1"].up) == (1, 0, 1)
    answer = await say(harness, "U_CUST1", "C_SUPPORT", "how do I reset my password?", ts)
    assert answer and "Forgot password?" in harness.replies("C_SUPPORT", ts)[-1]["text"]


async def test_a_check_mark_on_the_card_resolves_it(harness: Harness) -> None:
    slack = harness.slack
    ts, card = await hand_off(harness)
    await slack.react("U_AGENT1", "C_AGENTS", card["ts"], "white_check_mark")
    await harness.settle()
    assert "resolved" in harness.replies("C_SUPPORT", ts)[-1]["text"]
    assert "Resolved by <@U_AGENT1>" in blocks_text(card_of(harness))


async def test_hand_back_lets_baton_answer_again(harness: Harness) -> None:
    ts, card = await hand_off(harness)
    await harness.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_hand_back")
    await harness.settle()
    assert "I'm back" in harness.replies("C_SUPPORT", ts)[-1]["text"]
    await say(harness, "U_CUST1", "C_SUPPORT", "how do I reset my password?", ts)
    assert "Forgot password?" in harness.replies("C_SUPPORT", ts)[-1]["text"]


async def test_a_thumbs_down_offers_a_person_and_the_button_hands_off(harness: Harness) -> None:
    slack = harness.slack
    (answer,) = await harness.answer_to("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    ts = answer["thread_ts"]
    await slack.react("U_CUST1", "C_SUPPORT", answer["ts"], "thumbsdown")
    await harness.settle()
    offer = harness.replies("C_SUPPORT", ts)[-1]
    assert buttons(offer) == ["baton_talk"]
    report = csat_report(harness.services.db, datetime.now(UTC) - timedelta(days=1))
    assert report.by_entry["reset-password"].down == 1
    await slack.click("U_CUST1", "C_SUPPORT", offer["ts"], "baton_talk")
    await harness.settle()
    assert "👎 on a bot answer" in blocks_text(card_of(harness))


async def test_slash_baton_set_is_for_admins_and_checks_its_value(harness: Harness) -> None:
    slack = harness.slack
    db = harness.services.db
    await slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "set confidence 0.9")
    assert (
        load_settings(db).confidence == 0.5
        and "Only Baton's admins" in texts(slack.ephemerals("U_AGENT1"))[0]
    )
    await slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", "set confidence abc")
    assert load_settings(db).confidence == 0.5 and "is not a number" in texts(slack.ephemerals("U_ADMIN"))[0]
    await slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", "set confidence 0.9")
    assert (
        load_settings(db).confidence == 0.9
        and "confidence: 0.5 → 0.9" in texts(slack.ephemerals("U_ADMIN"))[1]
    )
    (change,) = audit_log(db)
    assert (change.who, change.old, change.new) == ("U_ADMIN", "0.5", "0.9")
    await slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", "audit")
    assert "<@U_ADMIN>: confidence: 0.5 → 0.9" in texts(slack.ephemerals("U_ADMIN"))[2]
    await slack.slash_command("U_CUST1", "C_SUPPORT", "/baton", "triggers")
    assert texts(slack.ephemerals("U_CUST1")) == ["Baton's commands are for the team that runs Baton."]


@pytest.mark.parametrize("app_settings", [{"admins": ("U_AGENT1",)}])
async def test_faq_add_answers_from_the_next_question_and_csat_reports(harness: Harness) -> None:
    slack = harness.slack
    await slack.slash_command(
        "U_AGENT1", "C_AGENTS", "/baton", "faq add Do you ship to Iceland? | Yes, in 5 working days."
    )
    assert texts(slack.ephemerals("U_AGENT1"))[0].startswith("Added FAQ entry `do-you-ship-to-iceland`")
    (reply,) = await harness.answer_to("U_CUST1", "C_SUPPORT", "Do you ship to Iceland?")
    assert reply["text"] == "Yes, in 5 working days."
    for command in ("csat 30", "stats", "faq list", "keyword list", "triggers"):
        answer = await slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", command)
        assert answer.ok
    shown = texts(slack.ephemerals("U_AGENT1"))
    assert shown[1].startswith("CSAT over the last 30 days") and "Open handoffs: 0" in shown[2]


async def test_slash_baton_resolve_resolves_the_agents_conversation(harness: Harness) -> None:
    ts, card = await hand_off(harness)
    await harness.slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "resolve")
    assert "no claimed conversation" in texts(harness.slack.ephemerals("U_AGENT1"))[0]
    await harness.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_claim")
    await harness.settle()
    await harness.slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "resolve")
    await harness.settle()
    assert "resolved" in harness.replies("C_SUPPORT", ts)[-1]["text"]


async def test_slash_baton_resolve_with_several_conversations_offers_a_button_for_each(
    harness: Harness,
) -> None:
    slack = harness.slack
    first, _ = await hand_off(harness, "U_CUST1")
    second = await slack.post("U_CUST2", "C_SUPPORT", REFUND)
    await harness.settle()
    for card in [m for m in slack.messages("C_AGENTS") if m.get("bot_id") == "B_BATON"]:
        await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_claim")
    await harness.settle()
    await slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "resolve")
    (choice,) = [m for m in slack.ephemerals("U_AGENT1") if "Which one is resolved?" in m["text"]]
    values = [b["accessory"]["value"] for b in choice["blocks"] if "accessory" in b]
    assert values == [f"C_SUPPORT {first}", f"C_SUPPORT {second}"]
    await slack.click("U_AGENT1", "C_AGENTS", choice["ts"], "baton_resolve", value=values[1])
    await harness.settle()
    assert "resolved" in harness.replies("C_SUPPORT", second)[-1]["text"]
    assert [c.thread_ts for c in handoffs.open_handoffs(harness.services.db)] == [first]


async def test_a_restart_mid_handoff_keeps_relaying(harness: Harness) -> None:
    ts, card = await hand_off(harness)
    await say(harness, "U_AGENT1", "C_AGENTS", "Looking into it", card["ts"])
    await harness.restart()
    await say(harness, "U_CUST1", "C_SUPPORT", "thanks, still there?", ts)
    assert in_card_thread(harness, card)[-1]["text"] == "thanks, still there?"
    await say(harness, "U_AGENT1", "C_AGENTS", "Yes! Done now.", card["ts"])
    relayed = [m["text"] for m in harness.slack.messages("C_SUPPORT", ts) if m.get("username")]
    assert relayed == ["Looking into it", "Yes! Done now."]


@pytest.mark.parametrize("app_settings", [{"realert_after": 0.2}])
async def test_an_unclaimed_handoff_is_re_alerted(harness: Harness) -> None:
    await hand_off(harness)
    await asyncio.sleep(1.3)  # the state machine re-alerts at most once a second
    await harness.settle()
    top = [m for m in harness.slack.messages("C_AGENTS") if m.get("bot_id") == "B_BATON"]
    assert len(top) >= 2 and "waited" in top[1]["text"]


async def test_the_home_tab_shows_open_handoffs_and_gaps(harness: Harness) -> None:
    await hand_off(harness)
    await harness.answer_to("U_CUST2", "C_SUPPORT", "banana smoothie recipe")
    await harness.slack.open_home("U_AGENT1")
    await harness.settle()
    (view,) = harness.slack.views("U_AGENT1")
    shown = blocks_text(view)
    assert "*Open handoffs*" in shown and "<@U_CUST1>: waiting 0 min" in shown
    assert "banana smoothie recipe" in shown and "Bot resolution rate" in shown


async def test_resolving_a_conversation_whose_card_was_deleted_still_resolves_it(harness: Harness) -> None:
    ts, card = await hand_off(harness)
    await harness.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_claim")
    await harness.settle()
    harness.slack.workspace.store.remove("C_AGENTS", card["ts"])  # deleted in Slack, or lost with its history
    reply = await harness.slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "resolve")
    await harness.settle()
    assert reply.ok and "resolved" in harness.replies("C_SUPPORT", ts)[-1]["text"]
    assert handoffs.open_handoffs(harness.services.db) == []


async def test_an_agent_writing_in_a_resolved_cards_thread_is_told_there_how_to_go_on(
    harness: Harness,
) -> None:
    ts, card = await hand_off(harness)
    await harness.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_resolve")
    await harness.settle()
    await say(harness, "U_AGENT1", "C_AGENTS", "one more thing", card["ts"])
    (told,) = [m for m in harness.slack.ephemerals("U_AGENT1") if "not sent" in m["text"]]
    assert told["thread_ts"] == card["ts"] and "resolved" in told["text"] and "Claim" not in told["text"]
    assert "one more thing" not in texts(harness.replies("C_SUPPORT", ts))


async def test_an_open_home_tab_follows_votes_and_handoffs_without_being_reopened(harness: Harness) -> None:
    slack, listeners = harness.slack, harness.app.listeners
    (answer,) = await harness.answer_to("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    await slack.open_home("U_AGENT1")
    await slack.open_home("U_CUST2")  # a customer's tab has no dashboard to follow
    await harness.settle()
    before = blocks_text(next(v for v in slack.views("U_AGENT1") if v["type"] == "home"))
    assert "reset-password: 1 👎" not in before and "<@U_CUST1>: waiting" not in before
    await slack.react("U_CUST1", "C_SUPPORT", answer["ts"], "-1")
    await hand_off(harness)
    await harness.settle()
    published = len(slack.calls("views.publish"))
    await listeners.refresh_homes()  # what Baton does every few seconds
    after = blocks_text(next(v for v in slack.views("U_AGENT1") if v["type"] == "home"))
    assert after != before and "reset-password: 1 👎" in after and "<@U_CUST1>: waiting" in after
    assert len(slack.calls("views.publish")) == published + 1  # only the staff member's tab
    await listeners.refresh_homes()
    assert len(slack.calls("views.publish")) == published + 1  # nothing changed: nothing sent
