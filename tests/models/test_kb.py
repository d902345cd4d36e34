"""Knowledge-base files: YAML and CSV parsing, errors that name the line, round trips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.kb import (
    Entry,
    KbError,
    dump_yaml,
    has_answer,
    load_file,
    make_entry,
    parse_csv,
    parse_yaml,
    read_labelled,
    read_text,
    sample_path,
)

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
    entries = parse_yaml("- id: a\n  question: q?\n  answer: sure\n")
    assert [e.id for e in entries] == ["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("    answer: Starter, Growth and Scale.\n", ""),
            "line 7: 'answer' is missing",
        ),
        (
            GOOD.replace("id: plans", "id: reset-password"),
            "line 7: the id 'reset-password' is used twice (first on line 2)",
        ),
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
        ("text,label\n", "no rows after the header"),
        ("text,label\nok,a\nfine,bad label\n", "line 3: label 'bad label' must be letters"),
        ("text,label\nok,a\n" + "x" * 4001 + ",a\n", "line 3: 'text' is longer than 4000"),
        (
            'text,label\nok,a\n"never closed,b\nthree,c\nfour,d\n',
            "line 3: a quote opened on this line is never closed",
        ),
        ('text,label\n"a"b,c\n', "line 2: not valid CSV"),
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


@pytest.mark.parametrize(
    ("line", "read_as"),
    [
        ("    answer: yes", "reads yes as a yes/no"),
        ("    answer: 9:30", "reads 9:30 as a number"),  # YAML 1.1 base 60: 570
        ("    answer: 1.5", "reads 1.5 as a number"),
        ("    answer: 2024-01-01", "reads 2024-01-01 as a date"),
        ("    answer: null", "reads null as nothing"),
        ("    answer: [a list]", "'answer' must be text"),
        ("    answer: !custom x", "not a value tagged !custom"),
        ("    alternates: [fine, no]", "'alternates' must be text, but YAML reads no as a yes/no"),
        ("    tags: [on]", "'tags' must be text, but YAML reads on as a yes/no"),
    ],
)
def test_yaml_values_that_are_not_text_are_refused_with_their_line(line: str, read_as: str) -> None:
    text = f"entries:\n  - id: a\n    question: q\n{line}\n" + ("" if "answer" in line else "    answer: x\n")
    with pytest.raises(KbError, match=f"faq.yaml, line 4: .*{re.escape(read_as)}") as error:
        parse_yaml(text, source="faq.yaml")
    if "reads" in read_as:
        assert "in quotes" in str(error.value)


def test_quoted_values_and_plain_numeric_ids_are_kept_as_written() -> None:
    text = (
        '- id: 42\n  question: "yes"\n  answer: "9:30"\n  tags: [2024, \'on\']\n'
        "- id: 007\n  question: q\n  answer: a\n"
    )
    first, second = parse_yaml(text)
    assert (first.id, first.question, first.answer, first.tags) == ("42", "yes", "9:30", ("2024", "on"))
    assert second.id == "007"
    with pytest.raises(KbError, match="line 1: 'id' must be text, but YAML reads true"):
        parse_yaml("- id: true\n  question: q\n  answer: a\n")


def test_an_empty_value_is_reported_missing() -> None:
    with pytest.raises(KbError, match="line 2: 'answer' is missing or empty"):
        parse_yaml("entries:\n  - id: a\n    question: q\n    answer:\n")


def test_a_field_given_twice_in_one_entry_is_refused_with_both_lines() -> None:
    text = "entries:\n  - id: a\n    question: Q1\n    answer: first\n    answer: second\n"
    with pytest.raises(
        KbError, match=r"faq.yaml, line 5: 'answer' is given twice in one entry \(first on line 4\)"
    ):
        parse_yaml(text, source="faq.yaml")


def test_merged_fields_still_count_and_the_entrys_own_win() -> None:
    text = (
        "base: &b {answer: shared, tags: [t]}\n"
        "entries:\n  - <<: *b\n    id: a\n    question: q\n    answer: own\n"
    )
    (entry,) = parse_yaml(text)
    assert (entry.answer, entry.tags) == ("own", ("t",))


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
def test_export_keeps_yaml_line_break_characters(char: str) -> None:
    entry = make_entry(
        {"id": "a", "question": f"one{char}two", "answer": f"x{char}y", "alternates": [f"p{char}q"]}
    )
    assert parse_yaml(dump_yaml([entry])) == [entry]


def test_a_byte_order_mark_is_dropped_and_crlf_read(tmp_path: Path) -> None:
    kb = tmp_path / "kb.csv"
    kb.write_bytes(b"\xef\xbb\xbftext,label\r\nhow do I pay,billing\r\n")
    answers = tmp_path / "answers.csv"
    answers.write_bytes(b"\xef\xbb\xbflabel,answer\r\nbilling,By card.\r\n")
    (entry,) = load_file(kb, answers)
    assert (entry.id, entry.question, entry.answer) == ("billing", "how do I pay", "By card.")
    assert read_labelled(read_text(kb)) == [("how do I pay", "billing")]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    latin1 = tmp_path / "kb.csv"
    latin1.write_bytes("text,label\nok,a\ncafé,b\n".encode("latin-1"))
    with pytest.raises(KbError, match=r"kb.csv, line 3: cannot read the file: byte 0xe9 is not UTF-8"):
        load_file(latin1)


QUESTIONS = "text,label\nhow do I pay,billing\nwhat cards,billing\nreset pw,password\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "a.csv",
            "billing,Pay by card.\npassword,Click forgot.\n",
            "line 1: the header must be 'label,answer'",
        ),
        ("a.csv", "label,answer\nbilling,Pay by card.\npassword\n", "line 3: expected a label and an answer"),
        ("a.csv", "label,answer\nbilling,\n", "line 2: expected a label and an answer"),
        (
            "a.csv",
            "label,answer\nbilling,x\nbiling,y\n",
            "kb.csv has the label 'biling' (did you mean 'billing'?)",
        ),
        ("a.csv", "label,answer\nbilling,x\nbilling,y\n", "line 3: the label 'billing' has two answers"),
        ("a.csv", "label,answer\n", "no rows after the header"),
        ("a.yaml", "billing: Pay by card.\npassword:\n", "line 2: 'answer' is missing or empty"),
        ("a.yaml", "billing: yes\n", "line 1: 'answer' must be text, but YAML reads yes"),
        ("a.yaml", "billing: 9:30\n", "line 1: 'answer' must be text, but YAML reads 9:30 as a number"),
        ("a.yaml", "billing: x\nbilling: y\n", "line 2: the label 'billing' has two answers"),
        ("a.yaml", "billing: x\npassword: [unclosed\n", "a.yaml: not valid YAML"),
        ("a.yaml", "- a\n- b\n", "answers must map each label to its answer"),
        ("a.yaml", "", "answers must map each label to its answer"),
    ],
)
def test_a_malformed_answers_file_is_refused(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / "kb.csv").write_text(QUESTIONS)
    (tmp_path / name).write_text(content)
    with pytest.raises(KbError, match=re.escape(message)):
        load_file(tmp_path / "kb.csv", tmp_path / name)


def test_answers_in_yaml_are_read_as_written(tmp_path: Path) -> None:
    (tmp_path / "kb.csv").write_text(QUESTIONS)
    (tmp_path / "a.yaml").write_text('billing: "yes"\npassword: |\n  Click *Forgot*.\n')
    answers = {e.id: e.answer for e in load_file(tmp_path / "kb.csv", tmp_path / "a.yaml")}
    assert answers == {"billing": "yes", "password": "Click *Forgot*."}


def test_an_answers_file_with_a_yaml_faq_is_refused(tmp_path: Path) -> None:
    (tmp_path / "faq.yaml").write_text(GOOD)
    (tmp_path / "a.csv").write_text("label,answer\nplans,x\n")
    with pytest.raises(KbError, match=r"a\.csv: an answers file goes with a CSV of labelled questions"):
        load_file(tmp_path / "faq.yaml", tmp_path / "a.csv")


def test_an_entry_imported_without_an_answer_says_so() -> None:
    (entry,) = parse_csv("text,label\nhow do I pay,billing\npay by card,billing\n", {}, "kb.csv")
    assert not has_answer(entry) and "no answer written yet" in entry.answer
    assert has_answer(Entry("billing", "how do I pay", "By card."))
