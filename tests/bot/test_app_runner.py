"""`baton serve` and `baton socket`: configuration checked first, then the server runs until stopped."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from bot import cli, runner
from bot.app import SetupError
from bot.localslack import LocalSlack
from bot.settings import Settings
from models.sentiment import default_head_path
from tests.bot.conftest import world

ENVIRONMENT = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "BATON_AGENT_CHANNEL")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_for(slack: LocalSlack, db_path: Path, agent_channel: str = "C_AGENTS") -> Settings:
    return Settings(
        db_path=db_path,
        bot_token=slack.bot_token,
        signing_secret=slack.signing_secret,
        api_url=slack.api_url,
        agent_channel=agent_channel,
    )


@pytest.mark.parametrize("command", ["serve", "socket"])
def test_missing_settings_are_named_and_exit_non_zero(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert cli.main([command]) == 2
    error = capsys.readouterr().err
    secret = "SLACK_SIGNING_SECRET" if command == "serve" else "SLACK_APP_TOKEN"
    assert all(name in error for name in ("SLACK_BOT_TOKEN", "BATON_AGENT_CHANNEL", secret))


async def test_a_shared_agent_channel_is_refused_before_the_models_load(tmp_path: Path) -> None:
    async with LocalSlack(world()) as slack:
        started = time.perf_counter()
        with pytest.raises(
            SetupError, match=r"C_SUPPORT \(#acme-support\) is shared with another organisation"
        ):
            await runner.serve(
                settings_for(slack, tmp_path / "baton.db", "C_SUPPORT"), "127.0.0.1", free_port()
            )
        assert time.perf_counter() - started < 2 and not (tmp_path / "baton.db").exists()


async def test_a_wrong_api_url_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(
        db_path=tmp_path / "b.db", bot_token="xoxb-1", api_url=f"http://127.0.0.1:{free_port()}/api/"
    )
    with pytest.raises(SetupError, match="cannot reach Slack's Web API"):
        await runner.serve(settings, "127.0.0.1", free_port())


@pytest.mark.skipif(not default_head_path().exists(), reason="the sentiment head is not trained yet")
async def test_baton_serve_answers_and_reports_health_until_stopped(db_path: Path) -> None:
    async with LocalSlack(world()) as slack:
        port, stop = free_port(), asyncio.Event()
        server = asyncio.create_task(runner.serve(settings_for(slack, db_path), "127.0.0.1", port, stop))
        slack.app_url = f"http://127.0.0.1:{port}/slack/events"
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        health = await resp.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        assert health["status"] == "ok"
        ts = await slack.post("U_CUST1", "C_SUPPORT", "how do I reset my password?")
        (reply,) = await slack.wait_for(lambda: slack.messages("C_SUPPORT", ts)[1:], timeout=10)
        stop.set()
        await server
    assert "Forgot password?" in reply["text"]
