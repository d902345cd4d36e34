"""Baton against the local Slack, with the fixtures of `tests/bot/conftest.py` (imported, not copied).

`faq_db` is the one exception: the sample FAQ is imported once per run for `tests/faults`,
`tests/security` and `tests/bad_input` together, rather than once per package.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.services import sync_faq_file
from handoff.knowledge import KnowledgeBase
from handoff.store import open_database
from models.encoder import Encoder
from models.kb import sample_path
from tests.bot.conftest import (  # noqa: F401  (fixtures are found by name)
    app_settings,
    db_path,
    harness,
    parts,
    requests_detector,
    scorer,
    serving_threads,
    slack_options,
)

_IMPORTED: list[Path] = []


@pytest.fixture(scope="session")
def faq_db(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """A database with the sample FAQ imported and its embeddings cached (tests copy it)."""
    if not _IMPORTED:
        path = tmp_path_factory.mktemp("faq") / "baton.db"
        db = open_database(path)
        sync_faq_file(KnowledgeBase(db, encoder), sample_path())
        db.close()
        _IMPORTED.append(path)
    return _IMPORTED[0]
