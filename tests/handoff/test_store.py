"""The database remembers its schema between changes, and never serves a stale one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handoff.store import Store, open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = open_database(tmp_path / "baton.db")
    yield store
    store.close()


def statements(db: Store) -> list[str]:
    """Start recording the statements the connection runs; returns the (growing) list."""
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    return seen


def test_reads_and_writes_do_not_ask_for_the_schema_again(db: Store) -> None:
    db["notes"].insert({"id": 1, "text": "a"}, pk="id")
    db["notes"].upsert({"id": 2, "text": "b"}, pk="id")  # sqlite-utils probes upsert support once
    seen = statements(db)
    for i in range(3, 6):
        db["notes"].insert({"id": i, "text": "c"})
        db["notes"].upsert({"id": i, "text": "d"}, pk="id")
        assert list(db["notes"].rows_where("id = ?", [i])) == [{"id": i, "text": "d"}]
    schema_reads = [s for s in seen if "sqlite_master" in s or "table_info" in s]
    assert schema_reads == []


def test_a_new_table_or_column_is_seen_at_once(db: Store) -> None:
    assert "later" not in db.table_names()
    db["later"].insert({"id": 1}, pk="id")  # create table
    assert "later" in db.table_names()
    db["later"].add_column("extra", str)  # alter table
    assert [c.name for c in db["later"].columns] == ["id", "extra"]
    db["later"].insert({"id": 2, "extra": "x"})
    db.execute("drop table later")
    assert "later" not in db.table_names()
    assert db["later"].columns == []


def test_a_script_and_a_rolled_back_change_are_seen(db: Store) -> None:
    db.executescript("create table a (x); create view v as select * from a;")
    assert "a" in db.table_names() and "v" in db.view_names()
    with pytest.raises(RuntimeError), db.atomic():
        db.execute("create table b (y)")
        assert "b" in db.table_names()
        raise RuntimeError("give up")
    assert "b" not in db.table_names()
