"""`/baton` commands run: who may, what each does, and the private answer it gets.

`bot.commands.parse` reads the text; this module checks the person (people of another team
never; setting changes only for `BATON_ADMINS` and workspace admins or owners) and runs the
command against the database. Every answer is text for an ephemeral reply. Bad input was
already refused by `parse`; a value `handoff.tuning` refuses (`SettingError`) is explained
the same way, and changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot import cards, commands
from bot.app import Baton
from bot.bridge import Bridge, now
from bot.commands import Command, UsageError
from bot.render import Message, mrkdwn, warned
from handoff import csat, handoffs, learning, tuning
from handoff.conversation import Resolve, Status
from handoff.outbox import State
from handoff.store import problem
from handoff.tuning import KNOBS, Change, SettingError, show_value
from models.kb import Entry, KbError

STATS_DAYS = 7
LIST_LIMIT = 40
SUGGESTIONS_SHOWN = 10
ADMINS_ONLY = (
    "Only Baton's admins can change settings: the people in BATON_ADMINS and workspace admins "
    "or owners. Ask one of them, or use `/baton triggers` to see the current settings."
)
OTHER_TEAM = "Baton's commands are for the team that runs Baton."


def entry_id(question: str, taken: set[str]) -> str:
    """A readable, unused id for a new FAQ entry, from its question's first words."""
    words = re.findall(r"[a-z0-9]+", question.casefold())[:6]
    base = "-".join(words) or "entry"
    found, number = base, 2
    while found in taken:
        found, number = f"{base}-{number}", number + 1
    return found


def suggested(drafts: list[learning.Draft]) -> tuple[cards.Suggested, ...]:
    """Drafts as the suggestion lists show them, each naming its episode for the buttons."""
    return tuple(
        cards.Suggested(d.question, d.answer, d.agent, cards.target(d.channel, d.thread_ts, str(d.episode)))
        for d in drafts
    )


def describe(change: Change) -> str:
    """One audit line's change, FAQ edits included."""
    if change.key == "faq":
        return f"FAQ entry added: {change.new}" if change.old is None else f"FAQ entry removed: {change.old}"
    return change.describe()


class Admin:
    """Runs `/baton` commands for one `Baton`."""

    def __init__(self, baton: Baton, bridge: Bridge) -> None:
        self.baton = baton
        self.bridge = bridge
        self.db = baton.services.db
        self.handlers: dict[type, Callable[[Any, str], Awaitable[str | Message]]] = {
            commands.Help: self.help,
            commands.ShowTriggers: self.triggers,
            commands.SetSetting: self.set_setting,
            commands.AddKeyword: self.add_keyword,
            commands.RemoveKeyword: self.remove_keyword,
            commands.ListKeywords: self.list_keywords,
            commands.AddFaq: self.add_faq,
            commands.RemoveFaq: self.remove_faq,
            commands.ListFaq: self.list_faq,
            commands.SuggestFaq: self.suggest_faq,
            commands.ShowCsat: self.csat,
            commands.ShowStats: self.stats,
            commands.ShowAudit: self.audit,
            commands.Resolve: self.resolve,
        }

    async def run(self, text: str, user: str) -> str | Message:
        """The answer to `/baton <text>` typed by `user` (text, or a message with buttons)."""
        parsed = commands.parse(text)
        if isinstance(parsed, UsageError):
            return f"{parsed.message}\n\n{commands.help_text()}"
        refusal = await self.refusal(parsed, user)
        if refusal:
            return refusal
        reply = await self.handlers[type(parsed)](parsed, user)
        return warned(reply, problem(self.db))  # e.g. the database file is read-only

    async def refusal(self, command: Command, user: str) -> str | None:
        """Why `user` may not run the command, or None."""
        agents = await self.baton.place(self.baton.settings.agent_channel)
        if agents.is_ext_shared:
            return (
                f"BATON_AGENT_CHANNEL <#{agents.id}> is shared with another organisation, so Baton "
                "will not post handoffs there. Use an internal channel."
            )
        person = await self.baton.person(user)
        if person.team != (await self.baton.whoami()).team_id:
            return OTHER_TEAM
        if command.changes_settings and not (user in self.baton.settings.admins or person.is_admin):
            return ADMINS_ONLY
        return None

    # -- one handler per command ----------------------------------------------------------------
    async def help(self, command: commands.Help, user: str) -> str:
        """Every command."""
        return commands.help_text()

    async def triggers(self, command: commands.ShowTriggers, user: str) -> str:
        """Every trigger setting."""
        current = tuning.load_settings(self.db)
        lines = ["*Trigger settings*"]
        lines += [f"• `{knob.key}`: {show_value(getattr(current, knob.field))}" for knob in KNOBS]
        lines.append(f"• keywords: {len(current.keywords)} (`/baton keyword list`)")
        minutes = self.baton.settings.realert_after / 60
        lines.append(f"• re-alert unclaimed handoffs after {show_value(round(minutes, 2))} min")
        return "\n".join(lines)

    async def set_setting(self, command: commands.SetSetting, user: str) -> str:
        """Change one setting (audited)."""
        try:
            change = tuning.change_setting(self.db, command.key, command.value, user, now())
        except SettingError as exc:
            return f"{exc} Nothing changed."
        return f"Changed {change.describe()}. It applies from the next message."

    async def add_keyword(self, command: commands.AddKeyword, user: str) -> str:
        """Add a handoff keyword (audited)."""
        try:
            tuning.add_keyword(self.db, command.phrase, user, now())
        except SettingError as exc:
            return str(exc)
        return f"Added the keyword '{command.phrase}': messages with it go to a person from now on."

    async def remove_keyword(self, command: commands.RemoveKeyword, user: str) -> str:
        """Remove a handoff keyword (audited)."""
        try:
            change = tuning.remove_keyword(self.db, command.phrase, user, now())
        except SettingError as exc:
            return str(exc)
        return f"Removed the keyword '{change.old}'."

    async def list_keywords(self, command: commands.ListKeywords, user: str) -> str:
        """The handoff keywords."""
        keywords = tuning.load_settings(self.db).keywords
        if not keywords:
            return "There are no handoff keywords."
        return "*Handoff keywords*\n" + "\n".join(f"• {keyword}" for keyword in keywords)

    async def add_faq(self, command: commands.AddFaq, user: str) -> str:
        """Add a FAQ entry (it answers from the next question)."""
        knowledge = self.baton.services.knowledge
        taken = {e.id for e in knowledge.entries()}
        entry = Entry(entry_id(command.question, taken), command.question, mrkdwn(command.answer))
        try:
            await asyncio.to_thread(knowledge.upsert, entry, user)
        except KbError as exc:
            return f"That entry can't be added: {exc}"
        with self.db.atomic():
            tuning.record(self.db, Change("faq", None, entry.id, user, now()))
        return f"Added FAQ entry `{entry.id}`. It answers from the next question."

    async def remove_faq(self, command: commands.RemoveFaq, user: str) -> str:
        """Remove a FAQ entry."""
        if not self.baton.services.knowledge.remove(command.entry_id):
            return f"There is no FAQ entry `{command.entry_id}`; `/baton faq list` shows the ids."
        with self.db.atomic():
            tuning.record(self.db, Change("faq", command.entry_id, None, user, now()))
        return f"Removed FAQ entry `{command.entry_id}`."

    async def list_faq(self, command: commands.ListFaq, user: str) -> str:
        """The FAQ entries and their ids."""
        entries = self.baton.services.knowledge.entries()
        lines = [f"• `{e.id}`: {e.question}" for e in entries[:LIST_LIMIT]]
        more = [f"… and {len(entries) - LIST_LIMIT} more (`baton faq list` prints them all)"]
        return f"*FAQ entries* ({len(entries)})\n" + "\n".join(
            lines + (more if len(entries) > LIST_LIMIT else [])
        )

    async def suggest_faq(self, command: commands.SuggestFaq, user: str) -> Message:
        """Questions Baton was unsure of that agents answered, each with Save and Dismiss."""
        return cards.suggestions(suggested(learning.suggestions(self.db, SUGGESTIONS_SHOWN)))

    async def csat(self, command: commands.ShowCsat, user: str) -> str:
        """CSAT over the last days."""
        report = csat.csat_report(self.db, now() - timedelta(days=command.days))
        return csat.render_report(report, command.days, name=lambda agent: f"<@{agent}>")

    async def stats(self, command: commands.ShowStats, user: str) -> str:
        """Handoffs now and over the last week."""
        opened = handoffs.open_handoffs(self.db)
        waiting = sum(c.status is Status.WAITING for c in opened)
        report = csat.csat_report(self.db, now() - timedelta(days=STATS_DAYS))
        counts = self.baton.outbox.counts()
        return "\n".join(
            [
                f"*Baton over the last {STATS_DAYS} days*",
                f"Open handoffs: {len(opened)} ({waiting} waiting, {len(opened) - waiting} claimed)",
                f"Conversations: {report.conversations}",
                f"Bot resolution rate: {csat.show_rate(report)}",
                f"CSAT: {csat.show_percent(report.overall)}",
                f"FAQ entries: {len(self.baton.services.knowledge.entries())}",
                f"Messages waiting to be delivered: {counts[State.PENDING]}, failed: {counts[State.FAILED]}",
            ]
        )

    async def audit(self, command: commands.ShowAudit, user: str) -> str:
        """The latest changes."""
        changes = tuning.audit_log(self.db)
        if not changes:
            return "No settings have been changed yet."
        lines = [f"• {c.at:%Y-%m-%d %H:%M} UTC <@{c.who}>: {describe(c)}" for c in changes]
        return "*Latest changes*\n" + "\n".join(lines)

    async def resolve(self, command: commands.Resolve, user: str) -> str | Message:
        """Resolve the conversation `user` owns; with several, offer a Resolve button for each.

        Slack does not say which thread a slash command was typed in, so the owner decides.
        """
        mine = [c for c in handoffs.open_handoffs(self.db) if c.owner == user]
        if not mine:
            return "You have no claimed conversation: press Resolve on a card, or react to it with ✅."
        if len(mine) > 1:
            return cards.pick_to_resolve([(c.channel, c.thread_ts, c.customers) for c in mine])
        conversation = mine[0]
        await self.bridge.move(conversation.key, Resolve(user, now()), f"resolve:{user}:{now().timestamp()}")
        return f"Resolved the conversation in <#{conversation.channel}>; the customer is asked to rate it."
