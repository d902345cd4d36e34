"""The same app over Socket Mode: envelopes over a websocket, acks back, answers in threads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.bot.conftest import Harness


class SocketSlack:
    """Slack's side of Socket Mode: `apps.connections.open` and the websocket it hands out."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.acks: dict[str, dict[str, Any]] = {}
        self.arrived = asyncio.Event()
        self.url = ""

    async def open_connection(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer xapp-1-test"
        return web.json_response({"ok": True, "url": f"{self.url.replace('http', 'ws')}/link"})

    async def link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A_BATON"}})
        sender = asyncio.create_task(self._send(ws))
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    ack = json.loads(message.data)
                    self.acks[ack["envelope_id"]] = ack
                    self.arrived.set()
        finally:
            sender.cancel()
        return ws

    async def _send(self, ws: web.WebSocketResponse) -> None:
        while True:
            await ws.send_json(await self.outbox.get())

    async def ack_for(self, envelope_id: str) -> dict[str, Any]:
        while envelope_id not in self.acks:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 5)
        return self.acks[envelope_id]


@pytest.fixture
async def socket_slack() -> AsyncIterator[SocketSlack]:
    fake = SocketSlack()
    app = web.Application()
    app.router.add_post("/api/apps.connections.open", fake.open_connection)
    app.router.add_get("/link", fake.link)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    await runner.cleanup()


async def test_socket_mode_answers_in_the_thread_and_acks(
    harness: Harness, socket_slack: SocketSlack
) -> None:
    slack = harness.slack
    slack.app_url = None  # Slack sends nothing over HTTP to a Socket Mode app
    connections = AsyncWebClient(base_url=f"{socket_slack.url}/api/")
    handler = AsyncSocketModeHandler(harness.app, "xapp-1-test", web_client=connections, ping_interval=30)
    await handler.connect_async()
    try:
        ts = await slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
        (envelope,) = slack.events()
        await socket_slack.outbox.put({"envelope_id": "env-1", "type": "events_api", "payload": envelope})
        command = {"command": "/baton", "text": "", "user_id": "U_ADMIN", "channel_id": "C_AGENTS"}
        await socket_slack.outbox.put({"envelope_id": "env-2", "type": "slash_commands", "payload": command})
        assert await socket_slack.ack_for("env-1") == {"envelope_id": "env-1"}
        assert (await socket_slack.ack_for("env-2"))["payload"]["response_type"] == "ephemeral"
        await slack.wait_for(lambda: harness.replies("C_SUPPORT", ts))
        await harness.app.baton.idle()
    finally:
        await handler.close_async()
    (reply,) = harness.replies("C_SUPPORT", ts)
    assert "Forgot password?" in reply["text"]
