"""Learning from agents: "Save as FAQ" after a resolve, suggested entries, the modal, the next answer."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.localslack.store import Message
from handoff.tuning import audit_log, change_setting
from tests.bot.conftest import Harness
from tests.bot.test_app import blocks_text
from tests.bot.test_app_handoff import buttons, card_of, say

QUESTION = "Can your team translate my invoices into Klingon?"
ANSWER = "Yes: Klingon is on the Enterprise plan, under Settings → Language → Invoice language."


async def answered_by_an_agent(harness: Harness) -> tuple[str, Message]:
    """Baton is unsure, hands off at once (max-fallbacks 0); an agent answers and resolves."""
    change_setting(harness.services.db, "max-fallbacks", "0", "U_ADMIN", datetime.now(UTC))
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await harness.settle()
    card = card_of(harness)
    assert "confidence" in blocks_text(card)
    await say(harness, "U_AGENT1", "C_AGENTS", "note: checking with billing", card["ts"])
    await say(harness, "U_AGENT1", "C_AGENTS", ANSWER, card["ts"])
    await harness.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_resolve")
    await harness.settle()
    return ts, card_of(harness)


async def suggestions(harness: Harness) -> dict:
    reply = await harness.slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "faq suggest")
    return reply.json() or {}


async def test_a_resolved_card_offers_save_as_faq_prefilled_and_the_entry_answers_next(
    harness: Harness,
) -> None:
    slack = harness.slack
    _, card = await answered_by_an_agent(harness)
    assert buttons(card) == ["baton_save_faq"]
    await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_save_faq")
    (modal,) = await slack.wait_for(lambda: slack.views("U_AGENT1"))
    prefilled = {b["block_id"]: b["element"].get("initial_value") for b in modal["blocks"] if "element" in b}
    assert prefilled == {"faq_question": QUESTION, "faq_alternates": None, "faq_answer": ANSWER}

    refused = await slack.submit_view("U_AGENT1", modal["id"], {"faq_answer": {"value": ""}})
    assert refused.json()["errors"] == {"faq_answer": "Write the answer Baton should give."}
    assert harness.services.knowledge.get("can-your-team-translate-my-invoices") is None

    alternates = {"faq_alternates": {"value": "Do you support Klingon invoices?\nKlingon language invoices"}}
    await slack.submit_view("U_AGENT1", modal["id"], alternates)
    await harness.settle()
    entry = harness.services.knowledge.get("can-your-team-translate-my-invoices")
    assert entry is not None and entry.answer == ANSWER and len(entry.alternates) == 2
    assert slack.views("U_AGENT1") == []
    note = slack.messages("C_AGENTS", card["ts"])[-1]
    assert "saved this answer as FAQ entry `can-your-team-translate-my-invoices`" in note["text"]
    assert (
        audit_log(harness.services.db)[0].new == entry.id
        and audit_log(harness.services.db)[0].who == "U_AGENT1"
    )

    replies = await harness.answer_to("U_CUST2", "C_SUPPORT", "do you support invoices in Klingon?")
    (reply,) = replies
    assert reply["text"].startswith("Yes: Klingon is on the Enterprise plan")


async def test_suggested_entries_list_unsure_questions_agents_answered_until_saved_or_dismissed(
    harness: Harness,
) -> None:
    slack = harness.slack
    empty = await suggestions(harness)
    assert "No suggestions" in empty["text"]
    await answered_by_an_agent(harness)
    listed = await suggestions(harness)
    shown = blocks_text(listed)
    assert (
        QUESTION in shown
        and "Klingon is on the Enterprise plan" in shown
        and "checking with billing" not in shown
    )
    await slack.open_home("U_AGENT1")
    await harness.settle()
    (home,) = [v for v in slack.views("U_AGENT1") if v["type"] == "home"]
    assert QUESTION in blocks_text(home) and "baton_save_faq" in str(home["blocks"])

    (shown_to_agent,) = [m for m in slack.ephemerals("U_AGENT1") if "Suggested FAQ entries" in m["text"]]
    await slack.click("U_AGENT1", "C_AGENTS", shown_to_agent["ts"], "baton_dismiss_faq")
    await harness.settle()
    assert "No suggestions" in (await suggestions(harness))["text"]


async def test_customers_opening_the_home_tab_see_no_dashboard(harness: Harness) -> None:
    await answered_by_an_agent(harness)
    for user in ("U_AGENT1", "U_CUST1"):
        await harness.slack.open_home(user)
    await harness.settle()
    (staff,) = [v for v in harness.slack.views("U_AGENT1") if v["type"] == "home"]
    (customer,) = [v for v in harness.slack.views("U_CUST1") if v["type"] == "home"]
    assert QUESTION in blocks_text(staff) and "Open handoffs" in blocks_text(staff)
    assert QUESTION not in blocks_text(customer) and "Open handoffs" not in blocks_text(customer)
    assert "baton_save_faq" not in str(customer["blocks"])


async def test_save_as_faq_pressed_again_says_the_answer_is_already_saved(harness: Harness) -> None:
    slack = harness.slack
    _, card = await answered_by_an_agent(harness)
    await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_save_faq")
    (modal,) = await slack.wait_for(lambda: slack.views("U_AGENT1"))
    await slack.submit_view("U_AGENT1", modal["id"], {})
    await harness.settle()
    again = await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_save_faq")
    await harness.settle()
    assert again.status == 200 and slack.views("U_AGENT1") == []
    (told,) = [m for m in slack.ephemerals("U_AGENT1") if "already FAQ entry" in m["text"]]
    assert "`can-your-team-translate-my-invoices`" in told["text"]


async def test_save_as_faq_shows_the_words_as_typed_and_saves_the_answer_as_mrkdwn(harness: Harness) -> None:
    """Slack sends &, < and > escaped: the modal shows them as typed, the entry keeps links."""
    slack = harness.slack
    change_setting(harness.services.db, "max-fallbacks", "0", "U_ADMIN", datetime.now(UTC))
    await slack.post("U_CUST1", "C_SUPPORT", "Can Tom &amp; Jerry see invoices where 2 &lt; 3 in Klingon?")
    await harness.settle()
    card = card_of(harness)
    typed = "Yes &amp; <b>no</b>: see <https://tally.example/lang|Language settings>"
    await say(
        harness,
        "U_AGENT1",
        "C_AGENTS",
        typed.replace("<b>", "&lt;b&gt;").replace("</b>", "&lt;/b&gt;"),
        card["ts"],
    )
    await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_resolve")
    await harness.settle()
    await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_save_faq")
    (modal,) = await slack.wait_for(lambda: slack.views("U_AGENT1"))
    prefilled = {b["block_id"]: b["element"].get("initial_value") for b in modal["blocks"] if "element" in b}
    assert prefilled["faq_question"] == "Can Tom & Jerry see invoices where 2 < 3 in Klingon?"
    assert prefilled["faq_answer"] == "Yes & <b>no</b>: see <https://tally.example/lang|Language settings>"
    await slack.submit_view("U_AGENT1", modal["id"], {})
    await harness.settle()
    (entry,) = [e for e in harness.services.knowledge.entries() if "Tom" in e.question]
    assert entry.question == "Can Tom & Jerry see invoices where 2 < 3 in Klingon?"
    assert (
        entry.answer == "Yes &amp; &lt;b&gt;no&lt;/b&gt;: see <https://tally.example/lang|Language settings>"
    )


async def test_two_agents_saving_one_answer_make_one_entry(harness: Harness) -> None:
    slack = harness.slack
    _, card = await answered_by_an_agent(harness)
    for agent in ("U_AGENT1", "U_AGENT2"):
        await slack.click(agent, "C_AGENTS", card["ts"], "baton_save_faq")
    (first,) = await slack.wait_for(lambda: slack.views("U_AGENT1"))
    (second,) = await slack.wait_for(lambda: slack.views("U_AGENT2"))
    await slack.submit_view("U_AGENT1", first["id"], {})
    refused = await slack.submit_view("U_AGENT2", second["id"], {})
    await harness.settle()
    assert "saved meanwhile as FAQ entry `can-your-team-translate-my-invoices`" in str(refused.json())
    assert [e.id for e in harness.services.knowledge.entries() if "Klingon" in e.question] == [
        "can-your-team-translate-my-invoices"
    ]
