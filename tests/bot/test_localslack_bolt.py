"""The local Slack driving a real slack-bolt AsyncApp over HTTP, exactly as Slack would."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.localslack import LocalSlack, LocalSlackError

BUTTON_BLOCKS = [
    {
        "type": "actions",
        "block_id": "handoff_block",
        "elements": [
            {
                "type": "button",
                "action_id": "handoff",
                "value": "ticket-7",
                "text": {"type": "plain_text", "text": "Talk to a human"},
            }
        ],
    }
]
MODAL = {
    "type": "modal",
    "callback_id": "feedback",
    "title": {"type": "plain_text", "text": "Feedback"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "note",
            "label": {"type": "plain_text", "text": "Note"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    async with LocalSlack(ack_timeout=1.0, retry_backoff=(0.0,)) as emulator:
        yield emulator


def new_app(slack: LocalSlack, **kwargs: Any) -> AsyncApp:
    """A Bolt app whose Web API client talks to the emulator."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, **kwargs.pop("client_kwargs", {}))
    return AsyncApp(client=client, signing_secret=slack.signing_secret, **kwargs)


@contextlib.asynccontextmanager
async def serve(slack: LocalSlack, app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on loopback and point the emulator's Request URL at it."""
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        yield slack.app_url
    finally:
        await runner.cleanup()


def serve_bolt(slack: LocalSlack, app: AsyncApp) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve a Bolt app at /slack/events."""
    return serve(slack, app.web_app(path="/slack/events"))


async def test_echo_app_replies_in_thread_and_sees_its_own_post(slack: LocalSlack) -> None:
    app = new_app(slack)
    received: list[dict[str, Any]] = []

    @app.event("message")
    async def echo(event: dict[str, Any], say: Callable[..., Awaitable[Any]]) -> None:
        received.append(event)
        await say(text=f"echo: {event['text']}", thread_ts=event["ts"])

    async with serve_bolt(slack, app):
        ts = await slack.post("U_CUST1", "C_SUPPORT", "where is my invoice?")
        thread = await slack.wait_for(lambda: slack.messages("C_SUPPORT", ts)[1:])
        await slack.drain()
    assert [r["text"] for r in received] == ["where is my invoice?"]
    assert thread[0]["text"] == "echo: where is my invoice?" and thread[0]["bot_id"] == "B_BATON"
    assert [c.method for c in slack.calls()] == ["auth.test", "chat.postMessage"]
    own = slack.events("message")[-1]["event"]
    assert (own["bot_id"], own["app_id"], own["thread_ts"]) == ("B_BATON", "A_BATON", ts)
    assert "subtype" not in own and own["bot_profile"]["id"] == "B_BATON"
    assert [(d.status, d.retry_num) for d in slack.deliveries()] == [(200, 0), (200, 0)]


async def test_slow_ack_is_retried_with_the_same_event_id() -> None:
    async with LocalSlack(ack_timeout=0.3, retry_backoff=(0.0,)) as slack:
        app = new_app(slack, process_before_response=True)
        seen: list[tuple[str, str | None, str | None]] = []

        @app.middleware
        async def record(
            req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
        ) -> BoltResponse:
            header = lambda name: (req.headers.get(name) or [None])[0]  # noqa: E731
            seen.append((req.body["event_id"], header("x-slack-retry-num"), header("x-slack-retry-reason")))
            return await next()

        @app.event("message")
        async def slow_first_time(event: dict[str, Any]) -> None:
            if len(seen) == 1:
                await asyncio.sleep(0.6)

        async with serve_bolt(slack, app):
            await slack.post("U_CUST1", "C_SUPPORT", "hello")
            await slack.wait_for(lambda: any(d.ok for d in slack.deliveries()))
            await slack.drain()
        event_id = slack.events()[0]["event_id"]
        assert seen == [(event_id, None, None), (event_id, "1", "http_timeout")]
        attempts = [(d.event_id, d.retry_num, d.status, d.reason) for d in slack.deliveries()]
        assert attempts == [(event_id, 0, None, "http_timeout"), (event_id, 1, 200, None)]


async def test_error_status_is_retried_up_to_three_times_in_channel_order(
    slack: LocalSlack,
) -> None:
    verifier = SignatureVerifier(slack.signing_secret)
    log: list[tuple[str, str, str | None]] = []

    async def flaky(request: web.Request) -> web.Response:
        body = await request.text()
        assert verifier.is_valid_request(body, dict(request.headers))
        event = (await request.json())["event"]
        log.append((event["channel"], event["text"], request.headers.get("X-Slack-Retry-Reason")))
        return web.Response(status=500 if event["text"] == "boom" else 200)

    app = web.Application()
    app.router.add_post("/slack/events", flaky)
    async with serve(slack, app):
        await slack.post("U_CUST1", "C_SUPPORT", "boom")
        await slack.post("U_CUST1", "C_SUPPORT", "after")
        await slack.post("U_AGENT1", "C_AGENTS", "elsewhere")
        await slack.drain()
    support = [(text, reason) for channel, text, reason in log if channel == "C_SUPPORT"]
    assert support == [("boom", None)] + [("boom", "http_error")] * 3 + [("after", None)]
    assert log.index(("C_AGENTS", "elsewhere", None)) < log.index(("C_SUPPORT", "after", None))


async def test_bad_signature_is_rejected_by_bolt(slack: LocalSlack) -> None:
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret="not-the-emulators-secret",
    )
    async with serve_bolt(slack, app):
        await slack.post("U_CUST1", "C_SUPPORT", "hi")
        await slack.drain()
    assert {d.status for d in slack.deliveries()} == {401} and len(slack.deliveries()) == 4


async def test_ratelimited_reply_is_posted_once(slack: LocalSlack) -> None:
    handler = AsyncRateLimitErrorRetryHandler(max_retry_count=2)
    app = new_app(slack, client_kwargs={"retry_handlers": [handler]})

    @app.event("message")
    async def answer(event: dict[str, Any], say: Callable[..., Awaitable[Any]]) -> None:
        await say(text="on it", thread_ts=event["ts"])

    slack.faults.add(method="chat.postMessage", kind="ratelimit", times=1, retry_after=0)
    async with serve_bolt(slack, app):
        ts = await slack.post("U_CUST1", "C_SUPPORT", "help")
        await slack.wait_for(lambda: slack.messages("C_SUPPORT", ts)[1:])
        await slack.drain()
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert [m["text"] for m in slack.messages("C_SUPPORT", ts)] == ["help", "on it"]


async def test_url_verification_round_trip(slack: LocalSlack) -> None:
    async with serve_bolt(slack, new_app(slack)):
        reply = await slack.verify_url("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert reply.status == 200
    assert reply.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_slash_command_ack_and_respond(slack: LocalSlack) -> None:
    app = new_app(slack)
    commands: list[dict[str, Any]] = []

    @app.command("/baton")
    async def baton(
        command: dict[str, Any],
        ack: Callable[..., Awaitable[None]],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        commands.append(command)
        await ack("Looking into it…")
        await respond(response_type="in_channel", text=f"Status: {command['text']}")

    async with serve_bolt(slack, app):
        reply = await slack.slash_command("U_AGENT1", "C_SUPPORT", "/baton", "status")
        await slack.wait_for(lambda: slack.messages("C_SUPPORT"))
    (command,) = commands
    assert (command["user_id"], command["channel_id"], command["team_id"]) == (
        "U_AGENT1",
        "C_SUPPORT",
        "T_HOST",
    )
    assert command["channel_name"] == "acme-support" and command["api_app_id"] == "A_BATON"
    assert command["response_url"].startswith(f"{slack.url}/response/") and command["trigger_id"]
    assert reply.ok and reply.body == "Looking into it…"  # Bolt acks plain text
    assert [m["text"] for m in slack.ephemerals("U_AGENT1")] == ["Looking into it…"]
    assert slack.ephemerals("U_CUST1") == []
    assert [m["text"] for m in slack.messages("C_SUPPORT")] == ["Status: status"]


async def test_button_click_reaches_bolt_and_replaces_the_message(slack: LocalSlack) -> None:
    app = new_app(slack)
    bodies: list[dict[str, Any]] = []

    @app.action("handoff")
    async def handoff(
        body: dict[str, Any],
        ack: Callable[..., Awaitable[None]],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        bodies.append(body)
        await ack()
        await respond(replace_original=True, text="An agent is on the way")

    async with serve_bolt(slack, app):
        posted = await app.client.chat_postMessage(
            channel="C_SUPPORT", text="Need a human?", blocks=BUTTON_BLOCKS
        )
        reply = await slack.click("U_CUST1", "C_SUPPORT", posted["ts"], "handoff")
        await slack.wait_for(lambda: slack.messages("C_SUPPORT")[0]["text"] == "An agent is on the way")
        await slack.drain()
    (body,) = bodies
    assert reply.ok and body["type"] == "block_actions"
    assert body["user"] == {
        "id": "U_CUST1",
        "username": "casey",
        "name": "casey",
        "team_id": "T_CUST",
    }
    assert body["message"]["blocks"] == BUTTON_BLOCKS and body["container"]["message_ts"] == posted["ts"]
    (action,) = body["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "handoff",
        "handoff_block",
        "ticket-7",
        "button",
    )
    assert slack.messages("C_SUPPORT")[0]["blocks"] == []
    assert slack.events("message")[-1]["event"]["subtype"] == "message_changed"


async def test_reaction_events_reach_bolt(slack: LocalSlack) -> None:
    app = new_app(slack)
    reactions: list[dict[str, Any]] = []

    @app.event("message")
    async def ignore(event: dict[str, Any]) -> None:
        pass

    @app.event("reaction_added")
    @app.event("reaction_removed")
    async def on_reaction(event: dict[str, Any]) -> None:
        reactions.append(event)

    async with serve_bolt(slack, app):
        ts = await slack.post("U_CUST1", "C_SUPPORT", "fixed, thanks")
        await slack.react("U_CUST1", "C_SUPPORT", ts, "tada")
        await slack.unreact("U_CUST1", "C_SUPPORT", ts, "tada")
        await slack.wait_for(lambda: len(reactions) == 2)
    added, removed = reactions
    assert (added["type"], added["user"], added["reaction"], added["item_user"]) == (
        "reaction_added",
        "U_CUST1",
        "tada",
        "U_CUST1",
    )
    assert added["item"] == {"type": "message", "channel": "C_SUPPORT", "ts": ts}
    assert removed["type"] == "reaction_removed"


async def test_app_home_opened_publishes_a_home_view(slack: LocalSlack) -> None:
    app = new_app(slack)

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        assert event["tab"] == "home"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Open tickets: 0"}}]
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": blocks})

    async with serve_bolt(slack, app):
        await slack.open_home("U_AGENT1")
        (view,) = await slack.wait_for(lambda: slack.views("U_AGENT1"))
    assert view["type"] == "home" and view["blocks"][0]["text"]["text"] == "Open tickets: 0"


async def test_modal_opened_with_trigger_and_submitted(slack: LocalSlack) -> None:
    app = new_app(slack)
    notes: list[str] = []

    @app.command("/baton")
    async def feedback(
        body: dict[str, Any], ack: Callable[..., Awaitable[None]], client: AsyncWebClient
    ) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("feedback")
    async def submitted(view: dict[str, Any], ack: Callable[..., Awaitable[None]]) -> None:
        note = view["state"]["values"]["note"]["text"]["value"]
        if not note:
            await ack(response_action="errors", errors={"note": "Please write something"})
            return
        notes.append(note)
        await ack()

    async with serve_bolt(slack, app):
        await slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "feedback")
        (modal,) = await slack.wait_for(lambda: slack.views("U_AGENT1"))
        refused = await slack.submit_view("U_AGENT1", modal["id"], {"note": {"text": ""}})
        assert refused.json()["response_action"] == "errors" and slack.views("U_AGENT1")
        await slack.submit_view("U_AGENT1", modal["id"], {"note": {"text": "great bot"}})
    assert notes == ["great bot"] and slack.views("U_AGENT1") == []


async def test_a_closed_modal_is_gone_and_the_app_that_asked_hears_view_closed(slack: LocalSlack) -> None:
    app = new_app(slack)
    closed: list[dict[str, Any]] = []

    @app.command("/baton")
    async def feedback(
        body: dict[str, Any], ack: Callable[..., Awaitable[None]], client: AsyncWebClient
    ) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL | {"notify_on_close": True})

    @app.view_closed("feedback")
    async def cancelled(body: dict[str, Any], ack: Callable[..., Awaitable[None]]) -> None:
        closed.append(body)
        await ack()

    async with serve_bolt(slack, app):
        await slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", "feedback")
        (modal,) = await slack.wait_for(lambda: slack.views("U_AGENT1"))
        with pytest.raises(LocalSlackError, match="not_found"):
            await slack.close_view("U_ADMIN", modal["id"])  # only its owner closes it
        reply = await slack.close_view("U_AGENT1", modal["id"])
        with pytest.raises(LocalSlackError, match="not_found"):
            await slack.close_view("U_AGENT1", modal["id"])
    assert reply is not None and reply.ok and slack.views("U_AGENT1") == []
    (body,) = closed
    assert (body["type"], body["is_cleared"], body["api_app_id"]) == ("view_closed", False, "A_BATON")
    assert (body["user"]["id"], body["team"]["id"]) == ("U_AGENT1", "T_HOST")
    assert (body["view"]["id"], body["view"]["callback_id"]) == (modal["id"], "feedback")


async def test_cancel_closes_the_top_modal_and_the_cross_closes_them_all(slack: LocalSlack) -> None:
    app = new_app(slack)
    closed: list[tuple[str, bool]] = []

    @app.command("/baton")
    async def open_modal(
        command: dict[str, Any], ack: Callable[..., Awaitable[None]], client: AsyncWebClient
    ) -> None:
        await ack()
        view = MODAL | {"callback_id": command["text"], "notify_on_close": command["text"] != "quiet"}
        await client.views_open(trigger_id=command["trigger_id"], view=view)

    @app.view_closed(re.compile(".*"))
    async def cancelled(body: dict[str, Any], ack: Callable[..., Awaitable[None]]) -> None:
        closed.append((body["view"]["callback_id"], body["is_cleared"]))
        await ack()

    async with serve_bolt(slack, app):
        for name in ("first", "second", "quiet"):
            await slack.slash_command("U_AGENT1", "C_AGENTS", "/baton", name)
        await slack.wait_for(lambda: len(slack.views("U_AGENT1")) == 3)
        modals = {v["callback_id"]: v["id"] for v in slack.views("U_AGENT1")}
        assert await slack.close_view("U_AGENT1", modals["quiet"]) is None  # it did not ask: nothing is sent
        assert {v["callback_id"] for v in slack.views("U_AGENT1")} == {"first", "second"}
        await slack.close_view("U_AGENT1", modals["second"], clear=True)
    assert slack.views("U_AGENT1") == [] and closed == [("second", True)]
