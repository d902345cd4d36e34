"""Trigger settings: admins' changes persist, are audited, and bad input changes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from handoff.tuning import (
    DEFAULT_KEYWORDS,
    Change,
    SettingError,
    TriggerSettings,
    add_keyword,
    audit_log,
    change_setting,
    load_settings,
    migrations,
    remove_keyword,
)

NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def open_db(path: Path) -> Database:
    """A database file with the tuning tables, as `open_database` would leave it."""
    db = Database(str(path))
    migrations.apply(db)
    return db


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "baton.db"


@pytest.fixture
def db(path: Path) -> Database:
    return open_db(path)


def snapshot(db: Database) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Everything the tuning tables hold."""
    return list(db.table("tuning_overrides").rows), list(db.table("tuning_audit").rows)


def test_an_empty_database_gives_the_code_defaults(db: Database) -> None:
    assert load_settings(db) == TriggerSettings()
    assert audit_log(db) == []


def test_a_change_persists_after_reopening(db: Database, path: Path) -> None:
    change_setting(db, "confidence", "0.55", "U_ALICE", NOON)
    db.close()
    assert load_settings(open_db(path)).confidence == 0.55


def test_a_change_is_audited_with_who_when_old_and_new(db: Database, path: Path) -> None:
    change = change_setting(db, "confidence", " 0.55 ", "U_ALICE", NOON)
    assert change == Change("confidence", "0.5", "0.55", "U_ALICE", NOON)
    assert change.describe() == "confidence: 0.5 → 0.55"
    db.close()
    assert audit_log(open_db(path)) == [change]


@pytest.mark.parametrize(
    ("key", "raw", "field", "value"),
    [
        ("sentiment", "-0.5", "sentiment", -0.5),
        ("sentiment", "−0.25", "sentiment", -0.25),  # the minus sign Baton displays
        ("max-fallbacks", "3", "max_fallbacks", 3),
        ("max_fallbacks", "0", "max_fallbacks", 0),
        ("ambiguity", "0.1", "ambiguity_margin", 0.1),
        ("Human-Request", "0.7", "human_request", 0.7),
        ("plausible", "0.3", "plausible", 0.3),
    ],
)
def test_each_setting_can_be_changed(db: Database, key: str, raw: str, field: str, value: float) -> None:
    change_setting(db, key, raw, "U_ALICE", NOON)
    assert getattr(load_settings(db), field) == value


CONFIDENCE_RULE = "confidence must be a number between 0 and 1, like 0.55."
FALLBACKS_RULE = "max-fallbacks must be a whole number between 0 and 10, like 2."


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("confidence", "high", "I couldn't read 'high': " + CONFIDENCE_RULE),
        ("confidence", "1.5", "1.5 won't do: " + CONFIDENCE_RULE),
        ("confidence", "-0.1", "-0.1 won't do: " + CONFIDENCE_RULE),
        ("confidence", "nan", "nan won't do: " + CONFIDENCE_RULE),
        ("confidence", "", "I couldn't read '': " + CONFIDENCE_RULE),
        ("sentiment", "-2", "-2 won't do: sentiment must be a number between -1 and 1, like -0.4."),
        ("max-fallbacks", "2.5", "I couldn't read '2.5': " + FALLBACKS_RULE),
        ("max-fallbacks", "11", "11 won't do: " + FALLBACKS_RULE),
        (
            "human-request",
            "inf",
            "inf won't do: human-request must be a number between 0 and 1, like 0.5.",
        ),
    ],
)
def test_a_bad_value_explains_itself_and_changes_nothing(
    db: Database, key: str, raw: str, message: str
) -> None:
    change_setting(db, "confidence", "0.6", "U_ALICE", NOON)
    before = snapshot(db)
    with pytest.raises(SettingError) as error:
        change_setting(db, key, raw, "U_BOB", NOON)
    assert str(error.value) == message
    assert snapshot(db) == before


def test_an_unknown_setting_suggests_the_closest(db: Database) -> None:
    with pytest.raises(SettingError) as error:
        change_setting(db, "confidense", "0.5", "U_BOB", NOON)
    assert str(error.value) == (
        "There is no setting called 'confidense'. Did you mean 'confidence'? The settings are: "
        "confidence, ambiguity, plausible, sentiment, human-request, max-fallbacks."
    )
    assert snapshot(db) == ([], [])


def test_default_drops_the_override_and_is_audited(db: Database) -> None:
    change_setting(db, "max-fallbacks", "5", "U_ALICE", NOON)
    change = change_setting(db, "max-fallbacks", "Default", "U_BOB", NOON)
    assert change.describe() == "max-fallbacks: 5 → 2"
    assert load_settings(db).max_fallbacks == 2
    assert list(db.table("tuning_overrides").rows) == []


def test_setting_the_value_a_setting_already_has_changes_nothing_and_is_not_audited(db: Database) -> None:
    change_setting(db, "sentiment", "-0.5", "U_ALICE", NOON)
    with pytest.raises(SettingError, match=r"sentiment is already -0\.5, so nothing changed"):
        change_setting(db, "sentiment", "-0.50", "U_BOB", NOON)
    with pytest.raises(SettingError, match="already"):
        change_setting(db, "human-request", "default", "U_BOB", NOON)
    assert [c.who for c in audit_log(db)] == ["U_ALICE"]


def test_a_failed_write_leaves_the_setting_unchanged(db: Database) -> None:
    db.execute(  # the audit row cannot be written...
        "CREATE TRIGGER refuse BEFORE INSERT ON tuning_audit BEGIN SELECT RAISE(ABORT, 'full'); END"
    )
    with pytest.raises(sqlite3.DatabaseError, match="full"):
        change_setting(db, "confidence", "0.7", "U_ALICE", NOON)
    assert load_settings(db).confidence == 0.5  # ...so the override is rolled back too


def test_a_keyword_can_be_added_and_persists(db: Database, path: Path) -> None:
    change = add_keyword(db, "  wire   transfer ", "U_ALICE", NOON)
    assert change.describe() == "keyword added: 'wire transfer'"
    db.close()
    reopened = open_db(path)
    assert load_settings(reopened).keywords == (*DEFAULT_KEYWORDS, "wire transfer")
    assert audit_log(reopened) == [Change("keywords", None, "wire transfer", "U_ALICE", NOON)]


def test_unicode_and_regex_keywords_round_trip(db: Database) -> None:
    add_keyword(db, "🔥", "U_ALICE", NOON)
    add_keyword(db, "re:refund(s|ed)?", "U_ALICE", NOON)
    assert load_settings(db).keywords[-2:] == ("🔥", "re:refund(s|ed)?")


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        ("   ", "A keyword can't be empty: write a word or phrase, like chargeback."),
        ("REFUND", "'REFUND' is already a keyword, so nothing changed."),
        ("re:refund(", "'re:refund(' is not a valid pattern (missing ), unterminated subpattern"),
        ("/(/", "'/(/' is not a valid pattern (missing ), unterminated subpattern at position 0)"),
        ("re:", "'re:' has an empty pattern."),
        ("re:a{99999999999}", "'re:a{99999999999}' is not a valid pattern (the repetition number"),
        ("re:x*", "'re:x*' matches an empty message, so it would hand off every turn."),
        ("x" * 201, "That keyword is 201 characters long; keep it under 200, a word or"),
    ],
)
def test_a_bad_keyword_explains_itself_and_changes_nothing(db: Database, keyword: str, message: str) -> None:
    with pytest.raises(SettingError) as error:
        add_keyword(db, keyword, "U_BOB", NOON)
    assert str(error.value).startswith(message)
    assert snapshot(db) == ([], [])


def test_a_bad_pattern_says_how_to_write_one(db: Database) -> None:
    with pytest.raises(SettingError, match=r"after 're:' or between slashes, like re:refund\(s\|ed\)\?"):
        add_keyword(db, "re:(", "U_BOB", NOON)


def test_a_keyword_is_removed_whatever_its_case(db: Database) -> None:
    change = remove_keyword(db, "gdpr", "U_ALICE", NOON)
    assert change == Change("keywords", "GDPR", None, "U_ALICE", NOON)
    assert change.describe() == "keyword removed: 'GDPR'"
    assert "GDPR" not in load_settings(db).keywords
    assert len(load_settings(db).keywords) == len(DEFAULT_KEYWORDS) - 1


def test_removing_a_missing_keyword_suggests_similar_ones(db: Database) -> None:
    with pytest.raises(SettingError) as error:
        remove_keyword(db, "refnd", "U_BOB", NOON)
    assert str(error.value) == (
        "'refnd' is not a keyword, so nothing changed. Did you mean 'refund' or 'refunds'?"
    )
    assert snapshot(db) == ([], [])


def test_removing_a_missing_keyword_lists_them_when_nothing_is_close(db: Database) -> None:
    for keyword in DEFAULT_KEYWORDS[1:]:
        remove_keyword(db, keyword, "U_ALICE", NOON)
    with pytest.raises(SettingError) as error:
        remove_keyword(db, "zebra", "U_BOB", NOON)
    assert str(error.value) == "'zebra' is not a keyword, so nothing changed. The keywords are: 'refund'."


def test_removing_the_last_keyword_leaves_none(db: Database) -> None:
    for keyword in DEFAULT_KEYWORDS:
        remove_keyword(db, keyword, "U_ALICE", NOON)
    assert load_settings(db).keywords == ()
    with pytest.raises(SettingError, match="There are no keywords at the moment"):
        remove_keyword(db, "refund", "U_BOB", NOON)


def test_the_audit_log_is_newest_first_and_limited(db: Database) -> None:
    steps: list[Callable[[datetime], Change]] = [
        lambda at: change_setting(db, "confidence", "0.6", "U_ALICE", at),
        lambda at: add_keyword(db, "invoice dispute", "U_BOB", at),
        lambda at: change_setting(db, "sentiment", "-0.3", "U_CAROL", at),
    ]
    changes = [step(NOON + timedelta(minutes=minute)) for minute, step in enumerate(steps)]
    assert audit_log(db, limit=2) == changes[::-1][:2]
    assert audit_log(db, limit=0) == []
    assert [change.who for change in audit_log(db)] == ["U_CAROL", "U_BOB", "U_ALICE"]


def test_settings_refuse_out_of_range_values_in_code() -> None:
    with pytest.raises(SettingError, match="max-fallbacks must be a whole number"):
        TriggerSettings(max_fallbacks=-1)
    with pytest.raises(SettingError, match="ambiguity must be a number between 0 and 1"):
        TriggerSettings(ambiguity_margin=float("nan"))


def test_open_database_applies_the_tuning_migrations(path: Path) -> None:
    pytest.importorskip("handoff.knowledge")  # the lead's module, imported by open_database
    from handoff.store import open_database

    db = open_database(path)
    change_setting(db, "confidence", "0.65", "U_ALICE", NOON)
    assert load_settings(open_database(path)).confidence == 0.65
