"""The `baton` command line as a newcomer uses it: ask, eval, faq import/list/export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from models.kb import load_file, sample_path

pytestmark = pytest.mark.model


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh database for each test."""
    db = tmp_path / "baton.db"
    monkeypatch.setenv("BATON_DB", str(db))
    for name in ("BATON_FAQ", "BATON_MODEL", "BATON_SENTIMENT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return db


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_ask_answers_a_sample_question_with_its_entry(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "ask", "I forgot my password, how do I reset it?", "--json")
    assert report["decision"] == "answer"
    assert report["entry"] == "reset-password"
    assert report["confidence"] >= 0.5 and report["runner_up"] != "reset-password"
    assert "Reset password" in report["answer"] or "reset" in report["answer"].lower()
    assert report["turn_ms"] > 0


def test_ask_hands_off_an_angry_refund_demand_with_reasons(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "This is the THIRD time I'm asking!!! I want a refund for last month's charge NOW."
    report = run_json(capsys, "ask", text, "--json")
    assert report["decision"] == "handoff"
    assert any("refund" in reason for reason in report["reasons"])


def test_ask_in_text_mode_prints_every_check(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "what's the capital of peru?"]) == 0
    out = capsys.readouterr().out
    for label in ("decision:", "entry:", "runner-up:", "sentiment:", "human ask:", "time:"):
        assert label in out
    assert "ANSWER" not in out.splitlines()[0]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "🙂🙂🙂", "x" * 40_000, "```\nSELECT * FROM invoices;\n```", "¿Cómo cambio mi contraseña?"],
)
def test_ask_survives_odd_input(env: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    report = run_json(capsys, "ask", text, "--json")
    assert report["decision"] in {"answer", "clarify", "handoff"}
    assert 0.0 <= report["confidence"] <= 1.0


def test_faq_import_list_and_export_round_trip(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["faq", "import", str(sample_path())]) == 0
    assert f"{len(load_file(sample_path()))} added" in capsys.readouterr().out
    listed = run_json(capsys, "faq", "list", "--json")
    assert len(listed) == len(load_file(sample_path()))
    out = tmp_path / "export.yaml"
    assert main(["faq", "export", "--out", str(out)]) == 0
    assert load_file(out) == sorted(load_file(sample_path()), key=lambda e: e.id)


def test_importing_a_malformed_file_names_the_line_and_changes_nothing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - id: a\n    question: q\n    answer: x\n  - id: b\n    question: q2\n")
    assert main(["faq", "import", str(bad)]) == 2
    assert "line 5: 'answer' is missing" in capsys.readouterr().err
    assert run_json(capsys, "faq", "list", "--json") == []


def test_csv_import_with_an_answers_file(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "q.csv"
    questions.write_text("text,label\nhow much is it,pricing\nwhat does it cost,pricing\nhello,greet\n")
    answers = tmp_path / "a.csv"
    answers.write_text("label,answer\npricing,From $29 a month.\n")
    assert main(["faq", "import", str(questions), "--answers", str(answers)]) == 0
    capsys.readouterr()
    listed = {e["id"]: e for e in run_json(capsys, "faq", "list", "--json")}
    assert listed["pricing"]["answer"] == "From $29 a month."
    assert listed["pricing"]["alternates"] == ["what does it cost"]


def test_eval_reports_the_documented_keys(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "kb.csv"
    kb.write_text(
        "text,label\nreset my password,password\nforgot my password,password\nlost password help,password\n"
        "download invoice,invoice\nwhere are my invoices,invoice\ninvoice pdf,invoice\n"
        "is the site down,status\nservice outage,status\nstatus page,status\n"
        "add a teammate,invite\ninvite a colleague,invite\nnew user seat,invite\n"
        "change my card,card\nupdate credit card,card\nnew payment method,card\n"
    )
    test = tmp_path / "test.csv"
    test.write_text(
        "text,label\nI can't remember my password,password\ngive me last month's invoice,invoice\n"
        "who won the football match yesterday,oos\nbest pizza recipe,oos\n"
    )
    result = run_json(capsys, "eval", "--kb", str(kb), "--test", str(test), "--json")
    for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "accuracy", "mcc", "threshold", "n"):
        assert key in result
    assert result["n"] == 4 and result["threshold"] == 0.5
    assert result["in_scope_accuracy"] == 1.0 and result["oos_recall"] == 1.0


def test_eval_refuses_an_out_of_range_threshold(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "x.csv"
    f.write_text("text,label\na,b\n")
    assert main(["eval", "--kb", str(f), "--test", str(f), "--threshold", "1.5"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_a_missing_faq_file_is_named(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BATON_FAQ", "/nonexistent/faq.yaml")
    assert main(["ask", "hi"]) == 2
    assert "BATON_FAQ=/nonexistent/faq.yaml is not an existing file" in capsys.readouterr().err


def test_eval_sentiment_reports_negative_f1_for_both_backends(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = tmp_path / "s.csv"
    test.write_text(
        "text,label\nthis is useless and I am furious,negative\nthank you so much that was great,positive\n"
        "where do I find my invoices,neutral\nworst support ever still waiting,negative\n"
    )
    for backend in ("default", "vader"):
        result = run_json(capsys, "eval-sentiment", "--test", str(test), "--backend", backend, "--json")
        assert result["n"] == 4
        for key in ("negative_precision", "negative_recall", "negative_f1", "accuracy"):
            assert 0.0 <= result[key] <= 1.0
    assert main(["eval-sentiment", "--test", str(tmp_path / "missing.csv")]) == 2
