"""The services Baton runs on, built once at start-up and passed to whoever needs them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from bot.brain import Brain
from bot.settings import Settings
from handoff.knowledge import ImportReport, KnowledgeBase
from handoff.store import open_database
from models.encoder import Encoder, TransformerEncoder, default_model_dir
from models.kb import load_file, sample_path
from models.requests import HumanRequestDetector
from models.sentiment import load_scorer


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
    sync_faq_file(knowledge, settings.faq_path or sample_path())
    brain = Brain(encoder, knowledge, load_scorer(settings.sentiment_model), HumanRequestDetector(encoder))
    return Services(settings, db, encoder, knowledge, brain)


def sync_faq_file(knowledge: KnowledgeBase, path: Path) -> ImportReport:
    """Make the entries that came from `path` match the file (other entries are kept)."""
    return knowledge.import_entries(load_file(path), source=f"file:{path.resolve()}")
