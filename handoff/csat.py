"""Customer satisfaction from 👍/👎 reactions on Baton's answers and on closing messages.

A message can be rated once Baton has remembered it (`remember`): a bot answer with its FAQ
entry, or a closing message with the agent credited. Every reaction a customer adds is kept;
their vote on a message is their latest 👍/👎 still in place, so the latest wins and
removing a reaction withdraws it (the earlier one, if still there, counts again).
`csat_report` adds up votes and conversation episodes (`handoff.handoffs.count_episodes`);
`render_report` and `report_json` present it. Raises nothing beyond sqlite3's own errors:
reactions that are not votes, or from people who may not vote, are refused in the `Ballot`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlite_utils import Database, Migrations

from handoff.conversation import Conversation
from handoff.handoffs import count_episodes, reasons_from_json, reasons_json, stamp, unstamp
from handoff.store import register
from handoff.triggers import Reason

UP = {"+1", "thumbsup"}
DOWN = {"-1", "thumbsdown"}
_SKIN_TONE = re.compile(r"::skin-tone-[2-6]$")

migrations = register(Migrations("baton.csat"))


@migrations()
def create_csat_tables(db: Database) -> None:
    """Messages customers may rate, and the 👍/👎 reactions on them."""
    db.table("csat_messages").create(
        {
            "channel": str,
            "ts": str,
            "thread_ts": str,
            "kind": str,
            "entry_id": str,
            "agent": str,
            "reasons": str,
            "posted_at": str,
        },
        pk=("channel", "ts"),
    )
    db.table("csat_reactions").create(
        {"id": int, "channel": str, "ts": str, "voter": str, "reaction": str, "vote": int, "at": str},
        pk="id",
    )
    db.table("csat_reactions").create_index(["channel", "ts", "voter", "reaction"], unique=True)


class Rated(Enum):
    """What kind of message was rated."""

    BOT_ANSWER = "bot_answer"
    CLOSING = "closing"  # the closing message of a conversation a person handled


@dataclass(frozen=True)
class RatedMessage:
    """A message customers may rate, with what its rating is about."""

    channel: str
    ts: str
    thread_ts: str
    kind: Rated
    posted_at: datetime
    entry_id: str | None = None  # bot answers
    agent: str | None = None  # closing messages
    reasons: tuple[Reason, ...] = ()  # why the conversation was handed off, if it was


class Outcome(Enum):
    """What became of a reaction."""

    COUNTED = "counted"
    WITHDRAWN = "withdrawn"
    NOT_A_VOTE = "not_a_vote"  # a reaction other than 👍/👎
    NOT_RATED = "not_rated"  # not a bot answer or closing message
    NOT_CUSTOMER = "not_customer"  # only the thread's customers vote
    NO_VOTE = "no_vote"  # removed a reaction that was not counted


@dataclass(frozen=True)
class Ballot:
    """The outcome of a reaction and the person's vote on the message after it."""

    outcome: Outcome
    vote: int | None = None
    message: RatedMessage | None = None

    @property
    def offers_human(self) -> bool:
        """Whether this was a 👎 on a bot answer, which offers a person."""
        return (
            self.outcome is Outcome.COUNTED
            and self.vote == -1
            and self.message is not None
            and self.message.kind is Rated.BOT_ANSWER
        )


@dataclass(frozen=True)
class Tally:
    """👍 and 👎 counts."""

    up: int = 0
    down: int = 0

    @property
    def total(self) -> int:
        """Every vote."""
        return self.up + self.down

    @property
    def percent(self) -> float | None:
        """CSAT: the share of 👍 in percent, or None without votes."""
        return 100.0 * self.up / self.total if self.total else None

    def plus(self, vote: int) -> Tally:
        """This tally with one more vote."""
        return Tally(self.up + (vote > 0), self.down + (vote < 0))


@dataclass(frozen=True)
class Review:
    """A FAQ entry whose answers got 👎."""

    entry_id: str
    down: int
    up: int
    last_down_at: datetime


@dataclass(frozen=True)
class Report:
    """CSAT since a time: overall, bot vs human, per entry and agent; and the bot resolution rate."""

    since: datetime
    overall: Tally = Tally()
    bot: Tally = Tally()
    human: Tally = Tally()
    by_entry: dict[str, Tally] = field(default_factory=dict)
    by_agent: dict[str, Tally] = field(default_factory=dict)
    conversations: int = 0
    bot_only: int = 0  # conversations Baton answered from the FAQ and never handed to a person

    @property
    def bot_resolution_rate(self) -> float | None:
        """Conversations closed without a person, in percent of all, or None without any."""
        return 100.0 * self.bot_only / self.conversations if self.conversations else None


# -- voting ------------------------------------------------------------------------------


def vote_for(reaction: str) -> int | None:
    """+1 for 👍, -1 for 👎 (any skin tone), None for any other reaction."""
    name = _SKIN_TONE.sub("", reaction.strip().strip(":"))
    if name in UP:
        return 1
    if name in DOWN:
        return -1
    return None


def bot_answer(conversation: Conversation, ts: str, entry_id: str | None, at: datetime) -> RatedMessage:
    """Baton's answer `ts` in the conversation's thread, as a message to rate."""
    c = conversation
    return RatedMessage(c.channel, ts, c.thread_ts, Rated.BOT_ANSWER, at, entry_id, None, c.reasons)


def closing_message(conversation: Conversation, ts: str, agent: str | None, at: datetime) -> RatedMessage:
    """The closing message `ts` of a resolved conversation, crediting `agent`."""
    c = conversation
    return RatedMessage(c.channel, ts, c.thread_ts, Rated.CLOSING, at, None, agent, c.reasons)


def remember(db: Database, message: RatedMessage) -> None:
    """Let customers rate this message."""
    with db.atomic():
        db.table("csat_messages").upsert(
            {
                "channel": message.channel,
                "ts": message.ts,
                "thread_ts": message.thread_ts,
                "kind": message.kind.value,
                "entry_id": message.entry_id,
                "agent": message.agent,
                "reasons": reasons_json(message.reasons),
                "posted_at": stamp(message.posted_at),
            },
            pk=("channel", "ts"),
        )


def rated_message(db: Database, channel: str, ts: str) -> RatedMessage | None:
    """The rateable message at (channel, ts), or None."""
    rows = list(db.table("csat_messages").rows_where("channel = ? and ts = ?", [channel, ts]))
    return message_from_row(rows[0]) if rows else None


def vote(
    db: Database, channel: str, ts: str, voter: str, reaction: str, is_customer: bool, at: datetime
) -> Ballot:
    """Count a reaction as `voter`'s vote on the message; only the thread's customers vote."""
    value = vote_for(reaction)
    if value is None:
        return Ballot(Outcome.NOT_A_VOTE)
    message = rated_message(db, channel, ts)
    if message is None:
        return Ballot(Outcome.NOT_RATED)
    if not is_customer:
        return Ballot(Outcome.NOT_CUSTOMER, None, message)
    with db.atomic():
        # Re-adding a reaction makes it the latest again: delete, then insert with a new id.
        forget(db, channel, ts, voter, reaction)
        whose = {"channel": channel, "ts": ts, "voter": voter}
        db.table("csat_reactions").insert({**whose, "reaction": reaction, "vote": value, "at": stamp(at)})
    return Ballot(Outcome.COUNTED, current_vote(db, channel, ts, voter), message)


def withdraw(db: Database, channel: str, ts: str, voter: str, reaction: str) -> Ballot:
    """Take back the reaction; the person's vote becomes their latest 👍/👎 still in place."""
    if vote_for(reaction) is None:
        return Ballot(Outcome.NOT_A_VOTE)
    message = rated_message(db, channel, ts)
    if message is None:
        return Ballot(Outcome.NOT_RATED)
    with db.atomic():
        removed = forget(db, channel, ts, voter, reaction)
    outcome = Outcome.WITHDRAWN if removed else Outcome.NO_VOTE
    return Ballot(outcome, current_vote(db, channel, ts, voter), message)


def forget(db: Database, channel: str, ts: str, voter: str, reaction: str) -> bool:
    """Delete one stored reaction; whether there was one."""
    cursor = db.execute(
        "delete from csat_reactions where channel = ? and ts = ? and voter = ? and reaction = ?",
        [channel, ts, voter, reaction],
    )
    return cursor.rowcount > 0


def current_vote(db: Database, channel: str, ts: str, voter: str) -> int | None:
    """`voter`'s vote on the message: their latest reaction still in place."""
    rows = list(
        db.table("csat_reactions").rows_where(
            "channel = ? and ts = ? and voter = ?", [channel, ts, voter], order_by="id desc", limit=1
        )
    )
    return int(rows[0]["vote"]) if rows else None


# -- reporting ---------------------------------------------------------------------------

_VOTES = """
select m.kind, m.entry_id, m.agent, v.vote, v.at from (
    select channel, ts, voter, vote, at,
           row_number() over (partition by channel, ts, voter order by id desc) as latest
    from csat_reactions
) v join csat_messages m on m.channel = v.channel and m.ts = v.ts
where v.latest = 1
"""


def counted_votes(db: Database, since: datetime | None = None) -> list[dict[str, Any]]:
    """Each person's vote on each message (kind, entry, agent, vote, time), cast since `since`."""
    sql, args = _VOTES, []
    if since is not None:
        sql, args = sql + " and v.at >= ?", [stamp(since)]
    cursor = db.execute(sql + " order by v.at", args)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def csat_report(db: Database, since: datetime) -> Report:
    """CSAT with counts since `since`: overall, bot vs human, per FAQ entry and agent."""
    overall, bot, human = Tally(), Tally(), Tally()
    by_entry: dict[str, Tally] = {}
    by_agent: dict[str, Tally] = {}
    for row in counted_votes(db, since):
        value = int(row["vote"])
        overall = overall.plus(value)
        if row["kind"] == Rated.BOT_ANSWER.value:
            bot = bot.plus(value)
            if row["entry_id"] is not None:
                by_entry[row["entry_id"]] = by_entry.get(row["entry_id"], Tally()).plus(value)
        else:
            human = human.plus(value)
            if row["agent"] is not None:
                by_agent[row["agent"]] = by_agent.get(row["agent"], Tally()).plus(value)
    episodes = count_episodes(db, since)
    return Report(
        since=since,
        overall=overall,
        bot=bot,
        human=human,
        by_entry=dict(sorted(by_entry.items())),
        by_agent=dict(sorted(by_agent.items())),
        conversations=episodes.total,
        bot_only=episodes.bot_only,
    )


def needs_review(db: Database, since: datetime | None = None) -> list[Review]:
    """FAQ entries whose answers customers gave 👎, most 👎 first."""
    tallies: dict[str, Tally] = {}
    last_down: dict[str, datetime] = {}
    for row in counted_votes(db, since):
        entry = row["entry_id"]
        if row["kind"] != Rated.BOT_ANSWER.value or entry is None:
            continue
        tallies[entry] = tallies.get(entry, Tally()).plus(int(row["vote"]))
        if int(row["vote"]) < 0:
            last_down[entry] = datetime.fromisoformat(row["at"])
    reviews = [Review(e, tallies[e].down, tallies[e].up, at) for e, at in last_down.items()]
    return sorted(reviews, key=lambda r: (-r.down, r.entry_id))


# -- presenting --------------------------------------------------------------------------


def show_percent(tally: Tally) -> str:
    """ "83% (10 of 12)", or "no votes"."""
    if tally.percent is None:
        return "no votes"
    return f"{tally.percent:.0f}% ({tally.up} of {tally.total})"


def render_report(report: Report, days: int, name: Callable[[str], str] = str) -> str:
    """The report as text for the CLI and Slack; `name` shows an agent (e.g. as a mention)."""
    lines = [
        f"CSAT over the last {days} day{'s' if days != 1 else ''} (👍 share of 👍/👎 votes)",
        f"Overall: {show_percent(report.overall)}",
        f"Baton's answers: {show_percent(report.bot)}",
        f"People: {show_percent(report.human)}",
        f"Bot resolution rate: {show_rate(report)}",
    ]
    if report.by_entry:
        lines += ["", "Per FAQ entry:"]
        lines += [f"  {entry}: {show_percent(t)}{flag(t)}" for entry, t in report.by_entry.items()]
    if report.by_agent:
        lines += ["", "Per agent:"]
        lines += [f"  {name(agent)}: {show_percent(tally)}" for agent, tally in report.by_agent.items()]
    return "\n".join(lines)


def show_rate(report: Report) -> str:
    """The bot resolution rate with its counts."""
    rate = report.bot_resolution_rate
    if rate is None:
        return "no conversations"
    return f"{rate:.0f}% ({report.bot_only} of {report.conversations} conversations answered by Baton alone)"


def flag(tally: Tally) -> str:
    """A marker for entries that got 👎."""
    return f"  ← {tally.down} 👎, needs review" if tally.down else ""


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON values."""

    def tally(t: Tally) -> dict[str, Any]:
        return {"up": t.up, "down": t.down, "total": t.total, "csat": t.percent}

    return {
        "since": report.since.isoformat(),
        "overall": tally(report.overall),
        "bot": tally(report.bot),
        "human": tally(report.human),
        "by_entry": {k: tally(v) for k, v in report.by_entry.items()},
        "by_agent": {k: tally(v) for k, v in report.by_agent.items()},
        "conversations": report.conversations,
        "bot_only": report.bot_only,
        "bot_resolution_rate": report.bot_resolution_rate,
    }


def message_from_row(row: dict[str, Any]) -> RatedMessage:
    """A `csat_messages` row back as a `RatedMessage`."""
    return RatedMessage(
        channel=row["channel"],
        ts=row["ts"],
        thread_ts=row["thread_ts"],
        kind=Rated(row["kind"]),
        posted_at=unstamp(row["posted_at"]) or datetime.min,
        entry_id=row["entry_id"],
        agent=row["agent"],
        reasons=reasons_from_json(row["reasons"]),
    )
