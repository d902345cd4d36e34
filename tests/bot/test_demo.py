"""`baton demo`: the page is served, what the page does reaches Baton as Slack would send it,
and the tour plays a whole conversation. One demo (real model) serves every test here."""

from __future__ import annotations

import asyncio
import io
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlite_utils import Database

from bot.cli import build_parser, run_demo
from bot.demo import (
    AGENT_REPLY,
    ANGRY,
    QUESTION,
    THANKS,
    Demo,
    DemoError,
    Options,
    fresh_database,
    launched,
    save_seed,
    seed_path,
    start_slack,
)
from bot.settings import Settings
from handoff.csat import csat_report
from tests.bot.test_app import blocks_text

shared_loop = pytest.mark.asyncio(loop_scope="module")


class Live:
    """The running demo, what it printed, and where it keeps its seed."""

    def __init__(self, demo: Demo, out: io.StringIO, home: Path) -> None:
        self.demo = demo
        self.slack = demo.slack
        self.out = out
        self.home = home

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """One HTTP request to the page's server, as the page makes it."""
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.demo.url + path, json=body) as response,
        ):
            content = await response.json() if response.content_type == "application/json" else None
            return response.status, content

    def bot_replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(channel, ts)[1:] if m.get("bot_id")]


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until Baton has done something the emulator cannot see (a database write)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    home = tmp_path_factory.mktemp("demo-home")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bot.runner.model_threads", lambda: 1)  # the machine is shared: one torch thread
        async with launched(Settings(), Options(port=0, home=home, pace=0), out) as demo:
            yield Live(demo, out, home)


@shared_loop
async def test_it_says_where_and_how_fast_and_keeps_the_faq_for_next_time(live: Live) -> None:
    printed = live.out.getvalue()
    assert "ready in " in printed and f"open {live.demo.url}" in printed
    seed = live.home / "demo.db"
    with sqlite3.connect(seed) as db:
        (entries,) = db.execute("select count(*) from faq_entries").fetchone()
        (vectors,) = db.execute("select count(*) from embeddings").fetchone()
    assert entries == 64 and vectors > entries  # the sample FAQ, its paraphrases encoded once


@shared_loop
async def test_the_page_is_served_with_its_script_and_style(live: Live) -> None:
    async with aiohttp.ClientSession() as session:
        files = [("/", "text/html"), ("/static/app.js", "javascript"), ("/static/style.css", "css")]
        for path, kind in files:
            async with session.get(live.demo.url + path) as response:
                assert response.status == 200 and kind in response.content_type
        async with session.get(live.demo.url + "/") as response:
            page = await response.text()
    assert '<script src="/static/app.js">' in page and 'id="viewer"' in page
    status, info = await live.call("GET", "/_demo/info")
    assert status == 200 and info["tour"]["autoplay"] is False


@shared_loop
async def test_a_question_typed_on_the_page_reaches_baton_signed_and_is_answered(live: Live) -> None:
    question = {"user": "U_CUST1", "channel": "C_SUPPORT", "text": "how do I turn on 2FA?"}
    status, body = await live.call("POST", "/_emulator/post", question)
    assert status == 200
    ts = body["result"]
    (answer,) = await live.slack.wait_for(lambda: live.bot_replies("C_SUPPORT", ts), timeout=20)
    assert "two-factor" in answer["text"].lower() or "2fa" in answer["text"].lower()
    delivered = [d for d in live.slack.deliveries() if d.event_type == "message" and d.ok]
    assert delivered  # over HTTP to Baton's /slack/events, signed, acknowledged


@shared_loop
async def test_a_slash_command_from_the_page_is_answered_to_that_person_only(live: Live) -> None:
    args = {"user": "U_ADMIN", "channel": "C_AGENTS", "command": "/baton", "text": "help"}
    status, body = await live.call("POST", "/_emulator/slash_command", args)
    assert status == 200 and body["result"]["status"] == 200
    _, admin = await live.call("GET", "/_emulator/state?user=U_ADMIN")
    _, agent = await live.call("GET", "/_emulator/state?user=U_AGENT1")
    assert any("/baton" in m["text"] for m in admin["ephemerals"]) and not agent["ephemerals"]


@shared_loop
async def test_the_page_hears_every_change_live(live: Live) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(live.demo.url + "/_emulator/ws") as ws:
        await live.slack.post("U_CUST2", "C_SUPPORT", "is anyone there?")
        change = await asyncio.wait_for(ws.receive_json(), timeout=5)
    assert change["kind"] == "message" and change["data"]["message"]["text"] == "is anyone there?"


@shared_loop
async def test_the_tour_answers_hands_off_relays_and_gets_a_thumbs_up(live: Live) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert (await live.call("POST", "/_demo/tour"))[0] == 200
    assert (await live.call("POST", "/_demo/tour"))[0] == 409  # one tour at a time
    assert live.demo.tour.task is not None
    log = await asyncio.wait_for(live.demo.tour.task, timeout=60)
    thread = live.slack.messages("C_SUPPORT", log.thread_ts)
    said = [(m.get("username") or m.get("user"), m["text"]) for m in thread]
    assert said[0] == ("U_CUST1", QUESTION) and "Forgot password?" in said[1][1]  # answered from the FAQ
    assert said[2] == ("U_CUST1", ANGRY) and "passing you to a person" in said[3][1]  # handed off
    assert said[4] == ("Sam", AGENT_REPLY) and said[5] == ("U_CUST1", THANKS)  # relayed as Sam
    closing = thread[6]
    assert ":+1:" in closing["text"] and closing["reactions"][0]["users"] == ["U_CUST1"]
    (card,) = [m for m in live.slack.messages("C_AGENTS") if m["ts"] == log.card_ts]
    assert "keyword 'refund'" in blocks_text(card) and "Resolved by <@U_AGENT1>" in blocks_text(card)
    await eventually(lambda: csat_report(live.demo.app.baton.services.db, since).human.up == 1)
    await live.call("POST", "/_emulator/open_home", {"user": "U_AGENT1"})  # as the page does
    await eventually(lambda: "CSAT: 100% (1 of 1)" in blocks_text(live.slack.views("U_AGENT1")[0]))
    assert "1/5" in live.out.getvalue() and len(log.steps) == 10  # captions for the page and the terminal


# -- a restart with --db ---------------------------------------------------------------------------
async def test_a_restart_with_db_carries_on_the_conversations_and_their_handoffs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.runner.model_threads", lambda: 1)
    state = tmp_path / "demo.db.slack.json"
    state.write_text("{not json")  # a broken file: said in one line, and the demo starts anyway
    options = Options(port=0, db=tmp_path / "demo.db", home=tmp_path / "home", pace=0)
    out = io.StringIO()
    async with launched(Settings(), options, out) as first:
        ts = await first.slack.post("U_CUST1", "C_SUPPORT", ANGRY)
        card = await first.slack.wait_for(lambda: first.tour.card_for(ts), timeout=30)
        await first.slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_claim")
        await first.slack.drain()
        before = first.slack.messages("C_SUPPORT", ts), first.slack.messages("C_AGENTS", card["ts"])
    assert [line for line in out.getvalue().splitlines() if "starts empty" in line] == [
        f"The local Slack starts empty: cannot use {state}: not JSON (Expecting property name enclosed "
        f"in double quotes: line 1 column 2 (char 1)); it is kept as {state}.unreadable"
    ]
    out = io.StringIO()
    async with launched(Settings(), options, out) as second:  # Ctrl-C, then the same --db again
        slack = second.slack
        assert "starts empty" not in out.getvalue()
        assert (slack.messages("C_SUPPORT", ts), slack.messages("C_AGENTS", card["ts"])) == before
        await slack.post("U_AGENT1", "C_AGENTS", AGENT_REPLY, card["ts"])
        (relayed,) = await slack.wait_for(lambda: second.tour.relays(ts), timeout=20)
        assert (relayed["username"], relayed["text"]) == ("Sam", AGENT_REPLY)  # the card still leads to Casey
        await slack.click("U_AGENT1", "C_AGENTS", card["ts"], "baton_resolve")
        resolved = lambda: "Resolved by <@U_AGENT1>" in blocks_text(slack.messages("C_AGENTS")[0])  # noqa: E731
        await eventually(resolved)
        await slack.open_home("U_AGENT1")
        answered = "*Open handoffs*\nNone: every thread is answered."  # and no ghost of the old run
        await eventually(lambda: any(answered in blocks_text(v) for v in slack.views("U_AGENT1")))


# -- without the model ---------------------------------------------------------------------------
def test_a_run_starts_from_a_copy_of_the_seed_and_leaves_the_seed_alone(tmp_path: Path) -> None:
    seed = tmp_path / "seed.db"
    with sqlite3.connect(seed) as db:
        db.execute("create table embeddings (text)")
        db.execute("insert into embeddings values ('cached')")
    db.close()
    run = fresh_database(seed, tmp_path / "run")
    with sqlite3.connect(run) as copy:
        assert copy.execute("select text from embeddings").fetchall() == [("cached",)]
        copy.execute("insert into embeddings values ('this run only')")
    copy.close()
    with sqlite3.connect(seed) as db:
        assert db.execute("select count(*) from embeddings").fetchone() == (1,)
    db.close()
    assert not fresh_database(tmp_path / "missing.db", tmp_path / "other").exists()


def test_the_seed_is_saved_whole_and_named_by_faq_file(tmp_path: Path) -> None:
    db = Database(memory=True)
    db["faq_entries"].insert({"id": "hello"})
    seed = seed_path(Settings(), tmp_path)
    save_seed(db, seed)
    assert seed == tmp_path / "demo.db" and list(Database(seed)["faq_entries"].rows) == [{"id": "hello"}]
    assert [p.name for p in tmp_path.iterdir()] == ["demo.db"]  # no partial file left behind
    other = seed_path(Settings(faq_path=tmp_path / "faq.yaml"), tmp_path)
    assert other != seed and other.parent == tmp_path


async def test_a_taken_port_is_refused_with_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(DemoError, match="--port"):
            await start_slack("127.0.0.1", taken.getsockname()[1])


def test_the_command_line_has_demo() -> None:
    args = build_parser().parse_args(["demo", "--port", "0", "--tour", "--db", "x.db"])
    assert (args.handler, args.port, args.tour, args.db) == (run_demo, 0, True, Path("x.db"))
    assert args.host == "127.0.0.1"  # loopback unless asked
