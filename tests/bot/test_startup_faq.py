"""Which FAQ Baton answers from after a start: `BATON_FAQ`, else the sample until you import your own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from models.kb import load_file, sample_path

pytestmark = pytest.mark.model

OWN = """\
entries:
  - id: reset-password
    question: How do I reset my Acme password?
    alternates: [forgot my Acme password, Acme login reset]
    answer: Ask the Acme helpdesk.
"""
OTHER = """\
entries:
  - id: opening-hours
    question: When is the shop open?
    alternates: [opening hours, are you open on sunday]
    answer: Every day from 9 to 5.
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BATON_DB", str(tmp_path / "baton.db"))
    for name in ("BATON_FAQ", "BATON_MODEL", "BATON_SENTIMENT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def listed(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    assert main(["faq", "list", "--json"]) == 0
    return {e["id"]: e["answer"] for e in json.loads(capsys.readouterr().out)}


def test_your_own_faq_replaces_the_sample_and_is_never_overwritten_by_it(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "how do I reset my password", "--json"]) == 0  # the sample, synced at start
    assert len(listed(capsys)) == len(load_file(sample_path()))
    (env / "own.yaml").write_text(OWN)
    assert main(["faq", "import", str(env / "own.yaml")]) == 0
    capsys.readouterr()
    assert main(["ask", "how do I connect to xero", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decision"] != "answer" and report["entry"] == "reset-password"  # no xero-sync
    assert listed(capsys) == {"reset-password": "Ask the Acme helpdesk."}


def test_pointing_baton_faq_at_another_file_removes_the_old_files_entries(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (env / "own.yaml").write_text(OWN)
    (env / "other.yaml").write_text(OTHER)
    monkeypatch.setenv("BATON_FAQ", str(env / "own.yaml"))
    assert main(["ask", "hello", "--json"]) == 0
    assert set(listed(capsys)) == {"reset-password"}
    monkeypatch.setenv("BATON_FAQ", str(env / "other.yaml"))
    assert main(["ask", "hello", "--json"]) == 0
    assert set(listed(capsys)) == {"opening-hours"}
