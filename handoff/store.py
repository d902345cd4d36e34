"""The SQLite database: opening it and applying every module's schema migrations.

Each module that keeps state owns a `sqlite_utils.Migrations` set (one function per
schema change); `open_database` applies them all in order.
Raises `StoreError` when the file cannot be opened or written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database, Migrations


class StoreError(Exception):
    """The database cannot be opened, migrated or written."""


_SETS: list[Migrations] = []


def register(migrations: Migrations) -> Migrations:
    """Add a module's migration set to those `open_database` applies."""
    if all(existing.name != migrations.name for existing in _SETS):
        _SETS.append(migrations)
    return migrations


def open_database(path: str | Path | None) -> Database:
    """Open (or create) the database at `path`, or in memory when `path` is None."""
    _import_schema_owners()
    try:
        if path is None:
            db = Database(memory=True)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # One connection, shared by the event loop and the model thread (writes stay serial).
            db = Database(sqlite3.connect(str(path), check_same_thread=False, timeout=10))
            db.enable_wal()
        for migrations in _SETS:
            migrations.apply(db)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open the database {path}: {exc}") from exc
    return db


def _import_schema_owners() -> None:
    """Import the modules that own tables, so their migration sets are registered."""
    from handoff import csat, handoffs, inbox, learning, outbox  # noqa: F401
