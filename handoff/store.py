"""The SQLite database: opening it and applying every module's schema migrations.

Each module that keeps state owns a `sqlite_utils.Migrations` set (one function per
schema change); `open_database` applies them all in order.

A server must keep answering when its database file fails it: locked by another program,
read-only, in a read-only directory. Opened with `serving=True` (or after `keep_serving`), the
database moves to an in-memory copy of itself the moment its file refuses (a write, or being
opened at all); `problem` says what happened. Baton goes on answering, and what changes from
then on is lost when the process stops, which the problem text says.
Raises `StoreError` when the file cannot be opened or migrated (unless serving).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations
from sqlite_utils.db import Column, Table

log = logging.getLogger("baton.store")

WAIT = 10.0  # seconds a write waits for another connection's lock (command-line use)
SERVING_WAIT = 1.0  # the same while serving: the event loop waits with it, and Slack wants an ack in 3 s
REFUSALS = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_READONLY",
    "SQLITE_CANTOPEN",
    "SQLITE_PERM",
    "SQLITE_IOERR",
)


class StoreError(Exception):
    """The database cannot be opened, migrated or written."""


_SETS: list[Migrations] = []


def register(migrations: Migrations) -> Migrations:
    """Add a module's migration set to those `open_database` applies."""
    if all(existing.name != migrations.name for existing in _SETS):
        _SETS.append(migrations)
    return migrations


def open_database(path: str | Path | None, serving: bool = False) -> Store:
    """Open (or create) the database at `path`, or in memory when `path` is None.

    `serving`: when the file cannot be opened, or refuses a write later, go on in memory.
    """
    _import_schema_owners()
    if path is None:
        return _migrated(Store(sqlite3.connect(":memory:")))
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection, shared by the event loop and the model thread (writes stay serial).
        connection = sqlite3.connect(
            str(path), check_same_thread=False, timeout=SERVING_WAIT if serving else WAIT
        )
        db = Store(connection, Path(path), serving)
        db.enable_wal()
        return _migrated(db)
    except (sqlite3.Error, OSError) as exc:
        if not serving:
            raise StoreError(f"cannot open the database {path}: {exc}") from exc
        db = Store(sqlite3.connect(":memory:", check_same_thread=False), Path(path), serving)
        db.move_to_memory(exc)
        return db


def keep_serving(db: Database) -> None:
    """Let a file database move to memory rather than fail, and check now that its file takes writes."""
    if not isinstance(db, Store) or db.path is None or db.serving:
        return
    db.serving = True
    db.conn.execute(f"pragma busy_timeout = {int(SERVING_WAIT * 1000)}")
    try:
        with db.atomic():  # a write that changes nothing: a read-only file refuses it
            version = int(db.execute("pragma user_version").fetchone()[0])
            db.execute(f"pragma user_version = {version}")
    except sqlite3.OperationalError as exc:
        if not refused(exc):
            raise


def problem(db: Database) -> str | None:
    """What is wrong with the database file, when Baton runs on an in-memory copy of it."""
    return db.problem if isinstance(db, Store) else None


def refused(exc: BaseException) -> bool:
    """Whether SQLite refused because of the file (locked, read-only, unreachable), not the SQL."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    return isinstance(exc, sqlite3.OperationalError) and name.startswith(REFUSALS)


def describe(path: Path | None, exc: BaseException) -> str:
    """The problem, for logs, /healthz and `/baton`: what is wrong, what Baton does, what to do."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        what = "is locked by another program"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_PERM")) or isinstance(exc, PermissionError):
        what = "is read-only"
    else:
        what = "cannot be opened or written"
    return (
        f"The database {path} {what} ({exc}). Baton keeps answering from an in-memory copy, so "
        "handoffs, settings and ratings from now on are lost when it stops: fix the file, then "
        "restart Baton."
    )


SCHEMA_CHANGES = ("create", "drop", "alter")


class Store(Database):
    """A `Database` that, while serving, moves to an in-memory copy when its file refuses.

    It also remembers the schema between changes to it: sqlite-utils reads `sqlite_master` and
    `PRAGMA table_info` on nearly every call (about 60 of a turn's 140 statements, measured),
    and Baton's schema changes only through this object (migrations, at start). Any `create`,
    `drop` or `alter`, script, rollback or move to memory forgets what it remembered.
    """

    def __init__(
        self, connection: sqlite3.Connection, path: Path | None = None, serving: bool = False
    ) -> None:
        self.path = path
        self.serving = serving
        self.problem: str | None = None
        self._left: sqlite3.Connection | None = None  # the file's connection, once moved away
        self._moving = threading.Lock()
        self._schema: dict[tuple[str, str], Any] = {}
        super().__init__(connection)

    @contextmanager
    def atomic(self) -> Iterator[Database]:
        """A transaction; while serving it takes the write lock first (or moves to memory)."""
        if not self.serving or self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self._begin()
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException as exc:
            self.rollback()
            if refused(exc) and self.problem is None:
                self.move_to_memory(exc)  # this transaction is lost; the next one goes to memory
            raise

    def _begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not refused(exc) or self.problem is not None:
                raise
            self.move_to_memory(exc)
            self.conn.execute("BEGIN IMMEDIATE")

    # -- the schema, remembered ------------------------------------------------------------------
    def table_names(self, fts4: bool = False, fts5: bool = False) -> list[str]:
        """The tables (remembered until the schema changes)."""
        if fts4 or fts5:
            return super().table_names(fts4, fts5)
        return list(self._remembered(("tables", ""), super().table_names))

    def view_names(self) -> list[str]:
        """The views (remembered until the schema changes)."""
        return list(self._remembered(("views", ""), super().view_names))

    def table(self, table_name: str, **kwargs: Any) -> Table:
        """A table whose columns are remembered until the schema changes."""
        if table_name in self.view_names():
            return super().table(table_name, **kwargs)  # refuses, as sqlite-utils does
        kwargs.setdefault("strict", self.strict)
        return RememberedTable(self, table_name, **kwargs)

    def columns_of(self, table: Table) -> list[Column]:
        """A table's columns (remembered once the table exists)."""
        found: list[Column] = Table.columns.fget(self.table_plain(table.name))  # type: ignore[attr-defined]
        if found:
            self._schema[("columns", table.name)] = found
        return found

    def table_plain(self, name: str) -> Table:
        """sqlite-utils' own Table object (reads the schema every time)."""
        return Table(self, name, strict=self.strict)

    def _remembered(self, key: tuple[str, str], read: Any) -> Any:
        if key not in self._schema:
            self._schema[key] = read()
        return self._schema[key]

    def forget_schema(self) -> None:
        """Read the schema again next time."""
        self._schema.clear()

    def executescript(self, sql: str) -> sqlite3.Cursor:
        """Run a script (forgetting the schema: it may change it)."""
        self.forget_schema()
        try:
            return super().executescript(sql)
        finally:
            self.forget_schema()

    def rollback(self) -> None:
        """Roll back (forgetting the schema: the transaction may have changed it)."""
        self.forget_schema()
        super().rollback()

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> sqlite3.Cursor:
        """Run one statement; while serving, one the file refuses runs again in memory."""
        if sql.lstrip()[:6].lower().startswith(SCHEMA_CHANGES):
            self.forget_schema()
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not self.serving or self.conn.in_transaction or not refused(exc) or self.problem is not None:
                raise
            self.move_to_memory(exc)
            return super().execute(sql, parameters)

    def move_to_memory(self, exc: BaseException) -> None:
        """Go on with an in-memory copy of the file (empty if it cannot be read); logged once."""
        with self._moving:
            if self.problem is not None:
                return
            memory = sqlite3.connect(":memory:", check_same_thread=False)
            copied = self._copy_into(memory)
            self._left, self.conn = self.conn, memory
            self.forget_schema()
            self.problem = describe(self.path, exc)
            _migrated(self)
        log.error("%s%s", self.problem, "" if copied else " (its data could not be read: starting empty)")

    def _copy_into(self, memory: sqlite3.Connection) -> bool:
        """Copy the file's data, read-only (ignoring its write-ahead log if that cannot be read)."""
        if self.path is None or not self.path.is_file():
            return False
        uri = self.path.resolve().as_uri()
        for how in ("mode=ro", "immutable=1"):
            try:
                source = sqlite3.connect(f"{uri}?{how}", uri=True)
                try:
                    source.backup(memory)
                    return True
                finally:
                    source.close()
            except sqlite3.Error:
                continue
        return False

    def close(self) -> None:
        """Close the database (and the file it moved away from)."""
        super().close()
        if self._left is not None:
            self._left.close()


class RememberedTable(Table):
    """A sqlite-utils Table whose columns come from its Store's memory of the schema."""

    db: Store

    @property
    def columns(self) -> list[Column]:
        """The table's columns (read once, then remembered until the schema changes)."""
        known = self.db._schema.get(("columns", self.name))
        return list(known) if known is not None else self.db.columns_of(self)


def _migrated(db: Store) -> Store:
    for migrations in _SETS:
        migrations.apply(db)
    return db


def _import_schema_owners() -> None:
    """Import the modules that own tables, so their migration sets are registered."""
    from handoff import csat, handoffs, inbox, learning, outbox  # noqa: F401
