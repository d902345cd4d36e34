"""The local Slack kept in a state file: a restart on the same file shows what the last run held
and carries on from it; an unreadable file starts an empty Slack and is kept aside (no app)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.localslack import LocalSlack
from bot.localslack.store import parse_ts

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "Open handoffs: 1"}}
HOME = {"type": "home", "blocks": [SECTION]}
MODAL = {"type": "modal", "callback_id": "save_faq", "title": {"type": "plain_text", "text": "Save as FAQ"}}


def client_of(slack: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


def held(slack: LocalSlack) -> dict[str, Any]:
    """Everything the page shows: timelines, threads, ephemerals, Home tabs and modals."""
    timelines = {c: slack.messages(c) for c in ("C_SUPPORT", "C_AGENTS", "D_U_AGENT2")}
    threads = {m["ts"]: slack.messages("C_SUPPORT", m["ts"]) for m in timelines["C_SUPPORT"]}
    return {
        "timelines": timelines,
        "threads": threads,
        "ephemerals": slack.ephemerals("U_AGENT1"),
        "views": slack.views("U_AGENT1"),
    }


async def a_conversation(slack: LocalSlack) -> dict[str, str]:
    """A customer thread with Baton's reply and a 👍, a card, a deleted parent, an ephemeral,
    a Home tab, an open modal and a DM Baton opened; returns the ts worth remembering."""
    client = client_of(slack)
    question = await slack.post("U_CUST1", "C_SUPPORT", "this is the third time, I want a refund NOW")
    reply = await client.chat_postMessage(channel="C_SUPPORT", thread_ts=question, text="A person is coming.")
    card = await client.chat_postMessage(channel="C_AGENTS", text="Casey needs a person")
    await slack.post("U_AGENT1", "C_AGENTS", "on it", card["ts"])
    await slack.react("U_CUST1", "C_SUPPORT", reply["ts"], "+1")
    gone = await slack.post("U_CUST2", "C_SUPPORT", "never mind")
    await slack.post("U_CUST1", "C_SUPPORT", "a reply that keeps its parent", gone)
    await slack.delete("U_CUST2", "C_SUPPORT", gone)  # a parent with replies: a tombstone
    await client.chat_postEphemeral(channel="C_AGENTS", user="U_AGENT1", text="only you can see this")
    await client.views_publish(user_id="U_AGENT1", view=HOME)
    await client.views_open(trigger_id=slack.workspace.issue_trigger("U_AGENT1"), view=MODAL)
    dm = await client.conversations_open(users="U_AGENT2")
    await client.chat_postMessage(channel=dm["channel"]["id"], text="a DM opened in the last run")
    return {"question": question, "reply": reply["ts"], "card": card["ts"]}


async def test_a_restart_on_the_same_file_shows_the_same_slack_and_carries_on(tmp_path: Path) -> None:
    state = tmp_path / "demo.db.slack.json"
    async with LocalSlack(state_file=state) as first:
        ts = await a_conversation(first)
        before = held(first)
        latest = max(parse_ts(m["ts"]) for t in before["threads"].values() for m in t)
        old_views = {v["id"] for v in before["views"]}
    async with LocalSlack(state_file=state) as second:
        assert second.state_error is None
        assert held(second) == before
        assert second.messages("C_SUPPORT", ts["question"])[1]["reactions"][0]["users"] == ["U_CUST1"]
        assert [m["subtype"] for m in second.messages("C_SUPPORT") if m.get("subtype")] == ["tombstone"]
        client = client_of(second)
        new = await second.post("U_CUST1", "C_SUPPORT", "hello again", ts["question"])
        assert parse_ts(new) > latest  # no ts is issued twice
        # what Baton remembers (a card's ts) still points at a message it can change
        await client.chat_update(channel="C_AGENTS", ts=ts["card"], text="Resolved by Sam")
        assert second.messages("C_SUPPORT")[0]["reply_count"] == 2
        assert second.messages("C_AGENTS")[0]["text"] == "Resolved by Sam"
        home = await client.views_publish(user_id="U_AGENT1", view=HOME)
        assert home["view"]["id"] in old_views  # the same Home tab, updated
        modal = await client.views_open(trigger_id=second.workspace.issue_trigger("U_AGENT2"), view=MODAL)
        assert modal["view"]["id"] not in old_views
    async with LocalSlack(state_file=state) as third:  # what the second run changed is kept too
        assert [m["text"] for m in third.messages("C_SUPPORT", ts["question"])][-1] == "hello again"


async def test_the_state_is_saved_while_running_so_a_killed_process_loses_at_most_a_moment(
    tmp_path: Path,
) -> None:
    state = tmp_path / "slack.json"
    async with LocalSlack(state_file=state) as running:
        ts = await running.post("U_CUST1", "C_SUPPORT", "are you there?")
        async with asyncio.timeout(10):
            while not state.exists():
                await asyncio.sleep(0.05)
        after_kill = LocalSlack(state_file=state)  # as if the process had been killed here
        assert [m["ts"] for m in after_kill.messages("C_SUPPORT")] == [ts]
    assert [p.name for p in tmp_path.iterdir()] == ["slack.json"]  # no partial file left behind


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        b"\xff\xfe binary",
        "[]",
        json.dumps({"format": "baton-localslack-state", "version": 99}),
        json.dumps(
            {
                "format": "baton-localslack-state",
                "version": 1,
                "last_ts": "1700000000.000100",
                "issued": 3,
                "channels": [],
                "messages": {"C_SUPPORT": [{"ts": "1700000000.000200", "thread_ts": "1700000000.000100"}]},
                "ephemerals": {},
                "views": [],
            }
        ),
    ],
    ids=["not-json", "not-utf8", "not-an-object", "another-version", "reply-without-parent"],
)
async def test_an_unreadable_state_starts_an_empty_slack_and_is_kept_aside(
    tmp_path: Path, content: str | bytes
) -> None:
    state = tmp_path / "slack.json"
    if isinstance(content, bytes):
        state.write_bytes(content)
    else:
        state.write_text(content)
    async with LocalSlack(state_file=state) as slack:
        assert slack.state_error is not None and str(state) in str(slack.state_error)
        assert "kept as" in str(slack.state_error)
        assert slack.messages("C_SUPPORT") == [] and slack.views("U_AGENT1") == []
        ts = await slack.post("U_CUST1", "C_SUPPORT", "a fresh start")
    kept = tmp_path / "slack.json.unreadable"
    assert kept.read_bytes() == (content if isinstance(content, bytes) else content.encode())
    again = LocalSlack(state_file=state)  # the fresh run was saved in its place
    assert again.state_error is None and [m["ts"] for m in again.messages("C_SUPPORT")] == [ts]


async def test_without_a_state_file_nothing_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with LocalSlack() as slack:
        await slack.post("U_CUST1", "C_SUPPORT", "hello")
    assert list(tmp_path.iterdir()) == [] and LocalSlack().messages("C_SUPPORT") == []
