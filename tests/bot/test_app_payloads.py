"""Slack payloads to domain values: what counts as a question, and who pressed which choice."""

from __future__ import annotations

from typing import Any

import pytest

from bot.listeners import read_pick, read_turn

BOT_USER = "U_BATON"


def envelope(**event: Any) -> dict[str, Any]:
    base = {"type": "message", "channel": "C1", "ts": "1.000100", "user": "U1", "text": "hi"}
    return {"event_id": "Ev1", "event": {**base, **event}}


def test_a_plain_message_is_a_turn() -> None:
    turn = read_turn(envelope(user_team="T_CUST", team="T_HOST"), BOT_USER)
    assert turn is not None
    assert (turn.event_id, turn.channel, turn.ts, turn.thread, turn.team) == (
        "Ev1",
        "C1",
        "1.000100",
        "1.000100",
        "T_CUST",
    )
    assert not turn.mentioned and not turn.files_only


@pytest.mark.parametrize(
    "event",
    [
        {"bot_id": "B_OTHER"},
        {"subtype": "bot_message", "bot_id": "B_OTHER"},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"user": BOT_USER},
        {"user": None},
        {"ts": None},
    ],
)
def test_bots_itself_edits_and_the_like_are_not_turns(event: dict[str, Any]) -> None:
    assert read_turn(envelope(**event), BOT_USER) is None


def test_mentions_threads_broadcasts_and_files() -> None:
    mention = read_turn(envelope(text="<@U_BATON> help", thread_ts="0.5"), BOT_USER)
    assert mention is not None and mention.mentioned and mention.thread == "0.5"
    broadcast = read_turn(envelope(subtype="thread_broadcast", thread_ts="0.5"), BOT_USER)
    assert broadcast is not None and broadcast.thread == "0.5"
    files = [{"id": "F1", "name": "shot.png"}]
    bare = read_turn(envelope(subtype="file_share", text="<@U_BATON> ", files=files), BOT_USER)
    worded = read_turn(envelope(subtype="file_share", text="it fails", files=files), BOT_USER)
    assert bare is not None and bare.files_only
    assert worded is not None and not worded.files_only


def test_a_pick_names_the_presser_the_thread_and_the_entry() -> None:
    body = {
        "type": "block_actions",
        "user": {"id": "U_CUST1", "team_id": "T_CUST"},
        "container": {"type": "message", "channel_id": "C1", "message_ts": "2.0", "thread_ts": "1.0"},
        "actions": [{"action_id": "baton_pick_2", "value": "export-data"}],
    }
    pick = read_pick(body)
    assert pick is not None and (pick.user, pick.team, pick.channel) == ("U_CUST1", "T_CUST", "C1")
    assert (pick.message_ts, pick.thread_ts, pick.entry_id) == ("2.0", "1.0", "export-data")
    assert read_pick({**body, "actions": [{"action_id": "baton_pick_1"}]}) is None
