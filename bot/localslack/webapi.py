"""The Web API: `POST {base}/api/<method>` with Slack's arguments, errors and response shapes.

Handlers are plain functions `(workspace, args) -> fields` that raise `SlackError`; `WebApi`
adds token checks, fault injection and the call log around them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from bot.localslack.errors import SlackError
from bot.localslack.faults import Fault, FaultKind, FaultSchedule
from bot.localslack.store import Message
from bot.localslack.workspace import Workspace
from bot.localslack.world import Channel, User

Args = dict[str, Any]
Handler = Callable[[Workspace, Args], dict[str, Any]]
NO_AUTH = frozenset({"api.test"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# --- arguments ---------------------------------------------------------------------------


def text_arg(args: Args, key: str) -> str | None:
    """A string argument, None when missing or empty."""
    value = args.get(key)
    return None if value in (None, "") else str(value)


def need(args: Args, key: str, error: str) -> str:
    """A required string argument, or the Slack error Slack gives when it is missing."""
    value = text_arg(args, key)
    if value is None:
        raise SlackError(error)
    return value


def json_arg(args: Args, key: str, error: str = "invalid_arguments") -> Any:
    """A structured argument that form bodies send as a JSON string."""
    value = args.get(key)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value else None
    except ValueError:
        raise SlackError(error) from None


def flag(args: Args, key: str) -> bool:
    """A boolean argument ("true", "1", True)."""
    return args.get(key) in (True, 1, "1", "true", "True")


def int_arg(args: Args, key: str, default: int) -> int:
    """An integer argument (0 or missing means the default)."""
    try:
        return int(args.get(key) or default)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None


def ts_value(ts: str | None, default: Decimal) -> Decimal:
    """A Slack ts as an exact number for comparisons."""
    try:
        return Decimal(ts) if ts else default
    except InvalidOperation:
        raise SlackError("invalid_ts_latest") from None


def public(message: Message) -> Message:
    """A copy of a stored message for an API answer."""
    return copy.deepcopy(message)


def paginate(items: list[Any], args: Args, default_limit: int = 100) -> tuple[list[Any], dict[str, Any]]:
    """Slice by `cursor`/`limit`; returns the page and has_more/response_metadata fields."""
    offset = decode_cursor(text_arg(args, "cursor"))
    end = offset + min(int_arg(args, "limit", default_limit), 1000)
    cursor = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(items) else ""
    return items[offset:end], {
        "has_more": bool(cursor),
        "response_metadata": {"next_cursor": cursor},
    }


def decode_cursor(cursor: str | None) -> int:
    """The offset inside a cursor made by `paginate`."""
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().removeprefix("offset:"))
    except (ValueError, binascii.Error):
        raise SlackError("invalid_cursor") from None


# --- lookups -----------------------------------------------------------------------------


def bot(ws: Workspace) -> User:
    """The app's bot user (the identity behind the bot token)."""
    return ws.world.user(ws.world.app.user_id)


def visible_channel(ws: Workspace, ref: str) -> Channel:
    """A channel the bot can see: public ones, or private ones it belongs to."""
    channel = ws.world.channel(ref)
    if (channel.is_private or channel.is_im) and ws.world.app.user_id not in channel.members:
        raise SlackError("channel_not_found")
    return channel


def post_target(ws: Workspace, ref: str) -> Channel:
    """Where `chat.postMessage` goes: a channel, `#name`, or a user id (their DM with the app)."""
    try:
        channel = visible_channel(ws, ref)
    except SlackError:
        if not ref.startswith(("U", "W")):
            raise
        channel = ws.world.dm_with(ws.world.user(ref).id)
    can_post_public = "chat:write.public" in ws.world.app.scopes and not channel.is_private
    if ws.world.app.user_id not in channel.members and not can_post_public:
        raise SlackError("not_in_channel")
    return channel


def message_fields(args: Args) -> dict[str, Any]:
    """Message content from chat.* arguments (blocks, attachments, metadata, identity)."""
    fields = {
        "blocks": json_arg(args, "blocks", "invalid_blocks_format"),
        "attachments": json_arg(args, "attachments", "invalid_attachments"),
        "metadata": json_arg(args, "metadata", "invalid_metadata_format"),
        "username": text_arg(args, "username"),
        "reply_broadcast": flag(args, "reply_broadcast"),
        "thread_ts": text_arg(args, "thread_ts"),
    }
    icons = {"emoji": text_arg(args, "icon_emoji"), "image_48": text_arg(args, "icon_url")}
    fields["icons"] = {k: v for k, v in icons.items() if v} or None
    return fields


def require_content(text: str, fields: dict[str, Any]) -> None:
    """Slack's `no_text` rule: a message needs text, blocks or attachments."""
    if not text and not fields.get("blocks") and not fields.get("attachments"):
        raise SlackError("no_text")


# --- methods -----------------------------------------------------------------------------


def api_test(ws: Workspace, args: Args) -> dict[str, Any]:
    """api.test: echo the arguments."""
    return {"args": {k: v for k, v in args.items() if isinstance(v, str)}}


def auth_test(ws: Workspace, args: Args) -> dict[str, Any]:
    """auth.test: who the bot token belongs to."""
    app, host = ws.world.app, ws.world.host
    return {
        "url": f"https://{host.domain}.slack.com/",
        "team": host.name,
        "user": app.name,
        "team_id": host.id,
        "user_id": app.user_id,
        "bot_id": app.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, args: Args) -> dict[str, Any]:
    """chat.postMessage: the app posts (to a thread with `thread_ts`)."""
    channel = post_target(ws, need(args, "channel", "channel_not_found"))
    text, fields = (
        text_arg(args, "text") or text_arg(args, "markdown_text") or "",
        message_fields(args),
    )
    require_content(text, fields)
    message = ws.post(bot(ws), channel, text, fields, fields["thread_ts"])
    return {"channel": channel.id, "ts": message["ts"], "message": public(message)}


def chat_update(ws: Workspace, args: Args) -> dict[str, Any]:
    """chat.update: edit one of the app's messages; omitted blocks are kept."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    ts = need(args, "ts", "message_not_found")
    text, fields = text_arg(args, "text"), message_fields(args)
    require_content(text or "", fields)
    changes = {"text": text, "blocks": fields["blocks"], "attachments": fields["attachments"]}
    message = ws.edit(bot(ws), channel, ts, {**changes, "metadata": fields["metadata"]})
    return {
        "channel": channel.id,
        "ts": ts,
        "text": message.get("text", ""),
        "message": public(message),
    }


def chat_delete(ws: Workspace, args: Args) -> dict[str, Any]:
    """chat.delete: delete one of the app's messages."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    ts = need(args, "ts", "message_not_found")
    ws.delete(bot(ws), channel, ts)
    return {"channel": channel.id, "ts": ts}


def chat_post_ephemeral(ws: Workspace, args: Args) -> dict[str, Any]:
    """chat.postEphemeral: a message only one member of the channel sees."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    user = ws.world.user(need(args, "user", "user_not_found"))
    text, fields = text_arg(args, "text") or "", message_fields(args)
    require_content(text, fields)
    return {"message_ts": ws.post_ephemeral(user, channel, text, fields)["ts"]}


def chat_get_permalink(ws: Workspace, args: Args) -> dict[str, Any]:
    """chat.getPermalink: a link to a message (with thread_ts for replies)."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    message = ws.store.get(channel.id, need(args, "message_ts", "message_not_found"))
    archive = f"https://{ws.world.host.domain}.slack.com/archives/{channel.id}"
    link = f"{archive}/p{message['ts'].replace('.', '')}"
    if message.get("thread_ts", message["ts"]) != message["ts"]:
        link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
    return {"channel": channel.id, "permalink": link}


def conversations_info(ws: Workspace, args: Args) -> dict[str, Any]:
    """conversations.info: channel metadata, including Slack Connect flags."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    return {"channel": channel.as_slack(ws.world.app.user_id)}


def conversations_replies(ws: Workspace, args: Args) -> dict[str, Any]:
    """conversations.replies: a thread's parent and replies, oldest first."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    ts = need(args, "ts", "thread_not_found")
    if ws.store.find(channel.id, ts) is None:
        raise SlackError("thread_not_found")
    messages, meta = paginate(in_window(ws.store.thread(channel.id, ts), args), args, 1000)
    return {"messages": [public(m) for m in messages], **meta}


def conversations_history(ws: Workspace, args: Args) -> dict[str, Any]:
    """conversations.history: the channel's timeline, newest first."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    timeline = list(reversed(in_window(ws.store.timeline(channel.id), args)))
    messages, meta = paginate(timeline, args)
    return {"messages": [public(m) for m in messages], "pin_count": 0, **meta}


def in_window(messages: list[Message], args: Args) -> list[Message]:
    """Messages between `oldest` and `latest` (ends included with `inclusive`)."""
    oldest = ts_value(text_arg(args, "oldest"), Decimal(0))
    latest = ts_value(text_arg(args, "latest"), Decimal("Infinity"))
    inclusive = flag(args, "inclusive")
    keep = []
    for message in messages:
        ts = Decimal(message["ts"])
        if oldest < ts < latest or (inclusive and ts in (oldest, latest)):
            keep.append(message)
    return keep


def conversations_members(ws: Workspace, args: Args) -> dict[str, Any]:
    """conversations.members: user ids in the channel."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    members, meta = paginate(list(channel.members), args)
    return {"members": members, "response_metadata": meta["response_metadata"]}


def conversations_open(ws: Workspace, args: Args) -> dict[str, Any]:
    """conversations.open: the app's DM with one user."""
    users = need(args, "users", "users_list_not_supplied").split(",")
    if len(users) != 1:
        raise SlackError("not_supported")
    dm = ws.world.dm_with(ws.world.user(users[0].strip()).id)
    return {"no_op": True, "already_open": True, "channel": {"id": dm.id}}


def users_info(ws: Workspace, args: Args) -> dict[str, Any]:
    """users.info: a user's profile and roles."""
    return {"user": ws.world.user(need(args, "user", "user_not_found")).as_slack()}


def team_info(ws: Workspace, args: Args) -> dict[str, Any]:
    """team.info: the host team, or another team by id (Slack Connect)."""
    return {"team": ws.world.team(text_arg(args, "team") or ws.world.app.team_id).as_slack()}


def bots_info(ws: Workspace, args: Args) -> dict[str, Any]:
    """bots.info: the app's own bot."""
    app = ws.world.app
    if text_arg(args, "bot") not in (None, app.bot_id):
        raise SlackError("bot_not_found")
    profile = app.bot_profile()
    return {"bot": {**profile, "user_id": app.user_id}}


def reaction_target(ws: Workspace, args: Args) -> tuple[Channel, str, str]:
    """The channel, message ts and emoji name of a reactions.* call."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    ts = need(args, "timestamp", "message_not_found")
    return channel, ts, need(args, "name", "invalid_name").strip(":")


def reactions_add(ws: Workspace, args: Args) -> dict[str, Any]:
    """reactions.add: the app reacts to a message."""
    channel, ts, name = reaction_target(ws, args)
    ws.react(bot(ws), channel, ts, name)
    return {}


def reactions_remove(ws: Workspace, args: Args) -> dict[str, Any]:
    """reactions.remove: the app withdraws its reaction."""
    channel, ts, name = reaction_target(ws, args)
    ws.react(bot(ws), channel, ts, name, add=False)
    return {}


def reactions_get(ws: Workspace, args: Args) -> dict[str, Any]:
    """reactions.get: a message with its reactions."""
    channel = visible_channel(ws, need(args, "channel", "channel_not_found"))
    message = ws.store.get(channel.id, need(args, "timestamp", "message_not_found"))
    return {"type": "message", "channel": channel.id, "message": public(message)}


def view_arg(args: Args) -> dict[str, Any]:
    """The `view` argument as a dict."""
    view = json_arg(args, "view", "invalid_arguments")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments")
    return view


def views_publish(ws: Workspace, args: Args) -> dict[str, Any]:
    """views.publish: set a user's Home tab."""
    user = ws.world.user(need(args, "user_id", "user_not_found"))
    return {"view": public(ws.publish_home(user, view_arg(args), text_arg(args, "hash")))}


def views_open(ws: Workspace, args: Args) -> dict[str, Any]:
    """views.open: open a modal for the user behind a fresh trigger_id."""
    view = view_arg(args)
    user = ws.use_trigger(need(args, "trigger_id", "invalid_trigger_id"))
    return {"view": public(ws.open_modal(user, view))}


def views_update(ws: Workspace, args: Args) -> dict[str, Any]:
    """views.update: replace a view by view_id or external_id."""
    view_id = ws.find_view(text_arg(args, "view_id"), text_arg(args, "external_id"))
    return {"view": public(ws.update_view(view_id, view_arg(args), text_arg(args, "hash")))}


METHODS: dict[str, Handler] = {
    "api.test": api_test,
    "auth.test": auth_test,
    "bots.info": bots_info,
    "chat.delete": chat_delete,
    "chat.getPermalink": chat_get_permalink,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "conversations.history": conversations_history,
    "conversations.info": conversations_info,
    "conversations.members": conversations_members,
    "conversations.open": conversations_open,
    "conversations.replies": conversations_replies,
    "reactions.add": reactions_add,
    "reactions.get": reactions_get,
    "reactions.remove": reactions_remove,
    "team.info": team_info,
    "users.info": users_info,
    "views.open": views_open,
    "views.publish": views_publish,
    "views.push": views_open,
    "views.update": views_update,
}


# --- HTTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One recorded Web API call (the token is not kept)."""

    method: str
    args: dict[str, Any]
    time: float
    status: int
    response: dict[str, Any]
    fault: str | None = None

    @property
    def ok(self) -> bool:
        """Whether Slack answered `ok: true`."""
        return self.response.get("ok") is True


@dataclass(frozen=True)
class Answer:
    """An HTTP answer being prepared."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    fault: Fault | None = None


async def read_args(request: web.Request) -> tuple[Args, str | None]:
    """Arguments from the query, a JSON or form body; and the token (Bearer or form field)."""
    args: Args = dict(request.query)
    if request.content_type == "application/json":
        body = parse_json(await request.text())
        args.update({k: v for k, v in body.items() if k != "token"} if isinstance(body, dict) else {})
    elif request.content_type in FORM_TYPES:
        form = await request.post()
        args.update({k: form_value(v) for k, v in form.items()})
    header = request.headers.get("Authorization", "")
    token = args.pop("token", None)
    return args, header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else token


def parse_json(text: str) -> Any:
    """A JSON body, or `invalid_json`."""
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        raise SlackError("invalid_json") from None


def form_value(value: Any) -> str:
    """A form field as text (uploaded files become their file name)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else str(getattr(value, "filename", ""))


class WebApi:
    """Serves `/api/<method>` with auth, faults and a call log."""

    def __init__(self, ws: Workspace, faults: FaultSchedule, bot_token: str, stopping: asyncio.Event) -> None:
        self.ws = ws
        self.faults = faults
        self.bot_token = bot_token
        self.stopping = stopping
        self.calls: list[Call] = []
        self.in_flight = 0

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler for `POST|GET /api/{method}`."""
        method = request.match_info["method"]
        self.in_flight += 1
        try:
            args, token = await read_args(request)
            answer = await self.answer(method, args, token)
        except SlackError as error:
            args, answer = {}, Answer(200, {"ok": False, "error": error.code}, {})
        finally:
            self.in_flight -= 1
        self.record(method, args, answer)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def answer(self, method: str, args: Args, token: str | None) -> Answer:
        """Run one call: unknown method, auth, injected fault, then the handler."""
        if method not in METHODS:
            return Answer(200, {"ok": False, "error": "unknown_method", "req_method": method}, {})
        scopes = {"X-OAuth-Scopes": ",".join(self.ws.world.app.scopes)}
        if method not in NO_AUTH and token != self.bot_token:
            return Answer(200, {"ok": False, "error": "invalid_auth" if token else "not_authed"}, {})
        fault = self.faults.pick(method, self.channel_of(args))
        late = fault is not None and fault.kind is FaultKind.LATE
        if fault is not None and not late and (failed := await self.inject(fault)) is not None:
            return failed
        try:
            body = {"ok": True, **METHODS[method](self.ws, args)}
        except SlackError as error:
            body = {"ok": False, "error": error.code}
        if late and fault is not None:  # what the call did is already out (e.g. its events)
            await self.inject(fault)
        return Answer(200, body, scopes, fault)

    def channel_of(self, args: Args) -> str | None:
        """The channel id a call targets (for per-channel rate limits)."""
        ref = text_arg(args, "channel")
        with contextlib.suppress(SlackError):
            return ref and self.ws.world.channel(ref).id
        return ref

    async def inject(self, fault: Fault) -> Answer | None:
        """Apply a fault: an error answer, or None to go on (after a delay)."""
        if fault.kind is FaultKind.RATELIMIT:
            body = {"ok": False, "error": "ratelimited"}
            return Answer(429, body, {"Retry-After": str(fault.retry_after)}, fault)
        if fault.kind is FaultKind.ERROR:
            return Answer(fault.status, {"ok": False, "error": "internal_error"}, {}, fault)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), fault.delay)
        if fault.kind is FaultKind.TIMEOUT:
            return Answer(504, {"ok": False, "error": "request_timeout"}, {}, fault)
        return None

    def record(self, method: str, args: Args, answer: Answer) -> None:
        """Log the call and tell subscribers."""
        fault = answer.fault.kind.value if answer.fault else None
        call = Call(method, args, time.time(), answer.status, answer.body, fault)
        self.calls.append(call)
        summary = {
            "method": method,
            "args": args,
            "status": answer.status,
            "response": answer.body,
            "fault": fault,
        }
        self.ws.notify("api_call", summary)
