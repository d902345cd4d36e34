"""People of another organisation (a customer in a Slack Connect channel) cannot act as staff.

They cannot run any `/baton` command, even when named in BATON_ADMINS, nor press a card's
buttons, resolve it with ✅, or reply in its thread as an agent; each attempt changes nothing.
"""

from __future__ import annotations

import pytest

from handoff import handoffs
from handoff.conversation import Status
from handoff.tuning import audit_log, load_settings
from tests.bot.conftest import Harness, texts
from tests.faults.test_slack_faults import REFUND, card_for

STRANGER = "U_CUST2"  # of Acme Corp, the customer organisation
COMMANDS = [
    "set confidence 0.9",
    "set max-fallbacks default",
    "keyword add cancel",
    "keyword remove refund",
    "faq add Do you ship to Mars? | Yes.",
    "faq remove reset-password",
    "resolve",
    "triggers",
    "keyword list",
    "faq list",
    "csat 30",
    "stats",
    "audit",
    "help",
]


@pytest.mark.parametrize("app_settings", [{}, {"admins": (STRANGER,)}], ids=["", "even-in-BATON_ADMINS"])
async def test_no_command_for_another_team(harness: Harness) -> None:
    db, slack = harness.services.db, harness.slack
    before = (load_settings(db), len(harness.services.knowledge.entries()))
    for command in COMMANDS:
        reply = await slack.slash_command(STRANGER, "C_SUPPORT", "/baton", command)
        assert reply.ok
    await harness.settle()
    assert set(texts(slack.ephemerals(STRANGER))) == {"Baton's commands are for the team that runs Baton."}
    assert (load_settings(db), len(harness.services.knowledge.entries())) == before
    assert audit_log(db) == []


async def handed_off(harness: Harness) -> tuple[str, str]:
    """A handoff whose card a stranger can see (the thread's ts, the card's ts)."""
    harness.slack.world.channel("C_AGENTS").members.append(STRANGER)
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", REFUND)
    card = await card_for(harness, ts)
    await harness.settle()
    return ts, card["ts"]


def unchanged(harness: Harness, ts: str) -> None:
    """The handoff still waits for a person and the customer was told nothing more."""
    conversation = handoffs.load(harness.services.db, "C_SUPPORT", ts)
    assert conversation is not None and (conversation.status, conversation.owner) == (Status.WAITING, None)
    assert len(harness.replies("C_SUPPORT", ts)) == 1  # the handoff notice only


@pytest.mark.parametrize("action", ["baton_claim", "baton_suggest", "baton_resolve", "baton_hand_back"])
async def test_no_card_button_for_another_team(harness: Harness, action: str) -> None:
    ts, card = await handed_off(harness)
    await harness.slack.click(STRANGER, "C_AGENTS", card, action)
    await harness.settle()
    assert texts(harness.slack.ephemerals(STRANGER)) == [
        "Only people on the support team can use these buttons."
    ]
    unchanged(harness, ts)


async def test_no_check_mark_and_no_agent_reply_from_another_team(harness: Harness) -> None:
    ts, card = await handed_off(harness)
    await harness.slack.react(STRANGER, "C_AGENTS", card, "white_check_mark")
    await harness.slack.post(STRANGER, "C_AGENTS", "Dana here, I'll take this one", card)
    await harness.settle()
    unchanged(harness, ts)
    assert "Dana here" not in " ".join(texts(harness.slack.messages("C_SUPPORT", ts)))
    await harness.slack.post("U_AGENT1", "C_AGENTS", "Sam here, on it", card)  # staff still can
    await harness.settle()
    assert texts(harness.replies("C_SUPPORT", ts))[-1] == "Sam here, on it"
