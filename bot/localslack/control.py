"""JSON control API for the demo UI and the standalone CLI.

`GET  /_emulator/state[?user=U]`  the world, every channel's messages (and a user's private view)
`POST /_emulator/<action>`         post, edit, delete, react, unreact, slash_command, click,
                                   click_view, submit_view, close_view, open_home (JSON keyword
                                   arguments)
`GET  /_emulator/ws`               a websocket streaming every `Change` as JSON
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from bot.localslack.errors import LocalSlackError
from bot.localslack.events import AppReply
from bot.localslack.workspace import EMOJI_TABLE, Change

if TYPE_CHECKING:
    from bot.localslack.server import LocalSlack

ACTIONS = frozenset(
    {
        "post",
        "edit",
        "delete",
        "react",
        "unreact",
        "slash_command",
        "click",
        "click_view",
        "submit_view",
        "close_view",
        "open_home",
    }
)
STREAMS: web.AppKey[set[asyncio.Queue[Change | None]]] = web.AppKey("streams", set)
SLACK: web.AppKey[Any] = web.AppKey("slack", object)


def add_routes(app: web.Application, slack: LocalSlack) -> None:
    """Mount the control routes on the emulator's aiohttp app."""
    app[SLACK] = slack
    app[STREAMS] = set()
    app.router.add_get("/_emulator/state", state)
    app.router.add_get("/_emulator/emoji", emoji_table)
    app.router.add_get("/_emulator/ws", stream)
    app.router.add_post("/_emulator/{action}", act)


def snapshot(slack: LocalSlack, user: str | None) -> dict[str, Any]:
    """Everything a UI needs to draw the workspace (as seen by `user`, if given)."""
    world = slack.world
    channels = [{**asdict(c), "channel_type": c.channel_type} for c in world.channels]
    store = slack.workspace.store
    messages = {cid: store.messages.get(cid, []) for cid in (c.id for c in world.channels)}
    app = asdict(world.app) | {"events": sorted(world.app.events)}
    data: dict[str, Any] = {"url": slack.url, "app": app}
    data.update(teams=[asdict(t) for t in world.teams], users=[asdict(u) for u in world.users])
    data.update(channels=channels, messages=messages)
    if user:
        data.update(ephemerals=slack.ephemerals(user), views=slack.views(user))
    return data


async def emoji_table(request: web.Request) -> web.Response:
    """`GET /_emulator/emoji`: every standard Slack emoji code and its character, for the page."""
    return web.json_response(EMOJI_TABLE, headers={"Cache-Control": "max-age=86400"})


async def state(request: web.Request) -> web.Response:
    """`GET /_emulator/state`."""
    try:
        return web.json_response(snapshot(request.app[SLACK], request.query.get("user")))
    except LocalSlackError as error:
        return web.json_response({"ok": False, "error": str(error)}, status=400)


def reply_json(result: Any) -> Any:
    """An action's result as JSON (an app reply becomes status and body)."""
    if isinstance(result, AppReply):
        return {
            "status": result.status,
            "body": result.json() or result.body,
            "error": result.error,
        }
    return result


async def act(request: web.Request) -> web.Response:
    """`POST /_emulator/<action>` with the Python method's keyword arguments as JSON."""
    action = request.match_info["action"]
    if action not in ACTIONS:
        return web.json_response({"ok": False, "error": "unknown_action"}, status=404)
    try:
        kwargs = json.loads(await request.text() or "{}")
        result = await getattr(request.app[SLACK], action)(**kwargs)
    except (LocalSlackError, TypeError, ValueError) as error:
        return web.json_response({"ok": False, "error": str(error)}, status=400)
    return web.json_response({"ok": True, "result": reply_json(result)})


async def stream(request: web.Request) -> web.WebSocketResponse:
    """`GET /_emulator/ws`: push every change until the client or the emulator leaves."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    queue: asyncio.Queue[Change | None] = asyncio.Queue()
    streams = request.app[STREAMS]
    streams.add(queue)
    unsubscribe = request.app[SLACK].subscribe(queue)
    reader = asyncio.create_task(_wait_closed(ws, queue))
    try:
        while (change := await queue.get()) is not None:
            await ws.send_json(change.to_dict())
    finally:
        unsubscribe()
        streams.discard(queue)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
    return ws


async def _wait_closed(ws: web.WebSocketResponse, queue: asyncio.Queue[Change | None]) -> None:
    """Read (and ignore) client frames; end the stream when the client closes."""
    async for message in ws:
        if message.type is WSMsgType.ERROR:
            break
    queue.put_nowait(None)


async def close_streams(app: web.Application) -> None:
    """End every live stream (before the server shuts down)."""
    for queue in app[STREAMS]:
        queue.put_nowait(None)
    await asyncio.sleep(0)
