"""Block Kit for everything Baton posts: pure functions from plain values to message dicts.

A message is `{"text": fallback, "blocks": [...]}` (the text is what notifications and
screen readers show); a view is `{"type": "home", "blocks": [...]}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.kb import Entry

Block = dict[str, Any]
Message = dict[str, Any]

PICK_ACTION = "baton_pick"  # action ids baton_pick_1, baton_pick_2: one per offered entry
SECTION_LIMIT = 3000  # characters of mrkdwn in one section block
BUTTON_LIMIT = 75  # characters of a button label
HANDOFF_TEXT = (
    "I'm passing you to a person on our team. They'll reply right here in this thread, "
    "so there's no need to repeat yourself."
)


def escape(text: str) -> str:
    """Text shown as is inside mrkdwn (Slack's three control characters escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's escaping of &, < and > in message and command text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_MARKUP = re.compile(r"<(?:https?://|mailto:|[@#!])[^<>]*>|&(?:amp|lt|gt);|[&<>]")


def mrkdwn(typed: str) -> str:
    """Typed text as mrkdwn: Slack's links, mentions and entities kept, any other &, < and > escaped."""
    return _MARKUP.sub(lambda m: escape(m.group()) if len(m.group()) == 1 else m.group(), typed)


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def section(text: str) -> Block:
    """A section block of mrkdwn."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
    """A small grey line of mrkdwn."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def sections(text: str, limit: int = SECTION_LIMIT) -> list[Block]:
    """Long mrkdwn split on line breaks into sections Slack accepts."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:  # a single huge line: cut it hard
            chunks.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    chunks.append(current)
    return [section(chunk.rstrip("\n")) for chunk in chunks if chunk.strip()]


def warned(reply: str | Message, warning: str | None) -> str | Message:
    """A reply with a warning in front of it (a `/baton` answer while something is wrong)."""
    if not warning:
        return reply
    line = f":warning: {warning}"
    if isinstance(reply, str):
        return f"{line}\n\n{reply}"
    return {
        **reply,
        "text": f"{line}\n\n{reply.get('text', '')}",
        "blocks": [section(line), *reply.get("blocks", [])],
    }


def answer(entry: Entry) -> Message:
    """A FAQ answer, with a line saying where it came from."""
    source = f"From the FAQ: _{escape(shorten(entry.question, 150))}_"
    links = " · ".join(f"<{link}|More>" for link in entry.links[:2])
    note = " · ".join(part for part in (source, links, "Not what you needed? Just say so.") if part)
    return {"text": entry.answer, "blocks": [*sections(entry.answer), context(note)]}


def clarify(choices: Sequence[Entry]) -> Message:
    """Ask which of two close FAQ entries the customer means, as buttons."""
    lead = "I want to get this right. Which of these do you mean?"
    buttons = [
        {
            "type": "button",
            "action_id": f"{PICK_ACTION}_{number}",
            "text": {"type": "plain_text", "text": shorten(entry.question, BUTTON_LIMIT), "emoji": True},
            "value": entry.id,
        }
        for number, entry in enumerate(choices, start=1)
    ]
    fallback = lead + " " + " or ".join(f"“{entry.question}”" for entry in choices)
    return {
        "text": fallback,
        "blocks": [section(lead), {"type": "actions", "block_id": "baton_choices", "elements": buttons}],
    }


def chosen(entry: Entry) -> Message:
    """The clarifying question once the customer picked: the buttons give way to the choice."""
    text = f"You picked: *{escape(shorten(entry.question, 150))}*"
    return {"text": f"You picked: {entry.question}", "blocks": [section(text)]}


def rephrase() -> Message:
    """Baton is not sure what the customer needs and has nothing close to offer."""
    text = (
        "I'm not sure I understood. Could you tell me a bit more about what you need? "
        "If you'd rather talk to a person, just ask."
    )
    return {"text": text, "blocks": [section(text)]}


def handoff_notice(text: str = HANDOFF_TEXT) -> Message:
    """Tell the customer a person is joining their thread."""
    return {"text": text, "blocks": [section(f":wave: {text}")]}


def file_note() -> Message:
    """A polite note for a file shared without any words."""
    text = (
        "Thanks for the file! I can only read text, so could you write your question in a "
        "message? I (or a person on our team) will take it from there."
    )
    return {"text": text, "blocks": [section(text)]}


def pick_refused() -> Message:
    """Someone other than a customer pressed a choice button."""
    return {"text": "Only the customer who asked can pick an answer here.", "response_type": "ephemeral"}


def command_help() -> Message:
    """The `/baton` answer until the admin commands arrive."""
    text = (
        "*Baton* answers customers' questions in their threads from the FAQ and passes them "
        "to a person when it is unsure, when they are upset, or when they ask for one."
    )
    return {"text": text, "blocks": [section(text)], "response_type": "ephemeral"}


@dataclass(frozen=True)
class HomeStats:
    """What the App Home tab shows."""

    faq_entries: int
    open_handoffs: int
    support_channels: tuple[str, ...]
    agent_channel: str
    more: tuple[Block, ...] = ()  # the handoff dashboard (bot.cards)


def home(stats: HomeStats) -> dict[str, Any]:
    """The App Home view."""
    where = (
        ", ".join(f"<#{channel}>" for channel in stats.support_channels)
        if stats.support_channels
        else "every channel I'm in"
    )
    about = (
        f"I answer customers in {where} (and in DMs) from the FAQ, in the thread of their message, "
        f"and pass the thread to a person in <#{stats.agent_channel}> when I can't help."
    )
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Baton", "emoji": True}},
        section(about),
        {"type": "divider"},
        section(f"*FAQ entries:* {stats.faq_entries}\n*Threads waiting for a person:* {stats.open_handoffs}"),
        context("Ask me anything in a support channel, or @mention me."),
        *stats.more,
    ]
    return {"type": "home", "blocks": blocks}
