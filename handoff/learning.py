"""Learning from agents: a handed-off conversation's question and the agent's answer, as a FAQ draft.

`draft` is pure: from one episode's transcript it takes the customer's question (the message
that made Baton hand off) and the agent's answer (their replies the customer saw, notes left
out). `suggestions` lists the episodes Baton handed off because it was unsure and an agent
then answered, newest first, until someone saves them as FAQ entries or dismisses them;
`mark` records that. Raises nothing beyond sqlite3's own errors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from sqlite_utils import Database, Migrations

from handoff.handoffs import Key, Turn, TurnKind, stamp, transcript, unstamp
from handoff.store import register
from handoff.triggers import ReasonKind

MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 3000  # Slack's limit for a modal's text input
migrations = register(Migrations("baton.learning"))


@migrations()
def create_learning_table(db: Database) -> None:
    """What became of each answered episode: saved as a FAQ entry, or dismissed."""
    db.table("faq_learned").create(
        {
            "channel": str,
            "thread_ts": str,
            "episode": int,
            "state": str,
            "entry_id": str,
            "who": str,
            "at": str,
        },
        pk=("channel", "thread_ts", "episode"),
    )


class Outcome(Enum):
    """What someone did with a suggested entry."""

    SAVED = "saved"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class Draft:
    """A FAQ entry in the making: the customer's question and the agent's answer."""

    channel: str
    thread_ts: str
    episode: int
    question: str
    answer: str
    agent: str | None = None
    closed_at: datetime | None = None

    @property
    def key(self) -> Key:
        """The customer thread it came from."""
        return (self.channel, self.thread_ts)


def draft(key: Key, episode: int, turns: Sequence[Turn], handed_off_at: datetime | None) -> Draft | None:
    """The question and answer of one episode, or None when no agent answered the customer."""
    answers = [t for t in turns if t.kind is TurnKind.AGENT and t.text.strip()]
    asked = [t for t in turns if t.kind is TurnKind.CUSTOMER and t.text.strip()]
    if not answers or not asked:
        return None
    before = [t for t in asked if handed_off_at is None or t.at <= handed_off_at]
    question = (before or asked)[-1].text.strip()
    answer = "\n\n".join(t.text.strip() for t in answers)
    return Draft(
        key[0],
        key[1],
        episode,
        question[:MAX_QUESTION_CHARS],
        answer[:MAX_ANSWER_CHARS],
        agent=answers[-1].who,
    )


def episode_draft(db: Database, key: Key, episode: int) -> Draft | None:
    """The draft of one stored episode (None when no agent answered in it)."""
    rows = list(
        db.table("conversation_episodes").rows_where(
            "channel = ? and thread_ts = ? and episode = ?", [*key, episode]
        )
    )
    if not rows:
        return None
    found = draft(key, episode, transcript(db, key, episode), unstamp(rows[0]["handed_off_at"]))
    return replace(found, closed_at=unstamp(rows[0]["closed_at"])) if found else None


def suggestions(db: Database, limit: int = 10) -> list[Draft]:
    """Closed episodes Baton handed off as unsure and an agent answered, not yet saved or dismissed."""
    rows = db.execute(
        "select e.channel, e.thread_ts, e.episode, e.reasons from conversation_episodes e "
        "left join faq_learned l on l.channel = e.channel and l.thread_ts = e.thread_ts "
        "and l.episode = e.episode where e.closed_at is not null and e.agent is not null "
        "and l.state is null order by e.closed_at desc",
    ).fetchall()
    found: list[Draft] = []
    for channel, thread_ts, episode, reasons in rows:
        if not was_unsure(reasons):
            continue
        made = episode_draft(db, (channel, thread_ts), episode)
        if made is not None:
            found.append(made)
        if len(found) >= limit:
            break
    return found


def was_unsure(reasons: str | None) -> bool:
    """Whether stored handoff reasons include low confidence."""
    return any(r.get("kind") == ReasonKind.LOW_CONFIDENCE.value for r in json.loads(reasons or "[]"))


def mark(db: Database, draft: Draft, outcome: Outcome, who: str, at: datetime, entry_id: str | None) -> None:
    """Record that `who` saved (as `entry_id`) or dismissed a draft."""
    row: dict[str, object] = {"channel": draft.channel, "thread_ts": draft.thread_ts}
    row |= {"episode": draft.episode, "state": outcome.value, "entry_id": entry_id}
    row |= {"who": who, "at": stamp(at)}
    with db.atomic():
        db.table("faq_learned").upsert(row, pk=("channel", "thread_ts", "episode"))


def saved_as(db: Database, key: Key, episode: int) -> str | None:
    """The FAQ entry an episode was saved as, if it was."""
    rows = list(
        db.table("faq_learned").rows_where(
            "channel = ? and thread_ts = ? and episode = ? and state = ?",
            [*key, episode, Outcome.SAVED.value],
        )
    )
    return str(rows[0]["entry_id"]) if rows else None
