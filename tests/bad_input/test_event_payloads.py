"""Odd Events API payloads, signed as Slack signs them: Baton answers 200, never fails, never strays.

Hypothesis takes a real message (posted in the emulator, its event held back) with awkward text
(empty, blank, emoji only, any Unicode, files without text) and bends its event: fields
dropped, fields of the wrong type, unexpected fields, unknown subtypes and event types. Sent to
the running app, each is acknowledged with 200, logs no error, and gets at most one reply, in
the message's own thread (or, for a handoff, the notice there and a card in the agent channel).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.localslack.store import Message
from tests.bot.conftest import Harness
from tests.faults.test_slack_faults import key_of

ANY = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)  # fmt: skip
# What a field of a message event may hold: Slack's own values, nulls, and other plausible values.
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "user": st.sampled_from([None, "U_CUST2", "U_AGENT1", "U_BATON"]),
    "text": st.one_of(st.none(), st.text(max_size=40)),
    "ts": st.none(),
    "thread_ts": st.none(),
    "event_ts": st.one_of(st.none(), st.text(max_size=12)),
    "team": st.sampled_from([None, "T_HOST", "T_CUST", "T_OTHER", ""]),
    "user_team": st.sampled_from([None, "T_HOST", "T_CUST", "T_OTHER", ""]),
    "files": st.sampled_from([None, [], [{"id": "F1"}], [{"id": "F1", "name": "a.png", "mimetype": None}]]),
    "blocks": st.sampled_from([None, [], [{"type": "rich_text", "elements": []}], [{"type": "nonsense"}]]),
    "bot_id": st.sampled_from([None, "B_OTHER", "B_BATON"]),
    "hidden": st.one_of(st.none(), st.booleans()),
    "channel_type": st.sampled_from([None, "channel", "group", "im", "mpim", "weird"]),
    "client_msg_id": st.one_of(st.none(), st.text(max_size=12)),
    "edited": st.one_of(st.none(), st.fixed_dictionaries({"user": st.just("U_CUST1"), "ts": st.just("1.2")})),
    "message": st.one_of(
        st.none(), st.fixed_dictionaries({"type": st.just("message"), "text": st.text(max_size=8)})
    ),
    "previous_message": st.one_of(st.none(), st.fixed_dictionaries({"ts": st.just("1.000001")})),
    "channel": st.none(),
}
SUBTYPES = st.sampled_from(
    [None, "file_share", "thread_broadcast", "message_changed", "message_deleted", "message_replied",
     "bot_message", "channel_join", "me_message", "huddle_thread", "tombstone", "no_such_subtype"]
)  # fmt: skip
TYPES = st.sampled_from(["message", "app_mention", "reaction_added", "app_home_opened", "no_such_event"])
TEXTS = st.one_of(
    st.text(max_size=120),
    st.sampled_from(["", " ", "\n\t ", "<@U_BATON>", "<@U_BATON> ", "​", "how do I reset my password?"]),
    st.text(alphabet=st.sampled_from("😀🎉👍🔥❤️🙏🏽👩‍💻🇫🇷"), min_size=1, max_size=12),
)
BENDS = st.fixed_dictionaries(
    {
        "drop": st.sets(st.sampled_from(sorted(FIELDS)), max_size=4),
        "put": st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True).flatmap(
            lambda names: st.fixed_dictionaries({name: FIELDS[name] for name in names})
        ),
        "extra": st.dictionaries(st.text(min_size=1, max_size=8), ANY, max_size=3),
        "subtype": SUBTYPES,
        "type": TYPES,
    }
)


def bend(envelope: dict[str, Any], bends: dict[str, Any]) -> dict[str, Any]:
    """The envelope with its event bent as drawn."""
    bent = copy.deepcopy(envelope)
    event = bent["event"]
    event["type"] = bends["type"]
    if bends["subtype"] is not None:
        event["subtype"] = bends["subtype"]
    for name in bends["drop"]:
        event.pop(name, None)
    event.update(bends["put"])
    event.update({k: v for k, v in bends["extra"].items() if k not in FIELDS})
    return bent


def baton_messages(harness: Harness) -> list[tuple[str, Message]]:
    """Every message Baton has in Slack, anywhere, with its channel."""
    found: list[tuple[str, Message]] = []
    for channel in harness.slack.world.channels:
        for top in harness.slack.messages(channel.id):
            thread = harness.slack.messages(channel.id, top["ts"]) if top.get("reply_count") else [top]
            found += [(channel.id, m) for m in thread if m.get("bot_id") == "B_BATON"]
    return found


async def acknowledged_quietly(
    harness: Harness, caplog: pytest.LogCaptureFixture, payload: Any
) -> list[tuple[str, Message]]:
    """Send a payload; check it got 200 and no error was logged; Baton's new messages."""
    before = {m["ts"] for _, m in baton_messages(harness)}
    errors = len([r for r in caplog.records if r.levelno >= logging.ERROR])
    status, _ = await harness.send_raw(payload)
    await harness.settle()
    assert status == 200
    assert [r.getMessage() for r in caplog.records[errors:] if r.levelno >= logging.ERROR] == []
    return [(channel, m) for channel, m in baton_messages(harness) if m["ts"] not in before]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, with_files=st.booleans(), in_thread=st.booleans(), bends=BENDS)
async def test_a_bent_event_is_acknowledged_and_answered_at_most_once_in_place(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    text: str,
    with_files: bool,
    in_thread: bool,
    bends: Any,
) -> None:
    slack = harness.slack
    root = await slack.post("U_CUST2", "C_SUPPORT", "hello") if in_thread else None
    await harness.settle()
    files = [{"name": "screenshot.png", "mimetype": "image/png"}] if with_files else None
    harness.slack.app_url, url = None, harness.slack.app_url
    try:
        ts = await slack.post("U_CUST1", "C_SUPPORT", text, root, files=files)
        await slack.drain(quiet=0.01)
    finally:
        harness.slack.app_url = url
    (envelope,) = [e for e in slack.events("message") if e["event"]["ts"] == ts]
    new = await acknowledged_quietly(harness, caplog, bend(envelope, bends))
    thread = root or ts
    replies = [m for channel, m in new if (channel, m.get("thread_ts")) == ("C_SUPPORT", thread)]
    cards = [m for channel, m in new if (key_of(m) or "").startswith(f"card:C_SUPPORT:{thread}:")]
    assert len(replies) <= 1 and len(cards) <= len(replies)  # a card comes with the customer's notice
    assert len(new) == len(replies) + len(cards), new  # nothing anywhere else


PLAUSIBLE: list[Any] = [
    {"type": "event_callback", "event": {"type": "message"}},
    {"type": "event_callback", "event": {"type": "message", "text": "x" * 40_000}},
    {"type": "event_callback", "event": {"type": "message", "user": "U_CUST1", "channel": "C_SUPPORT"}},
    {"type": "event_callback", "event": {"type": "message", "user": "U_CUST1", "ts": "1.000100"}},
    {"type": "event_callback", "event": {"type": "reaction_added", "item": {"type": "message"}}},
    {"type": "event_callback", "event": {"type": "reaction_added", "item": {"type": "file", "file": "F1"}}},
    {"type": "event_callback", "event": {"type": "app_home_opened", "user": None, "tab": "messages"}},
    {"type": "event_callback", "event": {"type": "message", "subtype": "message_changed"}},
    {
        "type": "event_callback",
        "event": {"type": "message", "subtype": "message_deleted", "channel": "C_AGENTS"},
    },
    {"type": "event_callback", "event": {"type": "channel_shared", "channel": "C_AGENTS"}},
    {"type": "event_callback", "event": {"type": "tokens_revoked", "tokens": {"bot": ["U_BATON"]}}},
]
IMPOSSIBLE: list[Any] = [  # Slack never sends these; Bolt itself refuses them
    {"type": "event_callback"},
    {"type": "event_callback", "event": None},
    {"type": "event_callback", "event": "message"},
    {"type": "event_callback", "event": {}},
    {"type": "event_callback", "event_id": ["Ev1"], "event": {"type": "message", "user": 5, "channel": {}}},
    {"type": "event_callback", "event": {"type": "reaction_added", "item": "nope", "user": "U_CUST1"}},
    {"type": "event_callback", "event": {"type": "message", "subtype": "message_changed", "message": "x"}},
    {"type": "event_callback", "event": {"type": 607}},
    [],
    "not even an object",
]


@pytest.mark.parametrize("payload", PLAUSIBLE, ids=[str(n) for n in range(len(PLAUSIBLE))])
async def test_an_event_missing_what_matters_is_acknowledged_and_changes_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture, payload: Any
) -> None:
    assert await acknowledged_quietly(harness, caplog, payload) == []
    assert harness.services.db.table("outbox").count == 0


async def test_a_broken_payload_does_not_stop_baton(harness: Harness) -> None:
    for payload in IMPOSSIBLE:
        await harness.send_raw(payload)  # 200, 404 or 500: Slack would only try again
    ts = await harness.slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    await harness.settle()
    assert len(harness.replies("C_SUPPORT", ts)) == 1 and harness.services.db.table("outbox").count == 1


async def test_a_40000_character_question_is_answered_once(harness: Harness) -> None:
    for text in ("how do I reset my password? " + "x" * 40_000, "😀" * 40_000, "é" * 40_000):
        ts = await harness.slack.post("U_CUST1", "C_SUPPORT", text)
        await harness.settle()
        assert len(harness.replies("C_SUPPORT", ts)) == 1
