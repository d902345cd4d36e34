"""The knowledge base in SQLite: imports, incremental edits, and the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handoff.knowledge import KnowledgeBase
from handoff.store import open_database
from models.kb import Entry, KbError, make_entry, parse_yaml
from tests.conftest import FakeEncoder

FAQ = """\
entries:
  - id: password
    question: how do I reset my password
    alternates: [forgot password, password reset link]
    answer: Settings, then Security.
  - id: invoices
    question: where can I download invoices
    alternates: [invoice pdf download, get my invoices]
    answer: Billing, then Invoices.
  - id: status
    question: is the service down
    alternates: [outage status page, service not loading]
    answer: See the status page.
"""


def ask(kb: KnowledgeBase, encoder: FakeEncoder, text: str) -> str | None:
    best = kb.search(encoder.encode([text]))[0].best
    return best.entry_id if best else None


def test_import_then_ask(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    kb = KnowledgeBase(open_database(tmp_path / "b.db"), fake_encoder)
    report = kb.import_entries(parse_yaml(FAQ), "file:faq.yaml")
    assert report.added == ("password", "invoices", "status")
    assert ask(kb, fake_encoder, "download my invoices") == "invoices"


def test_a_restart_re_encodes_nothing(tmp_path: Path) -> None:
    first = FakeEncoder()
    KnowledgeBase(open_database(tmp_path / "b.db"), first).import_entries(parse_yaml(FAQ), "f")
    assert len(first.encoded) == 9
    again = FakeEncoder()
    kb = KnowledgeBase(open_database(tmp_path / "b.db"), again)
    kb.import_entries(parse_yaml(FAQ), "f")
    kb.index()
    assert again.encoded == []


def test_adding_editing_and_removing_one_entry_is_incremental(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    kb = KnowledgeBase(open_database(tmp_path / "b.db"), fake_encoder)
    kb.import_entries(parse_yaml(FAQ), "f")
    kb.index()
    fake_encoder.encoded.clear()
    kb.upsert(
        make_entry({"id": "sso", "question": "set up saml single sign on", "answer": "Use SSO."}),
        "U1",
    )
    assert fake_encoder.encoded == ["set up saml single sign on"]
    assert ask(kb, fake_encoder, "saml sign on") == "sso"
    edited = make_entry({"id": "sso", "question": "configure okta login", "answer": "Use SSO."})
    kb.upsert(edited, "U1")
    assert ask(kb, fake_encoder, "okta login") == "sso"
    assert kb.remove("sso") and not kb.remove("sso")
    assert ask(kb, fake_encoder, "okta login") != "sso"
    assert kb.get("sso") is None


def test_reimporting_a_file_replaces_its_entries_but_keeps_slack_ones(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    kb = KnowledgeBase(open_database(tmp_path / "b.db"), fake_encoder)
    kb.import_entries(parse_yaml(FAQ), "file:faq.yaml")
    kb.upsert(make_entry({"id": "agents", "question": "q", "answer": "a"}), "U1")
    shorter = [e for e in parse_yaml(FAQ) if e.id != "status"]
    changed = [Entry(**{**e.__dict__, "answer": "New."}) if e.id == "password" else e for e in shorter]
    report = kb.import_entries(changed, "file:faq.yaml")
    assert report.removed == ("status",) and report.updated == ("password",) and report.unchanged == 1
    assert {e.id for e in kb.entries()} == {"password", "invoices", "agents"}
    assert kb.get("password").answer == "New."  # type: ignore[union-attr]


def test_a_file_never_overwrites_or_removes_an_entry_added_from_slack(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    kb = KnowledgeBase(open_database(tmp_path / "b.db"), fake_encoder)
    ours = make_entry({"id": "password", "question": "how do I reset my password", "answer": "Ask Sam."})
    kb.upsert(ours, "U1", "agents")
    report = kb.import_entries(parse_yaml(FAQ), "file:faq.yaml")
    assert report.kept == ("password",) and report.added == ("invoices", "status")
    assert "kept as added from Slack, not overwritten: password" in report.summary()
    assert kb.get("password") == ours
    report = kb.import_entries([e for e in parse_yaml(FAQ) if e.id == "status"], "file:faq.yaml")
    assert report.removed == ("invoices",) and kb.get("password") == ours


def test_the_startup_file_replaces_the_one_synced_before(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    kb = KnowledgeBase(open_database(tmp_path / "b.db"), fake_encoder)
    kb.upsert(make_entry({"id": "agents", "question": "q", "answer": "a"}), "U1")
    kb.sync_startup_file(parse_yaml(FAQ), "file:a.yaml")
    other = [make_entry({"id": "billing", "question": "how do I pay", "answer": "By card."})]
    report = kb.sync_startup_file(other, "file:b.yaml")
    assert report.added == ("billing",) and report.removed == ("invoices", "password", "status")
    assert {e.id for e in kb.entries()} == {"agents", "billing"} and kb.startup_file() == "file:b.yaml"
    kb.import_entries(parse_yaml(FAQ), "file:mine.yaml")
    assert kb.imported_files() == {"file:mine.yaml"}
    assert kb.sync_startup_file(None, None).removed == ("billing",) and kb.startup_file() is None
    assert {e.id for e in kb.entries()} == {"agents", "invoices", "password", "status"}


def test_a_malformed_file_imports_nothing(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    kb = KnowledgeBase(open_database(tmp_path / "b.db"), fake_encoder)
    with pytest.raises(KbError, match="line"):
        kb.import_entries(parse_yaml(FAQ + "  - id: broken\n    question: no answer\n"), "f")
    assert kb.entries() == []


def test_an_empty_knowledge_base_says_so(fake_encoder: FakeEncoder) -> None:
    kb = KnowledgeBase(open_database(None), fake_encoder)
    with pytest.raises(KbError, match="empty"):
        kb.search(np.zeros((1, fake_encoder.dim), dtype=np.float32))
