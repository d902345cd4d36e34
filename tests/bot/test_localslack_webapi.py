"""The local Slack's Web API, world, events it builds, faults and live updates (no app)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.localslack import Change, Channel, LocalSlack, LocalSlackError, Team, User, World


@pytest.fixture
async def slack() -> AsyncIterator[LocalSlack]:
    async with LocalSlack() as emulator:
        yield emulator


@pytest.fixture
def client(slack: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def raw_call(slack: LocalSlack, method: str, **kwargs: object) -> tuple[int, dict]:
    """A hand-made HTTP call (for bodies and tokens slack_sdk would not send)."""
    url = f"{slack.api_url}{method}"
    async with aiohttp.ClientSession() as session, session.post(url, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.json()


# --- auth --------------------------------------------------------------------------------


async def test_auth_test_describes_the_bot_of_the_host_team(client: AsyncWebClient) -> None:
    resp = await client.auth_test()
    assert resp["team_id"] == "T_HOST" and resp["team"] == "Tally Labs"
    assert (resp["user_id"], resp["bot_id"], resp["is_enterprise_install"]) == (
        "U_BATON",
        "B_BATON",
        False,
    )
    assert resp["url"] == "https://tallylabs.slack.com/"


async def test_wrong_or_missing_token_is_refused(slack: LocalSlack) -> None:
    wrong = AsyncWebClient(token="xoxb-nope", base_url=slack.api_url)
    with pytest.raises(SlackApiError) as caught:
        await wrong.chat_postMessage(channel="C_SUPPORT", text="hi")
    assert caught.value.response["error"] == "invalid_auth"
    status, body = await raw_call(slack, "auth.test")
    assert (status, body) == (200, {"ok": False, "error": "not_authed"})
    assert slack.messages("C_SUPPORT") == []


async def test_form_bodies_with_a_token_field_work(slack: LocalSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    form = {
        "token": slack.bot_token,
        "channel": "#acme-support",
        "text": "hi",
        "blocks": json.dumps(blocks),
    }
    status, body = await raw_call(slack, "chat.postMessage", data=form)
    assert status == 200 and body["ok"] and body["channel"] == "C_SUPPORT"
    assert slack.messages("C_SUPPORT")[0]["blocks"] == blocks
    multipart = aiohttp.FormData({"token": slack.bot_token, "channel": "C_AGENTS", "text": "multi"})
    multipart.add_field("file", b"data", filename="x.txt")
    status, body = await raw_call(slack, "chat.postMessage", data=multipart)
    assert body["ok"] and slack.messages("C_AGENTS")[0]["text"] == "multi"


async def test_unknown_method(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.api_call("chat.shout", json={"channel": "C_SUPPORT"})
    assert caught.value.response["error"] == "unknown_method"


# --- messages ----------------------------------------------------------------------------


async def test_post_message_returns_slack_shapes_and_increasing_ts(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    first = await client.chat_postMessage(
        channel="C_SUPPORT", text="one", username="Baton", icon_emoji=":robot:"
    )
    second = await client.chat_postMessage(channel="C_SUPPORT", text="two", thread_ts=first["ts"])
    assert first["channel"] == "C_SUPPORT" and float(second["ts"]) > float(first["ts"])
    message = first["message"]
    assert (message["bot_id"], message["app_id"], message["user"]) == (
        "B_BATON",
        "A_BATON",
        "U_BATON",
    )
    assert message["icons"] == {"emoji": ":robot:"} and "subtype" not in message
    thread = slack.messages("C_SUPPORT", first["ts"])
    assert [m["text"] for m in thread] == ["one", "two"]
    assert thread[0]["reply_count"] == 1 and thread[1]["parent_user_id"] == "U_BATON"
    assert [m["text"] for m in slack.messages("C_SUPPORT")] == ["one"]


async def test_post_message_errors(client: AsyncWebClient) -> None:
    for kwargs, error in [
        ({"channel": "C_NOPE", "text": "x"}, "channel_not_found"),
        ({"channel": "C_SUPPORT", "text": ""}, "no_text"),
        ({"channel": "C_GENERAL", "text": "x"}, "not_in_channel"),
        ({"channel": "C_SUPPORT", "text": "x", "thread_ts": "1.000001"}, "thread_not_found"),
    ]:
        with pytest.raises(SlackApiError) as caught:
            await client.api_call("chat.postMessage", json=kwargs)
        assert caught.value.response["error"] == error


async def test_posting_to_a_user_id_goes_to_their_dm(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="U_AGENT2", text="psst")
    info = await client.conversations_info(channel=resp["channel"])
    assert info["channel"]["is_im"] and info["channel"]["user"] == "U_AGENT2"


async def test_update_delete_and_permalink(slack: LocalSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C_SUPPORT", text="draft")
    updated = await client.chat_update(channel="C_SUPPORT", ts=posted["ts"], text="final")
    assert updated["text"] == "final" and slack.messages("C_SUPPORT")[0]["edited"]["user"] == "U_BATON"
    link = await client.chat_getPermalink(channel="C_SUPPORT", message_ts=posted["ts"])
    assert link["permalink"].endswith(f"/archives/C_SUPPORT/p{posted['ts'].replace('.', '')}")
    user_ts = await slack.post("U_CUST1", "C_SUPPORT", "mine")
    with pytest.raises(SlackApiError, match="cant_update_message"):
        await client.chat_update(channel="C_SUPPORT", ts=user_ts, text="hijack")
    await client.chat_delete(channel="C_SUPPORT", ts=posted["ts"])
    assert [m["text"] for m in slack.messages("C_SUPPORT")] == ["mine"]
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_delete(channel="C_SUPPORT", ts=posted["ts"])


async def test_replies_paginate_and_history_is_newest_first(
    slack: LocalSlack, client: AsyncWebClient
) -> None:
    parent = await slack.post("U_CUST1", "C_SUPPORT", "help")
    for n in range(4):
        await slack.post("U_AGENT1", "C_SUPPORT", f"reply {n}", thread_ts=parent)
    page = await client.conversations_replies(channel="C_SUPPORT", ts=parent, limit=3)
    assert [m["text"] for m in page["messages"]] == ["help", "reply 0", "reply 1"] and page["has_more"]
    rest = await client.conversations_replies(
        channel="C_SUPPORT", ts=parent, limit=3, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in rest["messages"]] == ["reply 2", "reply 3"] and not rest["has_more"]
    await slack.post("U_CUST2", "C_SUPPORT", "later")
    history = await client.conversations_history(channel="C_SUPPORT")
    assert [m["text"] for m in history["messages"]] == ["later", "help"]
    assert history["messages"][1]["reply_count"] == 4


async def test_ephemeral_is_visible_only_to_its_user(slack: LocalSlack, client: AsyncWebClient) -> None:
    resp = await client.chat_postEphemeral(channel="C_SUPPORT", user="U_CUST1", text="only you")
    assert resp["message_ts"]
    assert [m["text"] for m in slack.ephemerals("U_CUST1")] == ["only you"]
    assert slack.ephemerals("U_CUST2") == [] and slack.messages("C_SUPPORT") == []
    with pytest.raises(SlackApiError, match="user_not_in_channel"):
        await client.chat_postEphemeral(channel="C_AGENTS", user="U_CUST1", text="no")


async def test_reactions_add_get_remove(slack: LocalSlack, client: AsyncWebClient) -> None:
    ts = await slack.post("U_CUST1", "C_SUPPORT", "thanks")
    await client.reactions_add(channel="C_SUPPORT", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await client.reactions_add(channel="C_SUPPORT", timestamp=ts, name="eyes")
    await slack.react("U_CUST2", "C_SUPPORT", ts, "eyes")
    got = await client.reactions_get(channel="C_SUPPORT", timestamp=ts)
    assert got["message"]["reactions"] == [{"name": "eyes", "users": ["U_BATON", "U_CUST2"], "count": 2}]
    await client.reactions_remove(channel="C_SUPPORT", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="no_reaction"):
        await client.reactions_remove(channel="C_SUPPORT", timestamp=ts, name="eyes")


# --- world -------------------------------------------------------------------------------


async def test_world_lookups(client: AsyncWebClient) -> None:
    support = (await client.conversations_info(channel="C_SUPPORT"))["channel"]
    assert support["is_ext_shared"] and support["is_shared"] and support["name"] == "acme-support"
    assert support["is_channel"] and not support["is_private"] and support["context_team_id"] == "T_HOST"
    agents = (await client.conversations_info(channel="C_AGENTS"))["channel"]
    assert not agents["is_ext_shared"] and agents["name"] == "support-agents"
    admin = (await client.users_info(user="U_ADMIN"))["user"]
    assert admin["is_admin"] and admin["team_id"] == "T_HOST" and admin["profile"]["image_72"]
    customer = (await client.users_info(user="U_CUST1"))["user"]
    assert customer["team_id"] == "T_CUST" and not customer["is_admin"]
    assert customer["profile"]["display_name"] == "Casey" and not customer["is_bot"]
    assert (await client.team_info(team="T_CUST"))["team"]["name"] == "Acme Corp"
    assert (await client.bots_info(bot="B_BATON"))["bot"]["user_id"] == "U_BATON"
    members = await client.conversations_members(channel="C_SUPPORT")
    assert "U_CUST1" in members["members"] and "U_BATON" in members["members"]
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.users_info(user="U_GHOST")


async def test_a_custom_world() -> None:
    world = World(
        teams=[Team("T1", "Host", "host"), Team("T2", "Guest", "guest")],
        users=[User("U1", "T2", "gil", "Gil Guest")],
        channels=[Channel("C1", "shared", ["U1", "U_BATON"], is_ext_shared=True, context_team_id="T1")],
    )
    async with LocalSlack(world) as slack:
        await slack.post("gil", "#shared", "hello")
        assert slack.events()[0]["event"]["user_team"] == "T2"
        with pytest.raises(LocalSlackError):
            await slack.post("U_CUST1", "C1", "not in this world")


# --- events the emulator builds ---------------------------------------------------------


async def test_user_message_event_envelope(slack: LocalSlack) -> None:
    ts = await slack.post("U_CUST1", "C_SUPPORT", "hi <@U_BATON>")
    message, mention = slack.events()
    assert (message["type"], message["team_id"], message["api_app_id"]) == (
        "event_callback",
        "T_HOST",
        "A_BATON",
    )
    assert message["is_ext_shared_channel"] and message["context_team_id"] == "T_HOST"
    assert message["authorizations"][0]["user_id"] == "U_BATON" and message["event_id"].startswith("Ev")
    event = message["event"]
    assert (event["type"], event["channel"], event["user"], event["ts"]) == (
        "message",
        "C_SUPPORT",
        "U_CUST1",
        ts,
    )
    assert (event["channel_type"], event["team"], event["user_team"], event["source_team"]) == (
        "channel",
        "T_CUST",
        "T_CUST",
        "T_CUST",
    )
    assert event["blocks"][0]["type"] == "rich_text"
    assert mention["event"]["type"] == "app_mention" and mention["event_id"] != message["event_id"]


async def test_typed_emoji_arrive_as_slack_sends_them(slack: LocalSlack, client: AsyncWebClient) -> None:
    ts = await slack.post("U_CUST1", "C_SUPPORT", "still down 😡👍🏼 at 10:30:45")
    await slack.edit("U_CUST1", "C_SUPPORT", ts, "still down 😢")
    await client.chat_postMessage(channel="C_SUPPORT", text="sorry 🙏")  # an app's text is kept
    typed, edited, bot = (e["event"] for e in slack.events())
    assert typed["text"] == "still down :rage::+1::skin-tone-3: at 10:30:45"
    assert typed["blocks"][0]["elements"][0]["elements"] == [
        {"type": "text", "text": "still down "},
        {"type": "emoji", "name": "rage"},
        {"type": "emoji", "name": "+1", "skin_tone": 3},
        {"type": "text", "text": " at 10:30:45"},
    ]
    assert edited["message"]["text"] == "still down :cry:" and bot["text"] == "sorry 🙏"


async def test_edits_deletes_files_and_invisible_channels(slack: LocalSlack, client: AsyncWebClient) -> None:
    ts = await slack.post("U_CUST1", "C_SUPPORT", "typo")
    await slack.edit("U_CUST1", "C_SUPPORT", ts, "fixed")
    await slack.delete("U_CUST1", "C_SUPPORT", ts)
    await slack.post("U_CUST1", "C_SUPPORT", "", files=[{"name": "log.txt"}])
    bot = await client.chat_postMessage(channel="C_SUPPORT", text="x")
    await client.chat_update(channel="C_SUPPORT", ts=bot["ts"], text="y")
    await slack.post("U_ADMIN", "C_GENERAL", "bot is not here")
    kinds = [(e["event"]["type"], e["event"].get("subtype")) for e in slack.events()]
    assert kinds == [
        ("message", None),
        ("message", "message_changed"),
        ("message", "message_deleted"),
        ("message", "file_share"),
        ("message", None),
        ("message", "message_changed"),
    ]
    changed, deleted, shared, posted = (slack.events()[i]["event"] for i in (1, 2, 3, 4))
    assert changed["message"]["text"] == "fixed" and changed["previous_message"]["text"] == "typo"
    assert deleted["deleted_ts"] == ts and shared["files"][0]["name"] == "log.txt"
    assert posted["bot_id"] == "B_BATON" and posted["bot_profile"]["app_id"] == "A_BATON"


async def test_views_publish_and_triggers(slack: LocalSlack, client: AsyncWebClient) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}],
    }
    published = await client.views_publish(user_id="U_AGENT1", view=home)
    again = await client.views_publish(user_id="U_AGENT1", view=home, hash=published["view"]["hash"])
    assert again["view"]["id"] == published["view"]["id"]
    assert [v["type"] for v in slack.views("U_AGENT1")] == ["home"]
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await client.views_open(trigger_id="123.456.abc", view={"type": "modal", "blocks": []})


# --- faults ------------------------------------------------------------------------------


async def test_ratelimit_is_honoured_by_slack_sdk(slack: LocalSlack) -> None:
    retrying = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    slack.faults.add(method="chat.postMessage", kind="ratelimit", times=1, retry_after=0)
    await retrying.chat_postMessage(channel="C_SUPPORT", text="once")
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert slack.calls("chat.postMessage")[0].response == {"ok": False, "error": "ratelimited"}
    assert [m["text"] for m in slack.messages("C_SUPPORT")] == ["once"]


async def test_server_error_and_slow_faults(slack: LocalSlack, client: AsyncWebClient) -> None:
    slack.faults.add(method="*", kind="error", times=1)
    with pytest.raises(SlackApiError) as caught:
        await client.auth_test()
    assert caught.value.response.status_code == 500
    slack.faults.add(method="users.info", kind="slow", delay=0.2)
    started = asyncio.get_running_loop().time()
    await client.users_info(user="U_CUST1")
    assert asyncio.get_running_loop().time() - started >= 0.2
    assert [c.fault for c in slack.calls()] == ["error", "slow"]


async def test_random_faults_are_reproducible() -> None:
    outcomes = []
    for _ in range(2):
        async with LocalSlack() as slack:
            slack.faults.random(rate=0.5, seed=7, kinds=["ratelimit", "error"])
            plain = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
            for _ in range(8):
                with contextlib.suppress(SlackApiError):
                    await plain.auth_test()
            outcomes.append([c.fault for c in slack.calls()])
    assert outcomes[0] == outcomes[1] and any(outcomes[0]) and not all(outcomes[0])


async def test_channel_rate_limit_mode(slack: LocalSlack, client: AsyncWebClient) -> None:
    slack.faults.limit_channels(per_second=1.0)
    await client.chat_postMessage(channel="C_SUPPORT", text="one")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C_SUPPORT", text="two")
    assert caught.value.response.status_code == 429 and caught.value.response.headers["Retry-After"] == "1"
    await client.chat_postMessage(channel="C_AGENTS", text="other channel is fine")


# --- recording and live updates ----------------------------------------------------------


async def test_calls_are_recorded_with_parsed_args(slack: LocalSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(
        channel="C_SUPPORT", text="hi", metadata={"event_type": "t", "event_payload": {}}
    )
    (call,) = slack.calls("chat.postMessage")
    assert call.ok and call.args["channel"] == "C_SUPPORT" and call.args["metadata"]["event_type"] == "t"
    assert call.response["ts"] == slack.messages("C_SUPPORT")[0]["ts"] and "token" not in call.args


async def test_subscribers_and_wait_for(slack: LocalSlack, client: AsyncWebClient) -> None:
    queue: asyncio.Queue[Change] = asyncio.Queue()
    seen: list[str] = []

    async def callback(change: Change) -> None:
        seen.append(change.kind)

    slack.subscribe(queue)
    unsubscribe = slack.subscribe(callback)
    waiter = asyncio.create_task(slack.wait_for(lambda: slack.messages("C_SUPPORT")))
    await client.chat_postMessage(channel="C_SUPPORT", text="live")
    assert [m["text"] for m in await waiter] == ["live"]
    unsubscribe()
    await client.chat_postEphemeral(channel="C_SUPPORT", user="U_CUST1", text="psst")
    kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]
    assert kinds == ["message", "api_call", "ephemeral", "api_call"]
    assert seen == ["message", "api_call"]
    with pytest.raises(TimeoutError):
        await slack.wait_for(lambda: False, timeout=0.05)


async def test_control_api_and_live_stream(slack: LocalSlack) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{slack.url}/_emulator/ws") as ws,
    ):
        body = {"user": "U_CUST1", "channel": "C_SUPPORT", "text": "from the UI"}
        async with session.post(f"{slack.url}/_emulator/post", json=body) as resp:
            ts = (await resp.json())["result"]
        change = await ws.receive_json(timeout=2)
        assert change["kind"] == "message" and change["data"]["message"]["ts"] == ts
        async with session.get(f"{slack.url}/_emulator/state", params={"user": "U_CUST1"}) as resp:
            state = await resp.json()
        assert state["messages"]["C_SUPPORT"][0]["text"] == "from the UI" and state["ephemerals"] == []
        async with session.post(f"{slack.url}/_emulator/post", json={"user": "U_GHOST"}) as resp:
            assert resp.status == 400


async def test_the_page_closes_a_modal_for_good(slack: LocalSlack) -> None:
    modal = slack.workspace.open_modal(
        "U_AGENT1", {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}}
    )
    async with aiohttp.ClientSession() as session:
        body = {"user": "U_AGENT1", "view_id": modal["id"]}
        async with session.post(f"{slack.url}/_emulator/close_view", json=body) as resp:
            assert (resp.status, await resp.json()) == (200, {"ok": True, "result": None})
        async with session.get(f"{slack.url}/_emulator/state", params={"user": "U_AGENT1"}) as resp:
            assert (await resp.json())["views"] == []  # a reload or another tab does not show it again
        async with session.post(f"{slack.url}/_emulator/close_view", json=body) as resp:
            assert (resp.status, (await resp.json())["error"]) == (400, "not_found")
