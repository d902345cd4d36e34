"""`/baton` with anything after it: a command, or a polite explanation; never an exception.

`tests/bot/test_commands.py` checks the parser's commands and messages one by one and that any
text parses; here the explanations are checked for being helpful (they show how to write the
command, or list what exists), and arbitrary text goes through the running app as Slack sends it.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import Command, UsageError, parse
from handoff.tuning import audit_log, load_settings
from tests.bot.conftest import Harness, texts

WORDS = st.sampled_from(
    [
        "set", "keyword", "keywords", "faq", "add", "remove", "rm", "list", "suggest", "csat", "stats",
        "audit", "resolve", "help", "triggers", "confidence", "max", "fallbacks", "max-fallbacks",
        "sentiment", "default", "0.5", "-1", "1e308", "nan", "inf", "−0.4", "re:(", "re:.*",
        "re:a{99999999999}", "re:(a+)+$", "|", '"', "“", "”", "'", "`", "&amp;", "&lt;", "&gt;",
        "<@U_ADMIN>", "<!channel>", "days", "30", "0", "=", "\n", "\t", "😀", "ÄÖÜ", "x" * 300,
    ]
)  # fmt: skip
TEXTS = st.one_of(
    st.text(max_size=300),
    st.lists(WORDS, max_size=8).map(" ".join),
    st.lists(WORDS, max_size=8).map("".join),
    st.sampled_from(["\x00\x01\x7f", "\u200b", "\ufeffhelp", "set\u00a0confidence\u00a00.5"]),
)
HUGE = [
    "x" * 40_000,
    "faq add " + "q" * 20_000 + " | " + "a" * 20_000,
    "keyword add " + "k" * 40_000,
    "😀" * 40_000,
]
WAYS = ("/baton", "like ", "Settings: `confidence`", "keep it under")  # an example, what exists, a limit


@settings(max_examples=1000, deadline=None)
@given(TEXTS)
def test_every_explanation_shows_the_way(text: str) -> None:
    result = parse(text)
    assert isinstance(result, Command | UsageError)
    if isinstance(result, UsageError):
        message = result.message
        assert message.strip() and len(message) < 1000
        assert any(way in message for way in WAYS)
        assert parse(text) == result  # the same text, the same answer


@pytest.mark.parametrize("app_settings", [{"admins": ("U_AGENT1",)}])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, user=st.sampled_from(["U_AGENT1", "U_AGENT2", "U_CUST1"]))
async def test_any_slash_baton_gets_one_private_answer(
    harness: Harness, caplog: pytest.LogCaptureFixture, text: str, user: str
) -> None:
    slack, db = harness.slack, harness.services.db
    before, shown, audited = load_settings(db), len(slack.ephemerals(user)), len(audit_log(db))
    channel = "C_SUPPORT" if user == "U_CUST1" else "C_AGENTS"
    errors = len([r for r in caplog.records if r.levelno >= logging.ERROR])
    reply = await slack.slash_command(user, channel, "/baton", text)
    await harness.settle()
    assert reply.ok
    (answer,) = texts(slack.ephemerals(user))[shown:]
    assert answer.strip()
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == errors
    if isinstance(parse(text), UsageError):
        assert "*Baton commands*" in answer  # the explanation, then every command
    if user != "U_AGENT1" or not isinstance(parse(text), Command) or not parse(text).changes_settings:
        assert load_settings(db) == before  # only an admin's change changes anything
    if user == "U_CUST1":
        assert answer == "Baton's commands are for the team that runs Baton." or "*Baton commands*" in answer
        assert len(audit_log(db)) == audited


@pytest.mark.parametrize("text", HUGE, ids=["40k", "faq-20k-each", "keyword-40k", "emoji-40k"])
async def test_a_huge_slash_baton_is_explained(harness: Harness, text: str) -> None:
    result = parse(text)
    assert isinstance(result, UsageError) and any(way in result.message for way in WAYS)
    before = load_settings(harness.services.db)
    reply = await harness.slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", text)
    (answer,) = texts(harness.slack.ephemerals("U_ADMIN"))
    assert reply.ok and answer.startswith(result.message[:40]) and len(answer) < 5000
    assert load_settings(harness.services.db) == before and audit_log(harness.services.db) == []
