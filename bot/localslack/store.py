"""What the emulated Slack remembers: messages, threads, reactions, ephemerals and views.

Pure data with Slack's bookkeeping rules; no I/O. Errors are `SlackError` codes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.localslack.errors import SlackError

Message = dict[str, Any]
TOMBSTONE_TEXT = "This message was deleted."


class TsClock:
    """Issues Slack timestamps ("1700000000.000100"): unique and strictly increasing."""

    def __init__(self, start: float | None = None, wall: Callable[[], float] = time.time) -> None:
        self._fixed = start is not None
        self._last = int((start or 0) * 1_000_000) - 100
        self._wall = wall

    def next(self) -> str:
        """The next timestamp; fixed clocks step by 100 µs, wall clocks follow real time."""
        now = self._last + 100 if self._fixed else int(self._wall() * 1_000_000)
        self._last = max(now, self._last + 1)
        return format_ts(self._last)

    @property
    def last(self) -> str:
        """The latest timestamp issued ("0.000000" before the first)."""
        return format_ts(max(self._last, 0))

    def resume(self, last: str) -> None:
        """Carry on after `last` (a restart): every later timestamp is larger."""
        self._last = max(self._last, parse_ts(last))


def format_ts(micros: int) -> str:
    """Microseconds since the epoch as a Slack ts."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def parse_ts(ts: str) -> int:
    """A Slack ts as microseconds since the epoch; `ValueError` if it is not one."""
    seconds, _, fraction = ts.partition(".")
    if not (seconds.isdigit() and fraction.isdigit() and len(fraction) == 6):
        raise ValueError(f"not a Slack ts: {ts!r}")
    return int(seconds) * 1_000_000 + int(fraction)


def is_reply(message: Message) -> bool:
    """Whether the message lives inside a thread (not its parent)."""
    return "thread_ts" in message and message["thread_ts"] != message["ts"]


def in_timeline(message: Message) -> bool:
    """Whether the message shows in the channel (top-level or broadcast reply)."""
    return not is_reply(message) or message.get("subtype") == "thread_broadcast"


@dataclass
class Store:
    """Messages per channel (ts order), ephemerals per user and views by id."""

    messages: dict[str, list[Message]] = field(default_factory=dict)
    by_ts: dict[tuple[str, str], Message] = field(default_factory=dict)
    replies: dict[tuple[str, str], list[Message]] = field(default_factory=dict)
    ephemerals: dict[str, list[Message]] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    view_owner: dict[str, str] = field(default_factory=dict)

    @classmethod
    def restored(
        cls,
        messages: dict[str, list[Message]],
        ephemerals: dict[str, list[Message]],
        views: list[tuple[str, dict[str, Any]]],
    ) -> Store:
        """A store holding saved messages (thread fields as saved), ephemerals and (owner, view)s."""
        store = cls(messages=messages, ephemerals=ephemerals)
        for channel, found in messages.items():
            for message in found:
                store.by_ts[channel, message["ts"]] = message
                if is_reply(message):
                    store.replies.setdefault((channel, message["thread_ts"]), []).append(message)
        for owner, view in views:
            store.save_view(owner, view)
        return store

    def add(self, channel: str, message: Message) -> Message:
        """Store a new message; a reply updates its parent's thread fields."""
        self.messages.setdefault(channel, []).append(message)
        self.by_ts[channel, message["ts"]] = message
        if is_reply(message):
            self.replies.setdefault((channel, message["thread_ts"]), []).append(message)
            self._recount(channel, message["thread_ts"])
        return message

    def find(self, channel: str, ts: str) -> Message | None:
        """The stored message with this ts, if any."""
        return self.by_ts.get((channel, ts))

    def get(self, channel: str, ts: str) -> Message:
        """The stored message with this ts, or `message_not_found`."""
        message = self.find(channel, ts)
        if message is None:
            raise SlackError("message_not_found")
        return message

    def thread_root(self, channel: str, thread_ts: str) -> str:
        """The parent ts for a reply target (a reply's ts resolves to its parent)."""
        parent = self.find(channel, thread_ts)
        if parent is None:
            raise SlackError("thread_not_found")
        return str(parent.get("thread_ts", parent["ts"]))

    def timeline(self, channel: str) -> list[Message]:
        """Top-level messages and broadcast replies, oldest first."""
        return [m for m in self.messages.get(channel, []) if in_timeline(m)]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """A thread's parent then its replies, oldest first."""
        return [self.get(channel, ts), *self.replies.get((channel, ts), [])]

    def remove(self, channel: str, ts: str) -> Message:
        """Delete a message; a parent with replies becomes a tombstone."""
        message = self.get(channel, ts)
        if message.get("reply_count"):
            previous = copy.deepcopy(message)
            keep = {k: message[k] for k in ("ts", "thread_ts", "reply_count", "reply_users", "latest_reply")}
            message.clear()
            message.update(keep, type="message", subtype="tombstone", text=TOMBSTONE_TEXT, user="USLACKBOT")
            return previous
        self.messages[channel].remove(message)
        del self.by_ts[channel, ts]
        if is_reply(message):
            self.replies[channel, message["thread_ts"]].remove(message)
            self._recount(channel, message["thread_ts"])
        return message

    def _recount(self, channel: str, thread_ts: str) -> None:
        """Refresh a parent's reply_count, reply_users and latest_reply."""
        parent = self.get(channel, thread_ts)
        replies = self.thread(channel, thread_ts)[1:]
        users = list(dict.fromkeys(r.get("user", "") for r in replies))
        parent["thread_ts"] = thread_ts
        parent.update(reply_count=len(replies), reply_users=users, reply_users_count=len(users))
        parent["latest_reply"] = replies[-1]["ts"] if replies else thread_ts

    def add_ephemeral(self, user: str, message: Message) -> Message:
        """Store a message only `user` can see."""
        self.ephemerals.setdefault(user, []).append(message)
        return message

    def find_ephemeral(self, user: str, ts: str) -> Message | None:
        """One of the user's ephemerals by ts."""
        return next((m for m in self.ephemerals.get(user, []) if m["ts"] == ts), None)

    def save_view(self, owner: str, view: dict[str, Any]) -> dict[str, Any]:
        """Store (or replace) a view shown to `owner`."""
        self.views[view["id"]] = view
        self.view_owner[view["id"]] = owner
        return view

    def get_view(self, view_id: str) -> dict[str, Any]:
        """A stored view by id, or `not_found`."""
        if view_id not in self.views:
            raise SlackError("not_found")
        return self.views[view_id]

    def views_of(self, user: str) -> list[dict[str, Any]]:
        """The user's home view and open modals, in the order they were first shown."""
        return [v for vid, v in self.views.items() if self.view_owner[vid] == user]

    def drop_view(self, view_id: str) -> dict[str, Any]:
        """Forget a closed modal."""
        self.view_owner.pop(view_id, None)
        return self.views.pop(view_id)


def add_reaction(message: Message, name: str, user: str) -> None:
    """Record a reaction, or `already_reacted`."""
    reactions = message.setdefault("reactions", [])
    entry = next((r for r in reactions if r["name"] == name), None)
    if entry is None:
        reactions.append({"name": name, "users": [user], "count": 1})
    elif user in entry["users"]:
        raise SlackError("already_reacted")
    else:
        entry["users"].append(user)
        entry["count"] += 1


def remove_reaction(message: Message, name: str, user: str) -> None:
    """Withdraw a reaction, or `no_reaction`."""
    reactions = message.get("reactions", [])
    entry = next((r for r in reactions if r["name"] == name and user in r["users"]), None)
    if entry is None:
        raise SlackError("no_reaction")
    entry["users"].remove(user)
    entry["count"] -= 1
    message["reactions"] = [r for r in reactions if r["count"]]
    if not message["reactions"]:
        del message["reactions"]
