"""Two agents take the same handoff at the same moment: one wins, the other is told who has it.

`tests/bot/test_app_handoff.py` covers a second claim after the first; `tests/handoff/
test_handoffs.py` the compare-and-set from two connections. Here both presses (or replies)
reach the running app together, in either order.
"""

from __future__ import annotations

import asyncio

import pytest

from handoff import handoffs
from tests.bot.conftest import Harness, texts
from tests.bot.test_app import blocks_text
from tests.faults.test_slack_faults import REFUND, card_for

AGENTS = ("U_AGENT1", "U_AGENT2")


async def take(harness: Harness, agent: str, how: str, card_ts: str) -> None:
    """An agent takes the handoff: presses Claim, or simply replies in the card's thread."""
    if how == "claim":
        await harness.slack.click(agent, "C_AGENTS", card_ts, "baton_claim")
    else:
        await harness.slack.post(agent, "C_AGENTS", f"{agent} here, I'll take it", card_ts)


@pytest.mark.parametrize("first", [0, 1])
@pytest.mark.parametrize("hows", [("claim", "claim"), ("claim", "reply"), ("reply", "reply")])
async def test_two_agents_at_once_one_wins_and_the_other_is_told(
    harness: Harness, hows: tuple[str, str], first: int
) -> None:
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", REFUND)
    card = await card_for(harness, ts)
    await harness.settle()
    order = (first, 1 - first)
    await asyncio.gather(*(take(harness, AGENTS[i], hows[i], card["ts"]) for i in order))
    await harness.settle()

    (conversation,) = handoffs.open_handoffs(harness.services.db)
    winner = conversation.owner
    assert winner in AGENTS
    loser = AGENTS[1 - AGENTS.index(winner)]
    told = texts(slack.ephemerals(loser))
    assert len(told) == 1 and told[0].startswith(f"<@{winner}> already has this conversation.")
    if hows[AGENTS.index(loser)] == "reply":
        assert told[0].endswith("Your message was not sent to the customer.")
    assert slack.ephemerals(winner) == []
    (shown,) = [m for m in slack.messages("C_AGENTS") if m["ts"] == card["ts"]]
    assert f"<@{winner}> has this conversation" in blocks_text(shown)
    relayed = [m["text"] for m in slack.messages("C_SUPPORT", ts) if m.get("username")]
    assert all(loser not in text for text in relayed)
    assert relayed == ([f"{winner} here, I'll take it"] if hows[AGENTS.index(winner)] == "reply" else [])
