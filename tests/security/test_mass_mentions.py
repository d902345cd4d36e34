"""Nothing Baton relays can ping a whole channel: @channel, @here, @everyone and user groups.

Hypothesis writes customers' and agents' messages full of mass mentions (Slack's `<!here>`
forms, labels, user groups, bare `@channel`) and sends them through the running app: the card's
transcript and every relayed copy, both ways, carry none. A note (`note: ...`) is not relayed.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.localslack.store import Message
from tests.bot.conftest import Harness
from tests.faults.test_slack_faults import REFUND, card_for, key_of
from tests.handoff.test_conversation import MASS_MENTION

MENTIONS = st.sampled_from(
    [
        "<!channel>", "<!here>", "<!everyone>", "<!here|here>", "<!channel|@channel>", "<!EVERYONE>",
        "<!subteam^S0123ABC|@support>", "<!subteam^S0123ABC>", "@channel", "@here", "@everyone",
        "<!here|<!channel>>", "<!subteam^S1|<!here>>", "<@U_AGENT1>", "note:",
    ]
)  # fmt: skip
PIECES = st.one_of(MENTIONS, st.text(max_size=8), st.sampled_from(["<", ">", "|", "!", "@", "^", " ", "\n"]))
TEXTS = st.lists(PIECES, min_size=1, max_size=8).map("".join).filter(lambda t: t.strip())


def shown(message: Message) -> str:
    """Everything of a message Slack would render: its text and its blocks."""
    return json.dumps([message.get("text"), message.get("blocks")], ensure_ascii=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opening=TEXTS, customer=TEXTS, agent=TEXTS)
async def test_relayed_text_never_mass_mentions(
    harness: Harness, opening: str, customer: str, agent: str
) -> None:
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", f"{REFUND} {opening}")
    card = await card_for(harness, ts)
    said = await slack.post("U_CUST1", "C_SUPPORT", customer, ts)
    wrote = await slack.post("U_AGENT1", "C_AGENTS", agent, card["ts"])
    await harness.settle()
    to_agents = [m for m in slack.messages("C_AGENTS", card["ts"]) if key_of(m) == f"relay:C_SUPPORT:{said}"]
    to_customer = [m for m in slack.messages("C_SUPPORT", ts) if key_of(m) == f"relay:C_AGENTS:{wrote}"]
    assert len(to_agents) == 1
    assert len(to_customer) == (0 if agent.lstrip().lower().startswith("note:") else 1)
    for message in [card, *to_agents, *to_customer]:
        assert MASS_MENTION.search(shown(message)) is None, shown(message)
