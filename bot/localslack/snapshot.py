"""The local Slack's state in a JSON file, so that a demo's conversations survive a restart.

The file holds what the page shows (channels, messages with their threads and reactions,
ephemerals, Home tabs and open modals) and the counters that keep every ts and id unique.
`dump` and `restore` turn a `Workspace` into that JSON and back; `Autosave` writes it atomically
(temporary file, then rename) at most `SAVE_DELAY` seconds after a change and when it is closed.
A file that cannot be read back raises `StateFileError`, and `restore` then changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.localslack.errors import StateFileError
from bot.localslack.store import Message, Store, is_reply, parse_ts
from bot.localslack.workspace import Change, Workspace
from bot.localslack.world import Channel

log = logging.getLogger("localslack")
FORMAT = "baton-localslack-state"
VERSION = 1
SAVE_DELAY = 0.5  # seconds: at most this much is lost to a SIGKILL
# Event and view ids issued after the last save are lost with it; skipping ahead means none of
# them is issued twice (Baton remembers the event ids it has handled).
ID_GAP = 1000


def dump(ws: Workspace) -> dict[str, Any]:
    """The workspace's state as JSON-ready data (shared with the store: serialize it at once)."""
    store = ws.store
    views = [{"owner": store.view_owner[vid], "view": view} for vid, view in store.views.items()]
    return {
        "format": FORMAT,
        "version": VERSION,
        "last_ts": ws.clock.last,
        "issued": ws.issued,
        "channels": [asdict(c) for c in ws.world.channels],
        "messages": store.messages,
        "ephemerals": store.ephemerals,
        "views": views,
    }


def restore(ws: Workspace, data: Any) -> None:
    """Put a state `dump` made back into `ws`: `StateFileError` (and no change) if it is not one."""
    try:
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} of version {VERSION}")
        channels = [_channel(raw) for raw in data["channels"]]
        messages, ephemerals = _messages(data["messages"]), _ephemerals(data["ephemerals"])
        views = [(_field(v, "owner", str), _view(v["view"])) for v in data["views"]]
        issued, last_ts = int(data["issued"]), str(data["last_ts"])
        parse_ts(last_ts)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StateFileError(f"not a saved local Slack ({type(exc).__name__}: {exc})") from None
    ws.resume(Store.restored(messages, ephemerals, views), channels, issued + ID_GAP, last_ts)


def resume(ws: Workspace, path: Path) -> bool:
    """Restore `ws` from the file at `path`; False when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8
        raise StateFileError(f"cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateFileError(f"not JSON ({exc})") from None
    restore(ws, data)
    return True


def set_aside(path: Path) -> Path | None:
    """Move an unreadable state file out of the way (so it is kept, not overwritten)."""
    aside = path.with_name(path.name + ".unreadable")
    try:
        os.replace(path, aside)
    except OSError:
        return None
    return aside


def write(path: Path, text: str) -> None:
    """Replace the file at `path` with `text` in one step: a reader sees the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


class Autosave:
    """Saves a workspace to `path` shortly after every change, and once more on `close`."""

    def __init__(self, ws: Workspace, path: Path, delay: float = SAVE_DELAY) -> None:
        self.ws = ws
        self.path = path
        self.delay = delay
        self._written = ""
        self._failing = False
        self._timer: asyncio.TimerHandle | None = None
        self._unsubscribe = ws.subscribe(self._changed)

    def _changed(self, change: Change) -> None:
        """Schedule a save unless one is pending (changes in a burst share it)."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.save)

    def save(self) -> None:
        """Write the state now if it differs from what was last written."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        text = json.dumps(dump(self.ws), ensure_ascii=False, separators=(",", ":"))
        if text == self._written:
            return
        try:
            write(self.path, text)
        except OSError as exc:  # a full disk or a read-only folder: the demo goes on, unsaved
            if not self._failing:
                log.warning("cannot save the local Slack to %s: %s", self.path, exc)
            self._failing = True
            return
        self._written, self._failing = text, False

    def close(self) -> None:
        """Stop watching and save what is left."""
        self._unsubscribe()
        self.save()


def _channel(raw: dict[str, Any]) -> Channel:
    """A saved channel (JSON has no tuples)."""
    return Channel(**{**raw, "shared_team_ids": tuple(raw.get("shared_team_ids", ()))})


def _messages(raw: dict[str, list[Message]]) -> dict[str, list[Message]]:
    """Saved channel timelines, checked: every message has a ts and every reply its parent."""
    checked: dict[str, list[Message]] = {}
    for channel, found in raw.items():
        stamps = {_ts(message) for message in found}
        orphans = [m["ts"] for m in found if is_reply(m) and m["thread_ts"] not in stamps]
        if orphans:
            raise ValueError(f"replies without a parent in {channel}: {orphans[:3]}")
        checked[channel] = list(found)
    return checked


def _ephemerals(raw: dict[str, list[Message]]) -> dict[str, list[Message]]:
    """Saved ephemerals per user, checked for a ts and a channel."""
    for found in raw.values():
        for message in found:
            _ts(message)
            _field(message, "channel", str)
    return {user: list(found) for user, found in raw.items()}


def _view(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved view, checked for the fields the emulator looks up."""
    for key in ("id", "type", "hash"):
        _field(raw, key, str)
    return dict(raw)


def _ts(message: Message) -> str:
    """A saved message's ts, checked."""
    ts = _field(message, "ts", str)
    parse_ts(ts)
    return str(ts)


def _field(data: dict[str, Any], key: str, kind: type) -> Any:
    """`data[key]`, or `TypeError` when it is not a `kind`."""
    value = data[key]
    if not isinstance(value, kind):
        raise TypeError(f"{key} is {type(value).__name__}, not {kind.__name__}")
    return value
