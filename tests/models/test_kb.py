"""Knowledge-base files: YAML and CSV parsing, errors that name the line, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.kb import KbError, dump_yaml, load_file, parse_csv, parse_yaml, sample_path

GOOD = """\
entries:
  - id: reset-password
    question: How do I reset my password?
    alternates: [I forgot my password, can't log in]
    answer: Use *Settings → Security*.
    tags: [account]
  - id: plans
    question: What plans do you have?
    answer: Starter, Growth and Scale.
"""


def test_yaml_entries_keep_every_field() -> None:
    first, second = parse_yaml(GOOD)
    assert first.id == "reset-password"
    assert first.examples == ("How do I reset my password?", "I forgot my password", "can't log in")
    assert first.tags == ("account",)
    assert second.alternates == ()


def test_a_bare_list_is_accepted_too() -> None:
    entries = parse_yaml("- id: a\n  question: q?\n  answer: yes\n")
    assert [e.id for e in entries] == ["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("    answer: Starter, Growth and Scale.\n", ""),
            "line 7: 'answer' is missing",
        ),
        (GOOD.replace("id: plans", "id: reset-password"), "'reset-password' is used twice"),
        (GOOD.replace("tags: [account]", "tagz: [account]"), "line 2: unknown field(s) tagz"),
        (GOOD.replace("id: plans", "id: 'has spaces'"), "line 7: id 'has spaces'"),
        ("entries: [", "not valid YAML"),
        ("just a string", "expected a list of entries"),
        (
            GOOD.replace("alternates: [I forgot my password, can't log in]", "alternates: oops"),
            "'alternates' must be a list",
        ),
    ],
)
def test_malformed_yaml_names_the_problem_and_line(text: str, message: str) -> None:
    with pytest.raises(KbError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_yaml(text, source="faq.yaml")


def test_csv_groups_questions_by_label_with_answers() -> None:
    entries = parse_csv("text,label\nhow much,pricing\nprice?,pricing\nhi,greet\n", {"pricing": "From $29."})
    by_id = {e.id: e for e in entries}
    assert by_id["pricing"].examples == ("how much", "price?")
    assert by_id["pricing"].answer == "From $29."
    assert "no answer written yet" in by_id["greet"].answer


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("question,intent\na,b\n", "line 1: the header"),
        ("text,label\nok,a\n,b\n", "line 3: expected a text"),
    ],
)
def test_malformed_csv_names_the_line(text: str, message: str) -> None:
    with pytest.raises(KbError, match=message):
        parse_csv(text, {})


def test_export_reads_back_unchanged() -> None:
    entries = load_file(sample_path())
    assert parse_yaml(dump_yaml(entries)) == entries


def test_sample_faq_is_a_realistic_knowledge_base() -> None:
    entries = load_file(sample_path())
    assert len(entries) >= 40
    assert all(len(e.alternates) >= 3 and e.answer for e in entries)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KbError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(KbError, match="cannot read"):
        load_file(binary)
