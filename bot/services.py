"""The services Baton runs on, built once at start-up and passed to whoever needs them."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from bot.brain import Brain
from bot.settings import Settings
from handoff.knowledge import ImportReport, KnowledgeBase
from handoff.store import open_database
from models.encoder import Encoder, TransformerEncoder, default_model_dir
from models.kb import Entry, load_file, sample_path
from models.requests import HumanRequestDetector
from models.sentiment import load_scorer
from models.tuned import TunedEncoder, TuningError, load_or_tune, worth_tuning

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Models, storage and the knowledge base, shared by the CLI and the Slack app."""

    settings: Settings
    db: Database
    encoder: Encoder
    knowledge: KnowledgeBase
    brain: Brain

    def close(self) -> None:
        """Release the model thread and the database."""
        self.brain.close()
        self.db.close()


def build_services(settings: Settings, encoder: Encoder | None = None, serving: bool = False) -> Services:
    """Open the database, load the models, and sync the configured FAQ file.

    `serving`: a database file that cannot be opened or written does not stop Baton (see
    `handoff.store`).
    """
    db = open_database(settings.db_path, serving=serving)
    encoder = encoder or TransformerEncoder(settings.model_dir or default_model_dir())
    knowledge = KnowledgeBase(db, encoder)
    sync_faq_file(knowledge, settings.faq_path)
    faq_encoder = encoder
    if settings.tune and isinstance(encoder, TransformerEncoder):
        tuned = tuned_encoder(encoder, knowledge.entries(), settings.tuned_root)
        if tuned is not None:
            knowledge, faq_encoder = KnowledgeBase(db, tuned, tuned.calibrator), tuned
    requests = HumanRequestDetector(encoder)  # reads the base vector; sentiment its own layers' one
    brain = Brain(faq_encoder, knowledge, load_scorer(settings.sentiment_model, encoder), requests)
    return Services(settings, db, encoder, knowledge, brain)


def tuned_encoder(base: TransformerEncoder, entries: list[Entry], root: Path) -> TunedEncoder | None:
    """The KB's tuned encoder (cached, else tuned now with progress on stderr), if it is worth it."""
    labels = [entry.id for entry in entries for _ in entry.examples]
    if not worth_tuning(labels):
        return None
    texts = [text for entry in entries for text in entry.examples]
    say = lambda line: print(f"baton: {line}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        return load_or_tune(base, texts, labels, root, say)
    except TuningError as exc:  # answering with the frozen encoder beats not answering
        say(f"{exc}; using the frozen encoder")
        return None


def sync_faq_file(knowledge: KnowledgeBase, path: Path | None) -> ImportReport:
    """Make the start-up FAQ's entries match its file (other entries are kept).

    The start-up FAQ is `path` (`BATON_FAQ`); without one, the bundled sample, until a file of
    your own is imported with `baton faq import`: from then on the sample's entries are removed.
    """
    if path is None:
        path = sample_path()
        if knowledge.imported_files() - {file_source(path)}:
            report = knowledge.sync_startup_file(None, None)
            if report.removed:
                log.info(
                    "the bundled sample FAQ gave way to your own: %d entries removed", len(report.removed)
                )
            return report
    return knowledge.sync_startup_file(load_file(path), file_source(path))


def file_source(path: Path) -> str:
    """How entries from a file are marked as coming from it."""
    return f"file:{path.resolve()}"
