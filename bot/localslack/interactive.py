"""Slash commands, block actions, view submissions and closes, and the `response_url`s they carry.

Each interaction is a signed form POST to the app, answered synchronously; the emulator shows
the answer as Slack would (ephemeral or in-channel message, modal update…). `response_url`s
are served at `POST {base}/response/<id>`.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.localslack.errors import LocalSlackError, SlackError
from bot.localslack.events import AppReply, Sender
from bot.localslack.workspace import Workspace
from bot.localslack.world import Channel, User

FORM = "application/x-www-form-urlencoded"
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60


@dataclass
class ResponseUrl:
    """Where an interaction's follow-up messages go (5 uses within 30 minutes)."""

    user: str
    channel: str
    message_ts: str | None = None
    ephemeral: bool = False
    uses: int = 0
    created: float = field(default_factory=time.monotonic)


def find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]]:
    """The block_id and interactive element with this action_id."""
    for block in blocks:
        candidates = [*block.get("elements", []), block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    raise LocalSlackError(f"no element with action_id {action_id!r}")


def action_payload(block_id: str, element: dict[str, Any], value: str | None, ts: str) -> dict[str, Any]:
    """One entry of a block_actions payload's `actions`."""
    action = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "type": element["type"],
        "action_ts": ts,
    }
    if element["type"] == "button":
        return {
            **action,
            "text": element.get("text"),
            "value": value if value is not None else element.get("value"),
        }
    options = element.get("options", [])
    chosen = next((o for o in options if o.get("value") == value), {"value": value})
    return {**action, "selected_option": chosen}


def input_values(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """View state values; plain strings become `plain_text_input` values."""
    wrap = lambda v: {"type": "plain_text_input", "value": v} if isinstance(v, str) else v  # noqa: E731
    return {block: {action: wrap(v) for action, v in actions.items()} for block, actions in values.items()}


def initial_values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The state of a modal's text inputs nobody touched: Slack sends their initial values."""
    found: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks") or []:
        element = block.get("element") or {}
        if block.get("type") == "input" and element.get("type") == "plain_text_input":
            value = {"type": "plain_text_input", "value": element.get("initial_value")}
            found[block.get("block_id", "")] = {element.get("action_id", ""): value}
    return found


def view_closed_payload(identity: dict[str, Any], view: dict[str, Any], cleared: bool) -> dict[str, Any]:
    """The `view_closed` interaction; `is_cleared` says the views beneath it were closed too."""
    return {"type": "view_closed", **identity, "view": copy.deepcopy(view), "is_cleared": cleared}


def reply_fields(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Text and message fields from an app's JSON reply or response_url body."""
    keys = ("blocks", "attachments", "metadata")
    return str(body.get("text") or ""), {k: body[k] for k in keys if body.get(k) is not None}


class Interactions:
    """Sends interactions to the app and serves response_urls."""

    def __init__(
        self,
        ws: Workspace,
        sender: Sender,
        base_url: Callable[[], str],
        app_url: Callable[[str], str | None],
    ) -> None:
        self.ws = ws
        self.sender = sender
        self.base_url = base_url
        self.app_url = app_url
        self.timeout = 3.0
        self.response_urls: dict[str, ResponseUrl] = {}
        self.in_flight = 0

    # --- common payload parts ------------------------------------------------------------

    def response_url(self, target: ResponseUrl) -> str:
        """Register a response_url and return its address."""
        key = uuid.uuid4().hex
        self.response_urls[key] = target
        return f"{self.base_url()}/response/{key}"

    def identity(self, user: User) -> dict[str, Any]:
        """The `user`, `team` and app fields every interaction payload carries."""
        host, app = self.ws.world.host, self.ws.world.app
        who = {"id": user.id, "username": user.name, "name": user.name, "team_id": user.team_id}
        base = {
            "user": who,
            "team": {"id": host.id, "domain": host.domain},
            "api_app_id": app.app_id,
        }
        return {
            **base,
            "token": self.ws.verification_token,
            "enterprise": None,
            "is_enterprise_install": False,
        }

    async def send(self, kind: str, body: str, content_type: str = FORM) -> AppReply:
        """POST one signed interaction to the app's URL for `kind`."""
        url = self.app_url(kind)
        if url is None:
            raise LocalSlackError(f"no app URL set for {kind}")
        self.in_flight += 1
        try:
            reply = await self.sender.send(url, body, content_type, self.timeout)
        finally:
            self.in_flight -= 1
        self.ws.notify(
            "interaction",
            {"kind": kind, "status": reply.status, "body": reply.body, "error": reply.error},
        )
        return reply

    async def send_payload(self, payload: dict[str, Any]) -> AppReply:
        """POST `payload=<json>` as Slack does for interactivity."""
        return await self.send("interactivity", urlencode({"payload": json.dumps(payload)}))

    # --- slash commands ------------------------------------------------------------------

    async def slash_command(self, user: User, channel: Channel, command: str, text: str) -> AppReply:
        """Run a slash command and show the app's immediate answer."""
        host = self.ws.world.host
        form = {"token": self.ws.verification_token, "team_id": host.id, "team_domain": host.domain}
        form.update(channel_id=channel.id, channel_name=channel.name or "directmessage")
        form.update(user_id=user.id, user_name=user.name, command=command, text=text)
        form.update(api_app_id=self.ws.world.app.app_id, is_enterprise_install="false")
        form.update(response_url=self.response_url(ResponseUrl(user.id, channel.id)))
        form["trigger_id"] = self.ws.issue_trigger(user.id)
        reply = await self.send("commands", urlencode(form))
        self.show_reply(user, channel, reply)
        return reply

    def show_reply(self, user: User, channel: Channel, reply: AppReply) -> None:
        """Show a slash command's synchronous answer: ephemeral unless `in_channel`."""
        body = reply.json()
        if not reply.ok or not reply.body.strip():
            return
        if not isinstance(body, dict):
            body = {"text": reply.body}
        self.deliver(ResponseUrl(user.id, channel.id), body)

    # --- block actions -------------------------------------------------------------------

    async def click(
        self, user: User, channel: Channel, ts: str, action_id: str, value: str | None
    ) -> AppReply:
        """Press a button (or pick an option) in a message or in one of the user's ephemerals."""
        ephemeral = self.ws.store.find_ephemeral(user.id, ts)
        message = ephemeral or self.ws.store.get(channel.id, ts)
        block_id, element = find_element(message.get("blocks") or [], action_id)
        container = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel.id,
            "is_ephemeral": bool(ephemeral),
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        payload = {"type": "block_actions", **self.identity(user), "container": container}
        payload.update(channel={"id": channel.id, "name": channel.name}, state={"values": {}})
        if not ephemeral:
            payload["message"] = copy.deepcopy(message)
        target = ResponseUrl(user.id, channel.id, ts, bool(ephemeral))
        payload.update(trigger_id=self.ws.issue_trigger(user.id), response_url=self.response_url(target))
        payload["actions"] = [action_payload(block_id, element, value, self.ws.clock.next())]
        return await self.send_payload(payload)

    async def click_view(self, user: User, view_id: str, action_id: str, value: str | None) -> AppReply:
        """Press a button in the user's Home tab or an open modal."""
        view = self.ws.store.get_view(view_id)
        block_id, element = find_element(view.get("blocks", []), action_id)
        payload = {"type": "block_actions", **self.identity(user), "view": copy.deepcopy(view)}
        payload.update(
            container={"type": "view", "view_id": view_id},
            trigger_id=self.ws.issue_trigger(user.id),
        )
        payload["actions"] = [action_payload(block_id, element, value, self.ws.clock.next())]
        return await self.send_payload(payload)

    # --- view submissions ----------------------------------------------------------------

    async def submit_view(self, user: User, view_id: str, values: dict[str, dict[str, Any]]) -> AppReply:
        """Submit a modal; apply the app's `response_action` (errors, update, push, clear)."""
        view = copy.deepcopy(self.ws.store.get_view(view_id))
        view["state"] = {"values": initial_values(view) | input_values(values)}
        payload = {
            "type": "view_submission",
            **self.identity(user),
            "view": view,
            "response_urls": [],
        }
        payload["trigger_id"] = self.ws.issue_trigger(user.id)
        reply = await self.send_payload(payload)
        if reply.ok:
            self.apply_response_action(user, view_id, reply.json() or {})
        return reply

    def apply_response_action(self, user: User, view_id: str, body: dict[str, Any]) -> None:
        """What Slack does with a view_submission answer."""
        action = body.get("response_action")
        if action == "errors":
            self.ws.notify(
                "view_errors", {"view_id": view_id, "errors": body.get("errors", {})}, None, user.id
            )
        elif action == "update":
            self.ws.update_view(view_id, body.get("view", {}), None)
        elif action == "push":
            self.ws.open_modal(user.id, body.get("view", {}))
        elif action == "clear":
            for view in self.ws.store.views_of(user.id):
                if view["type"] == "modal":
                    self.ws.close_view(view["id"])
        else:
            self.ws.close_view(view_id)

    # --- closing a modal -----------------------------------------------------------------

    async def close_view(self, user: User, view_id: str, clear: bool) -> AppReply | None:
        """Close a user's modal as Slack does: Cancel closes it, × (`clear`) their whole stack."""
        view = self.ws.store.get_view(view_id)
        if self.ws.store.view_owner.get(view_id) != user.id or view["type"] != "modal":
            raise SlackError("not_found")
        stack = [v for v in self.ws.store.views_of(user.id) if v["type"] == "modal"]
        closing = stack if clear or view["clear_on_close"] else [view]
        for each in closing:
            self.ws.close_view(each["id"])
        # Slack closes first and tells the app afterwards, only if the view asked to be told.
        if not view["notify_on_close"]:
            return None
        return await self.send_payload(view_closed_payload(self.identity(user), view, len(closing) > 1))

    # --- url verification ----------------------------------------------------------------

    async def verify_url(self, challenge: str) -> AppReply:
        """Send Slack's `url_verification` challenge to the events URL."""
        body = {
            "token": self.ws.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        return await self.send("events", json.dumps(body), "application/json")

    # --- response_url --------------------------------------------------------------------

    async def handle_response(self, request: web.Request) -> web.Response:
        """The aiohttp handler for `POST /response/{id}`."""
        target = self.response_urls.get(request.match_info["id"])
        if target is None or time.monotonic() - target.created > RESPONSE_URL_TTL:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        target.uses += 1
        if target.uses > RESPONSE_URL_USES:
            return web.json_response({"ok": False, "error": "used_url"}, status=404)
        try:
            self.deliver(target, json.loads(await request.text()))
        except (ValueError, AttributeError):
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        except SlackError as error:
            return web.json_response({"ok": False, "error": error.code}, status=404)
        return web.json_response({"ok": True})

    def deliver(self, target: ResponseUrl, body: dict[str, Any]) -> None:
        """Apply a response_url message: delete/replace the original, or post a new one."""
        if target.message_ts and (body.get("delete_original") or body.get("replace_original")):
            self.change_original(target, body)
            return
        text, fields = reply_fields(body)
        user, channel = self.ws.world.user(target.user), self.ws.world.channel(target.channel)
        if body.get("response_type") == "in_channel":
            bot = self.ws.world.user(self.ws.world.app.user_id)
            self.ws.post(bot, channel, text, fields, body.get("thread_ts"))
        else:
            self.ws.post_ephemeral(user, channel, text, {**fields, "thread_ts": body.get("thread_ts")})

    def change_original(self, target: ResponseUrl, body: dict[str, Any]) -> None:
        """Delete or replace the message the interaction came from."""
        ts = str(target.message_ts)
        text, fields = reply_fields(body)
        changes = None if body.get("delete_original") else {"text": text, "blocks": [], **fields}
        if target.ephemeral:
            self.ws.replace_ephemeral(target.user, ts, changes)
            return
        bot, channel = (
            self.ws.world.user(self.ws.world.app.user_id),
            self.ws.world.channel(target.channel),
        )
        if changes is None:
            self.ws.delete(bot, channel, ts)
        else:
            self.ws.edit(bot, channel, ts, changes)
