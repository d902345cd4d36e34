"""Baton answering customers through the local Slack: who gets an answer, where, and what."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from handoff.handoffs import open_handoffs
from handoff.tuning import change_setting
from tests.bot.conftest import Harness, texts


def blocks_text(message: dict[str, Any]) -> str:
    """Every bit of text in a message's blocks."""
    found: list[str] = []
    for block in message.get("blocks") or []:
        for part in [block.get("text"), *(block.get("elements") or [])]:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                found.append(part["text"])
    return "\n".join(found)


async def test_faq_question_is_answered_in_its_thread(harness: Harness) -> None:
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", "I forgot my password, how do I get a new one?")
    await harness.settle()
    (reply,) = harness.replies("C_SUPPORT", ts)
    assert reply["thread_ts"] == ts and "Forgot password?" in reply["text"]
    assert "From the FAQ: _How do I reset my password?_" in blocks_text(reply)
    assert [m["ts"] for m in slack.messages("C_SUPPORT")] == [ts]  # nothing at the top level
    assert [c.method for c in slack.calls("chat.postMessage")] == ["chat.postMessage"]


async def test_a_question_after_a_long_paste_is_still_answered(harness: Harness) -> None:
    log = " ".join(f"2026-12-03T10:{i % 60:02d}:00 worker-{i} job queued status=ok" for i in range(120))
    ts = await harness.slack.post(
        "U_CUST1", "C_SUPPORT", f"Here is our log:\n{log}\nI forgot my password, how do I get a new one?"
    )
    await harness.settle()
    (reply,) = harness.replies("C_SUPPORT", ts)
    assert "Forgot password?" in reply["text"]


async def test_follow_up_in_the_thread_is_answered_in_the_same_thread(harness: Harness) -> None:
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password")
    replies = await harness.answer_to("U_CUST1", "C_SUPPORT", "and how do I export my data?", thread_ts=ts)
    assert len(replies) == 2 and "export" in replies[1]["text"].lower()
    assert all(r["thread_ts"] == ts for r in replies)


async def test_baton_never_answers_itself_or_other_bots(harness: Harness) -> None:
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password")
    await harness.settle()
    own = [e for e in harness.slack.events("message") if e["event"].get("bot_id") == "B_BATON"]
    assert len(own) == 1 and len(harness.replies("C_SUPPORT", ts)) == 1  # its echo got no answer
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B_OTHER",
        "text": "how do I reset my password",
        "channel": "C_SUPPORT",
        "ts": "1700000000.000100",
        "event_ts": "1700000000.000100",
    }
    envelope = {"type": "event_callback", "event_id": "Ev_OTHER_BOT", "team_id": "T_HOST", "event": event}
    status, _ = await harness.send_raw(envelope)
    as_user = {k: v for k, v in event.items() if k != "subtype"} | {"user": "U_CUST1"}  # still a bot
    status2, _ = await harness.send_raw({**envelope, "event_id": "Ev_OTHER_BOT2", "event": as_user})
    await harness.settle()
    assert (status, status2) == (200, 200)
    assert len(harness.slack.calls("chat.postMessage")) == 1


async def test_edits_and_deletions_are_not_new_questions(harness: Harness) -> None:
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password")
    await harness.settle()
    await slack.edit("U_CUST1", "C_SUPPORT", ts, "how do I export my data")
    other = await slack.post("U_CUST2", "C_SUPPORT", "how do I export my data")
    await harness.settle()
    await slack.delete("U_CUST2", "C_SUPPORT", other)
    await harness.settle()
    assert len(harness.replies("C_SUPPORT", ts)) == 1
    assert len(slack.calls("chat.postMessage")) == 2
    assert all(d.status == 200 for d in slack.deliveries())  # every event was acknowledged


async def test_a_mention_is_answered_once(harness: Harness) -> None:
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "<@U_BATON> how do I reset my password?")
    await harness.settle()
    assert {e["event"]["type"] for e in harness.slack.events() if e["event"].get("ts") == ts} == {
        "message",
        "app_mention",
    }
    assert len(harness.replies("C_SUPPORT", ts)) == 1


@pytest.mark.parametrize("app_settings", [{"support_channels": ("C_SUPPORT",)}])
async def test_outside_support_channels_only_mentions_are_answered(harness: Harness) -> None:
    plain = await harness.answer_to("U_EMPLOYEE", "C_LOBBY", "how do I reset my password?")
    mention = await harness.answer_to("U_EMPLOYEE", "C_LOBBY", "<@U_BATON> how do I reset my password?")
    assert (len(plain), len(mention)) == (0, 1)


async def test_slack_connect_customers_are_answered_and_agents_are_not(harness: Harness) -> None:
    customer = await harness.answer_to("U_CUST2", "C_SUPPORT", "how do I reset my password?")
    agent = await harness.answer_to("U_AGENT1", "C_SUPPORT", "how do I reset my password?")
    assert (len(customer), len(agent)) == (1, 0)


async def test_in_an_internal_channel_everyone_but_agents_is_a_customer(harness: Harness) -> None:
    employee = await harness.answer_to("U_EMPLOYEE", "C_INTERNAL", "how do I reset my password?")
    agent = await harness.answer_to("U_AGENT1", "C_INTERNAL", "how do I reset my password?")
    in_agents = await harness.answer_to("U_AGENT1", "C_AGENTS", "<@U_BATON> how do I reset my password?")
    assert (len(employee), len(agent), len(in_agents)) == (1, 0, 0)


async def test_a_direct_message_is_answered_in_its_thread(harness: Harness) -> None:
    (reply,) = await harness.answer_to("U_EMPLOYEE", "D_U_EMPLOYEE", "how do I export my data?")
    assert "export" in reply["text"].lower()


async def test_a_file_without_text_gets_a_polite_note(harness: Harness) -> None:
    slack = harness.slack
    ts = await slack.post(
        "U_CUST1", "C_SUPPORT", "", files=[{"name": "screenshot.png", "mimetype": "image/png"}]
    )
    await harness.settle()
    (note,) = harness.replies("C_SUPPORT", ts)
    assert note["text"].startswith("Thanks for the file!")
    with_text = await slack.post(
        "U_CUST1", "C_SUPPORT", "how do I reset my password", files=[{"name": "error.png"}]
    )
    await harness.settle()
    assert "Forgot password?" in harness.replies("C_SUPPORT", with_text)[0]["text"]


async def test_a_sensitive_request_is_passed_to_a_person_who_then_owns_the_thread(harness: Harness) -> None:
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "I want a refund for last month's charge")
    await harness.settle()
    (notice,) = harness.replies("C_SUPPORT", ts)
    assert "passing you to a person" in notice["text"]
    (handed,) = open_handoffs(harness.services.db)
    assert (handed.channel, handed.thread_ts, handed.customers) == ("C_SUPPORT", ts, ("U_CUST1",))
    # the keyword comes first; a demand for a refund may also read as negative ("wants to leave")
    assert next(r.detail for r in handed.reasons) == "keyword 'refund'"
    later = await harness.answer_to("U_CUST1", "C_SUPPORT", "how do I reset my password?", thread_ts=ts)
    assert later == [notice]  # Baton leaves the thread to the person


def unsure(harness: Harness) -> None:
    """Make every question ambiguous between its two best entries."""
    now = datetime.now(UTC)
    change_setting(harness.services.db, "ambiguity", "1", "U_ADMIN", now)
    change_setting(harness.services.db, "plausible", "0", "U_ADMIN", now)


async def test_clarifying_question_offers_two_buttons_and_a_pick_answers_once(harness: Harness) -> None:
    unsure(harness)
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password")
    await harness.settle()
    (question,) = harness.replies("C_SUPPORT", ts)
    buttons = question["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == ["baton_pick_1", "baton_pick_2"]
    assert buttons[0]["value"] == "reset-password"
    replies = await asyncio.gather(  # an impatient double click: both before the buttons go
        slack.click("U_CUST1", "C_SUPPORT", question["ts"], "baton_pick_1"),
        slack.click("U_CUST1", "C_SUPPORT", question["ts"], "baton_pick_2"),
    )
    await harness.settle()
    assert all(reply.ok for reply in replies)
    thread = harness.replies("C_SUPPORT", ts)
    assert len(thread) == 2 and "Forgot password?" in thread[1]["text"]
    assert (
        thread[0]["text"] == "You picked: How do I reset my password?"
        and thread[0]["blocks"][0]["type"] == "section"
    )


async def test_an_agent_cannot_pick_for_the_customer(harness: Harness) -> None:
    unsure(harness)
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password")
    await harness.settle()
    (question,) = harness.replies("C_SUPPORT", ts)
    await harness.slack.click("U_AGENT1", "C_SUPPORT", question["ts"], "baton_pick_1")
    await harness.settle()
    assert len(harness.replies("C_SUPPORT", ts)) == 1
    assert texts(harness.slack.ephemerals("U_AGENT1")) == [
        "Only the customer who asked can pick an answer here."
    ]


async def test_repeated_unclear_turns_hand_off_across_turns(harness: Harness) -> None:
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "banana smoothie recipe")
    for text in ("what about the thing", "hmm"):
        await harness.slack.post("U_CUST1", "C_SUPPORT", text, thread_ts=ts)
        await harness.settle()
    kinds = [m["text"].split(".")[0] for m in harness.replies("C_SUPPORT", ts)]
    assert kinds == ["I'm not sure I understood"] * 2 + ["I'm passing you to a person on our team"]
    (handed,) = open_handoffs(harness.services.db)
    assert [r.kind.value for r in handed.reasons] == ["repeated_fallback", "low_confidence"]


async def test_home_tab_command_and_reactions(harness: Harness) -> None:
    slack = harness.slack
    await slack.open_home("U_AGENT1")
    await harness.settle()
    (view,) = slack.views("U_AGENT1")
    assert view["type"] == "home" and "*FAQ entries:* 64" in blocks_text(view)
    reply = await slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", "help")
    assert reply.ok and texts(slack.ephemerals("U_ADMIN"))[0].startswith("*Baton commands*")
    ts = await slack.post("U_AGENT1", "C_AGENTS", "handing this one over")
    await slack.react("U_AGENT1", "C_AGENTS", ts, "eyes")
    await slack.unreact("U_AGENT1", "C_AGENTS", ts, "eyes")
    await harness.settle()
    assert {d.event_type for d in slack.deliveries()} >= {
        "app_home_opened",
        "reaction_added",
        "reaction_removed",
    }
    assert all(d.status == 200 for d in slack.deliveries())


async def test_url_verification(harness: Harness) -> None:
    reply = await harness.slack.verify_url("challenge-accepted")
    assert reply.status == 200 and reply.json() == {"challenge": "challenge-accepted"}


async def test_customer_text_and_tokens_stay_out_of_the_logs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = "my account number is 4242-SECRET"
    await harness.answer_to("U_CUST1", "C_SUPPORT", f"how do I reset my password? {secret}")
    await harness.send_raw({"type": "event_callback", "event": {"text": secret}}, secret="wrong")
    await harness.answer_to("U_CUST1", "C_SUPPORT", f"I want a refund {secret}")
    assert "turn Ev" in caplog.text  # Baton did log the turns...
    assert "4242-SECRET" not in caplog.text and harness.slack.bot_token not in caplog.text
