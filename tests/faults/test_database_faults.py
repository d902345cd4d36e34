"""The database file fails Baton: locked by another program, read-only, in a read-only directory.

Baton says so (an ERROR in its log, `database` and `status: degraded` on /healthz, a warning in
front of every `/baton` answer) and keeps answering from an in-memory copy of the database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.brain import Brain
from bot.services import Services
from handoff.knowledge import KnowledgeBase
from handoff.store import open_database
from tests.bot.conftest import Harness, texts
from tests.faults.test_slack_faults import REFUND, card_for

QUESTION = "how do I reset my password?"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another program holds the database's write lock (as `sqlite3 baton.db` with BEGIN EXCLUSIVE)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """chmod 0444 (0555 for a directory); as root, whom permissions do not stop, also chattr +i."""
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    immutable = os.geteuid() == 0
    try:
        if immutable:
            done = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], check=False)
            if not done or done.returncode:
                pytest.skip("running as root without chattr: nothing can make a file read-only")
        assert not os.access(path, os.W_OK)
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        path.chmod(mode)


async def health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as resp:
        return dict(await resp.json())


async def still_serving(harness: Harness, problem: str) -> None:
    """Baton answers (once, even when Slack sends the event again), hands off, and says what is wrong."""
    slack = harness.slack
    ts = await slack.post("U_CUST1", "C_SUPPORT", QUESTION)
    await harness.settle()
    (reply,) = harness.replies("C_SUPPORT", ts)
    assert "Forgot password?" in reply["text"]
    (event,) = [e for e in slack.events("message") if e["event"]["ts"] == ts]
    await harness.send_raw(event, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    handed = await slack.post("U_CUST2", "C_SUPPORT", REFUND)
    await card_for(harness, handed)
    await harness.settle()
    assert len(harness.replies("C_SUPPORT", ts)) == 1
    status = await health(harness.url)
    assert status["status"] == "degraded" and problem in status["database"]
    await slack.slash_command("U_ADMIN", "C_AGENTS", "/baton", "triggers")
    said = texts(slack.ephemerals("U_ADMIN"))[-1]
    assert said.startswith(f":warning: The database {harness.db_path} {problem}")
    assert "in-memory copy" in said and "*Trigger settings*" in said


async def test_a_database_locked_while_baton_runs(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert (await health(harness.url))["database"] == "ok"
    with locked(harness.db_path):
        await still_serving(harness, "is locked by another program")
    (error,) = [r for r in caplog.records if r.name == "baton.store"]
    assert error.levelno == logging.ERROR and "is locked by another program" in error.getMessage()
    await still_serving(harness, "is locked by another program")  # once moved, it stays in memory


async def test_a_database_locked_when_baton_starts(harness: Harness) -> None:
    with locked(harness.db_path):
        await harness.restart()
        await still_serving(harness, "is locked by another program")


async def test_a_read_only_database_file(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    await harness.down()
    with read_only(harness.db_path):
        await harness.up()
        await still_serving(harness, "is read-only")
    assert any("is read-only" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


class Serving(Harness):
    """The harness with the database opened as `baton serve` opens it (`serving=True`)."""

    def make_services(self) -> Services:
        encoder, scorer, detector = self.parts
        db = open_database(self.db_path, serving=True)
        knowledge = KnowledgeBase(db, encoder)
        return Services(self.settings, db, encoder, knowledge, Brain(encoder, knowledge, scorer, detector))


async def test_a_database_in_a_read_only_directory(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.down()
    folder = tmp_path / "read-only"
    folder.mkdir()
    moved = Serving(harness.slack, Path(shutil.copy(harness.db_path, folder)), harness.parts)
    with read_only(folder):
        await moved.up()
        try:
            await still_serving(moved, "cannot be opened or written")
        finally:
            await moved.down()
    (error,) = [r for r in caplog.records if r.name == "baton.store"]
    assert error.levelno == logging.ERROR and "cannot be opened or written" in error.getMessage()
