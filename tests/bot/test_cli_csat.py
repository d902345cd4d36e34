"""`baton csat`: the satisfaction report from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from handoff import csat
from handoff.conversation import Conversation
from handoff.store import open_database


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "baton.db"
    monkeypatch.setenv("BATON_DB", str(db))
    return db


def test_csat_prints_the_report_as_text_or_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = open_database(env)
    now = datetime.now(UTC)
    thread = Conversation("C1", "1.0", ("U1",))
    csat.remember(db, csat.bot_answer(thread, "2.0", "reset-password", now))
    csat.vote(db, "C1", "2.0", "U1", "+1", True, now)
    db.close()
    assert main(["csat", "--days", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bot"] == {"up": 1, "down": 0, "total": 1, "csat": 100.0}
    assert main(["csat"]) == 0
    assert "Baton's answers: 100% (1 of 1)" in capsys.readouterr().out


def test_csat_refuses_a_bad_number_of_days(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["csat", "--days", "zero"])
    assert "not a number of days" in capsys.readouterr().err


def test_csat_takes_the_same_days_as_the_slash_command(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["csat", "--days", "365", "--json"]) == 0
    capsys.readouterr()
    for days in ("366", "3650", "²"):
        with pytest.raises(SystemExit):
            main(["csat", "--days", days])
        assert "not a number of days from 1 to 365" in capsys.readouterr().err
