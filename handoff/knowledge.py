"""The FAQ knowledge base kept in SQLite, with an embedding cache and a live index.

Entries remember where they came from (a file, or Slack), so re-importing a file
replaces that file's entries and leaves entries agents added from Slack alone: a file
never overwrites or removes an entry whose id was added from Slack (it is reported as kept).
The database also remembers which file is synced at start (`BATON_FAQ`), so pointing
Baton at another one removes the old file's entries.
Embeddings are cached by (model, text): a restart re-encodes nothing, and adding,
editing or removing one entry encodes only its new questions.
Raises `models.kb.KbError` for bad entries and `models.faq.FaqError` for an empty index.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from sqlite_utils import Database, Migrations

from handoff.store import register
from models.encoder import Encoder
from models.faq import Calibrator, FaqIndex, Retrieval
from models.kb import Entry, KbError

MIGRATIONS = register(Migrations("baton.knowledge"))


@MIGRATIONS()
def create_knowledge_tables(db: Database) -> None:
    """FAQ entries and the embedding cache."""
    db.table("faq_entries").create(
        {
            "id": str,
            "question": str,
            "answer": str,
            "alternates": str,
            "tags": str,
            "links": str,
            "source": str,
            "updated_at": str,
            "updated_by": str,
        },
        pk="id",
    )
    db.table("embeddings").create(
        {"model": str, "text_hash": str, "vector": bytes}, pk=("model", "text_hash")
    )


@MIGRATIONS()
def remember_the_startup_file(db: Database) -> None:
    """Which FAQ file is synced at start, so a different one replaces it."""
    db.table("knowledge_meta").create({"key": str, "value": str}, pk="key")


STARTUP_FILE = "startup_file"


@dataclass(frozen=True)
class ImportReport:
    """What an import changed."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int
    kept: tuple[str, ...] = ()  # ids the file has that were added from Slack: left as they are

    def summary(self) -> str:
        """One line for people."""
        line = (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged"
        )
        if self.kept:
            line += f"; kept as added from Slack, not overwritten: {', '.join(self.kept)}"
        return line


class KnowledgeBase:
    """FAQ entries in the database plus the retrieval index over their questions."""

    def __init__(self, db: Database, encoder: Encoder, calibrator: Calibrator | None = None) -> None:
        """`calibrator`: a fixed confidence calibration (a tuned encoder's); None fits one per index."""
        self._db = db
        self._encoder = encoder
        self._calibrator = calibrator
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self._index: FaqIndex | None = None

    # -- reading -------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Every entry, ordered by id."""
        return [_entry_from_row(row) for row in self._db.table("faq_entries").rows_where(order_by="id")]

    def get(self, entry_id: str) -> Entry | None:
        """One entry, or None."""
        rows = list(self._db.table("faq_entries").rows_where("id = ?", [entry_id]))
        return _entry_from_row(rows[0]) if rows else None

    def sources(self) -> dict[str, str]:
        """Where each entry came from."""
        return {row["id"]: row["source"] for row in self._db.table("faq_entries").rows}

    # -- writing -------------------------------------------------------------
    def import_entries(self, entries: list[Entry], source: str, replace: bool = True) -> ImportReport:
        """Upsert entries from one source; with `replace`, drop that source's entries not given."""
        sources = self.sources()
        kept = tuple(e.id for e in entries if from_slack(sources.get(e.id, source)))
        entries = [e for e in entries if e.id not in kept]
        current = {e.id: e for e in self.entries()}
        given = {e.id for e in entries}
        added = tuple(e.id for e in entries if e.id not in current)
        updated = tuple(e.id for e in entries if e.id in current and current[e.id] != e)
        stale = {i for i, s in sources.items() if s == source and i not in given} if replace else set()
        self._vectors_for(t for e in entries if e.id in added + updated for t in e.examples)
        with self._db.atomic():
            for entry in entries:
                if entry.id in added or entry.id in updated or sources.get(entry.id) != source:
                    self._write(entry, source, "import")
            for entry_id in stale:
                self._db.table("faq_entries").delete(entry_id)
        self._invalidate(set(added) | set(updated) | stale)
        unchanged = len(entries) - len(added) - len(updated)
        return ImportReport(added, updated, tuple(sorted(stale)), unchanged, kept)

    def startup_file(self) -> str | None:
        """The source of the FAQ file synced at the last start, if any."""
        rows = list(self._db.table("knowledge_meta").rows_where("key = ?", [STARTUP_FILE]))
        return str(rows[0]["value"]) or None if rows else None

    def imported_files(self) -> set[str]:
        """Sources of the files imported by hand (`baton faq import`), not synced at start."""
        startup = self.startup_file()
        return {s for s in self.sources().values() if not from_slack(s) and s != startup}

    def sync_startup_file(self, entries: list[Entry] | None, source: str | None) -> ImportReport:
        """Make the start-up FAQ file's entries match `entries` (None: no start-up file).

        The file synced at the previous start, if it was another one, has its entries removed.
        """
        previous = self.startup_file()
        dropped = self.import_entries([], previous).removed if previous and previous != source else ()
        with self._db.atomic():
            self._db.table("knowledge_meta").upsert({"key": STARTUP_FILE, "value": source or ""}, pk="key")
        if entries is None or source is None:
            return ImportReport((), (), dropped, 0)
        report = self.import_entries(entries, source)
        return replace(report, removed=tuple(sorted(set(report.removed) | set(dropped))))

    def upsert(self, entry: Entry, who: str, source: str = "slack") -> None:
        """Add or edit one entry; it answers from the next question on."""
        self._vectors_for(entry.examples)
        with self._db.atomic():
            self._write(entry, source, who)
        self._invalidate({entry.id})

    def remove(self, entry_id: str) -> bool:
        """Delete one entry; False when there was none."""
        if self.get(entry_id) is None:
            return False
        with self._db.atomic():
            self._db.table("faq_entries").delete(entry_id)
        self._invalidate({entry_id})
        return True

    def _write(self, entry: Entry, source: str, who: str) -> None:
        self._db.table("faq_entries").upsert(
            {
                "id": entry.id,
                "question": entry.question,
                "answer": entry.answer,
                "alternates": json.dumps(list(entry.alternates)),
                "tags": json.dumps(list(entry.tags)),
                "links": json.dumps(list(entry.links)),
                "source": source,
                "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "updated_by": who,
            },
            pk="id",
        )

    # -- retrieval -----------------------------------------------------------
    def index(self) -> FaqIndex:
        """The retrieval index, rebuilt from cached vectors after any change."""
        with self._lock:
            if self._index is None:
                self._index = self._build_index()
            return self._index

    def search(self, vectors: np.ndarray) -> list[Retrieval]:
        """Retrieval for already-encoded questions."""
        return self.index().search(vectors)

    def _build_index(self) -> FaqIndex:
        entries = self.entries()
        if not entries:
            raise KbError("the knowledge base is empty: import a FAQ file first")
        missing = [e for e in entries if e.id not in self._vectors]
        if missing:
            vectors = self._vectors_for(t for e in missing for t in e.examples)
            for entry in missing:
                self._vectors[entry.id] = np.stack([vectors[t] for t in entry.examples])
        labels = [e.id for e in entries for _ in e.examples]
        stacked = np.concatenate([self._vectors[e.id] for e in entries])
        return FaqIndex.build(stacked, labels, calibrator=self._calibrator)

    def _invalidate(self, entry_ids: set[str]) -> None:
        with self._lock:
            for entry_id in entry_ids:
                self._vectors.pop(entry_id, None)
            self._index = None

    def _vectors_for(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors for texts, from the cache where possible; new ones are encoded and cached."""
        wanted = list(dict.fromkeys(texts))
        model = self._encoder.name
        hashes = {t: _text_hash(t) for t in wanted}
        found: dict[str, np.ndarray] = {}
        table = self._db.table("embeddings")
        for start in range(0, len(wanted), 500):
            chunk = [hashes[t] for t in wanted[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for row in table.rows_where(f"model = ? and text_hash in ({marks})", [model, *chunk]):
                found[row["text_hash"]] = np.frombuffer(row["vector"], dtype=np.float32)
        todo = [t for t in wanted if hashes[t] not in found]
        for start in range(0, len(todo), 64):
            batch = todo[start : start + 64]
            encoded = self._encoder.encode(batch)
            rows = [
                {"model": model, "text_hash": hashes[t], "vector": v.tobytes()}
                for t, v in zip(batch, encoded, strict=True)
            ]
            table.upsert_all(rows, pk=("model", "text_hash"))
            found.update({hashes[t]: v for t, v in zip(batch, encoded, strict=True)})
        return {t: found[hashes[t]] for t in wanted}


SLACK_SOURCES = frozenset({"slack", "agents"})  # `/baton faq add`; Save as FAQ


def from_slack(source: str) -> bool:
    """Whether an entry was added from Slack (else it came from a file)."""
    return source in SLACK_SOURCES


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _entry_from_row(row: dict[str, object]) -> Entry:
    return Entry(
        id=str(row["id"]),
        question=str(row["question"]),
        answer=str(row["answer"]),
        alternates=tuple(json.loads(str(row["alternates"]))),
        tags=tuple(json.loads(str(row["tags"]))),
        links=tuple(json.loads(str(row["links"]))),
    )
