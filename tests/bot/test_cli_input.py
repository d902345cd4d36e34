"""`baton` refuses bad files, flags and settings with one message naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import build_parser, main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh database and tuning cache for each test."""
    db = tmp_path / "baton.db"
    monkeypatch.setenv("BATON_DB", str(db))
    monkeypatch.setenv("BATON_TUNED_DIR", str(tmp_path / "tuned"))
    for name in ("BATON_FAQ", "BATON_MODEL", "BATON_SENTIMENT_MODEL", "PORT"):
        monkeypatch.delenv(name, raising=False)
    return db


KB = "text,label\nhow do I pay,billing\nwhat cards do you take,billing\nreset my password,password\n"
TEST = "text,label\ndo you take visa,billing\ntell me a joke,oos\n"


def files(tmp_path: Path, **contents: str | bytes) -> dict[str, str]:
    """Write each file; its path by name."""
    paths = {}
    for name, content in contents.items():
        path = tmp_path / name.replace("_", ".")
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths[name] = str(path)
    return paths


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What `baton` says on standard error when it refuses with exit code 2."""
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What argparse says when it refuses a flag (exit code 2)."""
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_eval_names_the_line_of_a_file_that_is_not_utf8(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = files(tmp_path, kb_csv="text,label\ncafé,billing\n".encode("latin-1"), test_csv=TEST)
    err = error_of(capsys, "eval", "--kb", f["kb_csv"], "--test", f["test_csv"], "--no-tune")
    assert f"baton: {f['kb_csv']}, line 2: cannot read the file: byte 0xe9 is not UTF-8" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("which", ["kb_csv", "test_csv"])
def test_eval_refuses_a_file_with_only_a_header(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    f = files(tmp_path, kb_csv=KB, test_csv=TEST) | files(tmp_path, **{which: "text,label\n"})
    err = error_of(capsys, "eval", "--kb", f["kb_csv"], "--test", f["test_csv"], "--no-tune", "--json")
    assert f"{f[which]}: no rows after the header" in err
    assert capsys.readouterr().out == ""


def test_eval_refuses_a_tuned_folder_that_is_a_file_before_any_work(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    f = files(tmp_path, kb_csv=KB, test_csv=TEST)
    monkeypatch.setenv("BATON_TUNED_DIR", f["kb_csv"])
    err = error_of(capsys, "eval", "--kb", f["kb_csv"], "--test", f["test_csv"])
    assert f"BATON_TUNED_DIR={f['kb_csv']} is not a directory" in err


@pytest.mark.parametrize("seed", ["-5", "4294967296", "x"])
def test_eval_refuses_a_seed_numpy_cannot_take(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: str
) -> None:
    err = usage_error(capsys, "eval", "--kb", "kb.csv", "--test", "t.csv", "--seed", seed)
    assert f"argument --seed: '{seed}' is not a seed from 0 to 4294967295" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "99999"], "'99999' is not a port from 1 to 65535"),
        (["serve", "--port", "-1"], "'-1' is not a port from 1 to 65535"),
        (["serve", "--port", "0"], "'0' is not a port from 1 to 65535"),
        (["demo", "--port", "99999"], "'99999' is not a port from 0 to 65535"),
        (["demo", "--port", "²"], "'²' is not a port from 0 to 65535"),
    ],
)
def test_a_port_out_of_range_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in usage_error(capsys, *argv)


def test_the_demo_takes_port_0_for_any_free_port() -> None:
    assert build_parser().parse_args(["demo", "--port", "0"]).port == 0


def test_a_port_setting_of_odd_digits_is_a_setting_problem(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "²")
    assert "PORT=² must be a number from 1 to 65535" in error_of(capsys, "faq", "list")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "a_csv",
            "billing,Pay by card.\npassword,Click forgot.\n",
            "line 1: the header must be 'label,answer'",
        ),
        ("a_csv", "label,answer\nbilling,Pay by card.\npasword\n", "line 3: expected a label and an answer"),
        ("a_csv", "label,answer\nbiling,Pay by card.\n", "line 2: no question in"),
        ("a_csv", "label,answer\nbilling,caf\xe9\n".encode("latin-1"), "line 2: cannot read the file"),
        ("a_yaml", "billing: Pay by card.\npassword: [unclosed\n", "not valid YAML"),
        ("a_yaml", "billing: Pay by card.\npassword:\n", "line 2: 'answer' is missing or empty"),
    ],
)
def test_a_malformed_answers_file_is_refused_and_nothing_imported(
    env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes,
    message: str,
) -> None:
    f = files(tmp_path, kb_csv=KB, **{name: content})
    err = error_of(capsys, "faq", "import", f["kb_csv"], "--answers", f[name])
    assert f"baton: {f[name]}" in err and message in err and "Traceback" not in err
    assert main(["faq", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_answers_file_with_a_yaml_faq_is_refused(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = "entries:\n  - id: billing\n    question: How do I pay?\n    answer: By card.\n"
    f = files(tmp_path, faq_yaml=faq, a_csv="label,answer\nbilling,Pay by card.\n")
    assert "an answers file goes with a CSV" in error_of(
        capsys, "faq", "import", f["faq_yaml"], "--answers", f["a_csv"]
    )


def test_eval_sentiment_names_the_line_of_an_unclosed_quote(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = files(tmp_path, s_csv='text,label\n"unclosed,negative\nfine,positive\n')
    err = error_of(capsys, "eval-sentiment", "--test", f["s_csv"], "--backend", "vader")
    assert f"{f['s_csv']}, line 2: a quote opened on this line is never closed" in err


@pytest.mark.model
def test_files_with_a_byte_order_mark_are_evaluated_and_imported(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bom = b"\xef\xbb\xbf"
    f = files(tmp_path, kb_csv=bom + KB.encode(), test_csv=bom + TEST.encode())
    f |= files(tmp_path, a_csv=bom + b"label,answer\nbilling,Pay by card.\npassword,Click forgot.\n")
    assert main(["eval", "--kb", f["kb_csv"], "--test", f["test_csv"], "--no-tune", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2
    assert main(["faq", "import", f["kb_csv"], "--answers", f["a_csv"]]) == 0
    assert "2 added" in capsys.readouterr().out


@pytest.mark.model
def test_an_export_with_yaml_line_break_characters_imports_back_unchanged(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = 'entries:\n  - id: nel\n    question: "one\\Ntwo"\n    answer: "a\\Lb\\Pc"\n'
    f = files(tmp_path, faq_yaml=faq)
    assert main(["faq", "import", f["faq_yaml"]]) == 0
    out = tmp_path / "export.yaml"
    assert main(["faq", "export", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["faq", "import", str(out)]) == 0
    assert "0 added, 0 updated" in capsys.readouterr().out
    assert main(["faq", "list", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert (entry["question"], entry["answer"]) == ("one\x85two", "a\u2028b\u2029c")
