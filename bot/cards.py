"""Block Kit for the handoff: the agents' card, what the customer is told, the Home dashboard.

Pure functions from plain values to message dicts, like `bot.render`. Customer text shown to
agents has its mass mentions neutralised (`handoff.conversation.neutralise`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.render import Block, Message, escape, section, sections, shorten
from handoff.conversation import Status, neutralise
from handoff.triggers import Reason
from models.kb import Entry

CLAIM_ACTION = "baton_claim"
SUGGEST_ACTION = "baton_suggest"
RESOLVE_ACTION = "baton_resolve"
HAND_BACK_ACTION = "baton_hand_back"
CARD_ACTIONS = (CLAIM_ACTION, SUGGEST_ACTION, RESOLVE_ACTION, HAND_BACK_ACTION)
TALK_ACTION = "baton_talk"  # "Talk to a person", offered after a 👎
SAVE_FAQ_ACTION = "baton_save_faq"  # on a resolved card, a suggestion, the Home tab
DISMISS_FAQ_ACTION = "baton_dismiss_faq"
LEARN_ACTIONS = (SAVE_FAQ_ACTION, DISMISS_FAQ_ACTION)
SAVE_FAQ_VIEW = "baton_save_faq_view"
CARD_BLOCK = "baton_card"
FAQ_INPUTS = ("faq_question", "faq_alternates", "faq_answer")  # the modal's block ids
STATUS_BLOCK = "baton_status"
TRANSCRIPT_TURNS = 12  # the latest turns shown on a card (the thread link has the rest)
TURN_CHARS = 300


@dataclass(frozen=True)
class Line:
    """One transcript turn as the card shows it."""

    who: str
    text: str


@dataclass(frozen=True)
class CardInfo:
    """Everything a handoff card shows."""

    channel: str
    thread_ts: str
    customers: tuple[str, ...]  # display names
    org: str
    external: bool
    permalink: str | None
    reasons: tuple[Reason, ...]
    transcript: tuple[Line, ...] = ()
    suggestion: Entry | None = None
    status: str = "Waiting for a person"


def target(channel: str, thread_ts: str, extra: str = "") -> str:
    """A button value naming the customer thread (and, for a suggestion, the entry)."""
    return " ".join(part for part in (channel, thread_ts, extra) if part)


def read_target(value: str) -> tuple[str, str, str]:
    """The (channel, thread_ts, extra) a button value names; blanks when it names none."""
    parts = [*(value or "").split(" ", 2), "", "", ""]
    return parts[0], parts[1], parts[2]


def button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    """A button element."""
    element = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "value": value,
    }
    return {**element, "style": style} if style else element


def card(info: CardInfo) -> Message:
    """The handoff card posted in the agent channel."""
    who = ", ".join(info.customers) or "A customer"
    where = f"<#{info.channel}>" + (f" · <{info.permalink}|open the thread>" if info.permalink else "")
    kind = "external, Slack Connect" if info.external else "internal"
    reasons = "\n".join(f"• {escape(reason.detail)}" for reason in info.reasons) or "• asked for a person"
    value = target(info.channel, info.thread_ts)
    buttons = [button("Claim", CLAIM_ACTION, value, "primary")]
    if info.suggestion is not None:
        buttons.append(
            button(
                "Send suggestion", SUGGEST_ACTION, target(info.channel, info.thread_ts, info.suggestion.id)
            )
        )
    buttons += [
        button("Resolve", RESOLVE_ACTION, value),
        button("Hand back to Baton", HAND_BACK_ACTION, value),
    ]
    blocks: list[Block] = [
        section(f":raising_hand: *{escape(who)}* ({escape(info.org)}, {kind}) needs a person in {where}"),
        section(f"*Why*\n{reasons}"),
    ]
    if info.transcript:
        blocks += sections("*Conversation so far*\n" + transcript_text(info.transcript))
    if info.suggestion is not None:
        blocks += sections(
            f"*Baton's best guess* (`{info.suggestion.id}`)\n>" + quote(info.suggestion.answer)
        )
    blocks += [
        {"type": "actions", "block_id": CARD_BLOCK, "elements": buttons},
        status_block(info.status),
    ]
    fallback = f"{who} ({info.org}) needs a person: " + "; ".join(r.detail for r in info.reasons)
    return {"text": fallback, "blocks": blocks}


def transcript_text(lines: Sequence[Line]) -> str:
    """The latest turns, one per line, each cut short."""
    shown = list(lines)[-TRANSCRIPT_TURNS:]
    skipped = len(lines) - len(shown)
    head = [f"_… {skipped} earlier messages in the thread_"] if skipped else []
    return "\n".join(
        head + [f"*{escape(line.who)}:* {shorten(neutralise(line.text), TURN_CHARS)}" for line in shown]
    )


def quote(text: str, limit: int = 1500) -> str:
    """Text as a mrkdwn quote, its lines kept, at most `limit` characters."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    kept: list[str] = []
    for line in lines:
        room = limit - sum(len(k) + 1 for k in kept)
        if room <= 1:
            kept[-1] = kept[-1].rstrip("…") + "…" if kept else "…"
            break
        kept.append(shorten(line, room) if line else "")
    return "\n>".join(kept or [""])


def status_block(text: str) -> Block:
    """The card's status line (replaced as the conversation moves on)."""
    return {"type": "context", "block_id": STATUS_BLOCK, "elements": [{"type": "mrkdwn", "text": text}]}


def status_text(status: Status, agent: str | None, by: str | None = None) -> str:
    """The card's status line for a conversation's status."""
    if status is Status.WAITING:
        return ":hourglass: Waiting for a person"
    if status is Status.CLAIMED:
        return f":raising_hand: <@{agent}> has this conversation"
    if status is Status.RESOLVED:
        return f":white_check_mark: Resolved by <@{by or agent}>"
    return (
        f":robot_face: Handed back to Baton by <@{by}>" if by else ":robot_face: Baton has this conversation"
    )


def with_status(blocks: Sequence[Block], text: str) -> list[Block]:
    """The card's blocks with a new status line."""
    kept = [block for block in blocks if block.get("block_id") != STATUS_BLOCK]
    return [*kept, status_block(text)]


def with_save_button(blocks: Sequence[Block], value: str) -> list[Block]:
    """A resolved card: its buttons give way to "Save as FAQ" (Claim and the rest no longer apply)."""
    save = button("Save as FAQ", SAVE_FAQ_ACTION, value, "primary")
    actions = {"type": "actions", "block_id": CARD_BLOCK, "elements": [save]}
    return [actions if block.get("block_id") == CARD_BLOCK else block for block in blocks]


def saved_note(entry_id: str, who: str) -> str:
    """Said in a card's thread once its answer became a FAQ entry."""
    return f":books: <@{who}> saved this answer as FAQ entry `{entry_id}`: Baton answers it from now on."


def save_faq_modal(question: str, answer: str, value: str) -> dict[str, Any]:
    """The "Save as FAQ" modal, prefilled with the customer's question and the agent's answer."""

    def text_input(block_id: str, label: str, initial: str, multiline: bool, optional: bool) -> Block:
        element = {"type": "plain_text_input", "action_id": "value", "multiline": multiline}
        element |= {"initial_value": initial} if initial else {}
        block = {"type": "input", "block_id": block_id, "optional": optional, "element": element}
        return block | {"label": {"type": "plain_text", "text": label}}

    question_id, alternates_id, answer_id = FAQ_INPUTS
    return {
        "type": "modal",
        "callback_id": SAVE_FAQ_VIEW,
        "private_metadata": value,
        "title": {"type": "plain_text", "text": "Save as FAQ"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            text_input(question_id, "Question", question, False, False),
            text_input(alternates_id, "Other ways to ask it (one per line)", "", True, True),
            text_input(answer_id, "Answer", answer, True, False),
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "Baton answers this from the next message on."}],
            },
        ],
    }


def read_faq_modal(values: dict[str, Any]) -> tuple[str, tuple[str, ...], str]:
    """The question, alternates and answer of a submitted "Save as FAQ" modal."""

    def value(block_id: str) -> str:
        return str(((values.get(block_id) or {}).get("value") or {}).get("value") or "").strip()

    question_id, alternates_id, answer_id = FAQ_INPUTS
    alternates = tuple(line.strip() for line in value(alternates_id).splitlines() if line.strip())
    return value(question_id), alternates, value(answer_id)


@dataclass(frozen=True)
class Suggested:
    """A question an agent answered after Baton was unsure: a FAQ entry waiting to be saved."""

    question: str
    answer: str
    agent: str | None
    value: str  # the button value naming its episode


def suggestion_blocks(found: Sequence[Suggested], dismiss: bool = True) -> list[Block]:
    """Each suggested entry with its buttons."""
    blocks: list[Block] = []
    for s in found:
        by = f" (answered by <@{s.agent}>)" if s.agent else ""
        question, answer = neutralise(shorten(s.question, 200)), neutralise(shorten(s.answer, 300))
        blocks.append(section(f"*Q:* {question}{by}\n*A:* {answer}"))
        buttons = [button("Save as FAQ", SAVE_FAQ_ACTION, s.value, "primary")]
        buttons += [button("Dismiss", DISMISS_FAQ_ACTION, s.value)] if dismiss else []
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def suggestions(found: Sequence[Suggested]) -> Message:
    """`/baton faq suggest`: questions agents answered after Baton was unsure."""
    if not found:
        text = "No suggestions: no question Baton was unsure of has been answered by an agent lately."
        return command_reply(text)
    head = f"*Suggested FAQ entries* ({len(found)}): questions Baton was unsure of, answered by agents."
    text = head + "".join(f"\n• {s.question}" for s in found)
    return {"text": text, "blocks": [section(head), *suggestion_blocks(found)], "response_type": "ephemeral"}


def pick_to_resolve(owned: Sequence[tuple[str, str, tuple[str, ...]]]) -> Message:
    """`/baton resolve` by an agent with several conversations: a Resolve button for each."""
    text = f"You have {len(owned)} conversations. Which one is resolved?"
    blocks: list[Block] = [section(text)]
    for channel, thread_ts, customers in owned:
        who = ", ".join(f"<@{c}>" for c in customers) or "a customer"
        resolve = button("Resolve", RESOLVE_ACTION, target(channel, thread_ts))
        blocks.append(section(f"<#{channel}> with {who}") | {"accessory": resolve})
    return {"text": text, "blocks": blocks, "response_type": "ephemeral"}


def closing(agent: str | None) -> Message:
    """The closing message: the thread is resolved, and how did it go?"""
    who = f"<@{agent}> marked" if agent else "We marked"
    text = (
        f"{who} this conversation as resolved. How did we do? React to this message with "
        ":+1: or :-1:. If you need anything else, just write here and I'll pick it up."
    )
    return {"text": text, "blocks": [section(text)]}


def back_to_bot() -> Message:
    """The thread is Baton's again."""
    text = "I'm back on this thread. Ask me anything, and if you'd like a person again, just say so."
    return {"text": text, "blocks": [section(text)]}


def offer_human(channel: str, thread_ts: str) -> Message:
    """After a 👎: an apology and a button to reach a person."""
    text = "Sorry that didn't help. Would you like a person from our team to take over?"
    buttons = [button("Talk to a person", TALK_ACTION, target(channel, thread_ts), "primary")]
    return {
        "text": text,
        "blocks": [section(text), {"type": "actions", "block_id": "baton_offer", "elements": buttons}],
    }


def offer_taken() -> Message:
    """The offer once the customer took it: the button gives way to a note."""
    text = "You asked for a person: they'll reply in this thread."
    return {"text": text, "blocks": [section(text)]}


def realert(waited: timedelta, reasons: Sequence[Reason], card_link: str | None) -> Message:
    """A reminder in the agent channel of a handoff nobody has claimed."""
    minutes = max(1, round(waited.total_seconds() / 60))
    link = f"<{card_link}|this handoff>" if card_link else "a handoff"
    why = "; ".join(reason.detail for reason in reasons) or "asked for a person"
    text = f":rotating_light: A customer has waited {minutes} min for a person: {link} ({escape(why)})."
    return {"text": text, "blocks": [section(text)]}


def ephemeral(text: str) -> Message:
    """A private answer to the person who acted."""
    return {"text": text, "response_type": "ephemeral", "replace_original": False}


def command_reply(text: str) -> Message:
    """A `/baton` answer, seen only by whoever typed it."""
    return {"text": text, "blocks": sections(text), "response_type": "ephemeral"}


@dataclass(frozen=True)
class OpenHandoff:
    """One open handoff as the Home tab shows it."""

    channel: str
    customers: tuple[str, ...]
    waited: timedelta
    agent: str | None


@dataclass(frozen=True)
class Dashboard:
    """The handoff part of the Home tab."""

    open: tuple[OpenHandoff, ...] = ()
    csat_today: str = "no votes"
    resolution_today: str = "no conversations"
    gaps: tuple[str, ...] = ()
    reviews: tuple[str, ...] = ()
    suggestions: tuple[Suggested, ...] = field(default_factory=tuple)


def dashboard(board: Dashboard) -> list[Block]:
    """Open handoffs, today's numbers and knowledge gaps, as Home tab blocks."""
    handoffs = [
        f"• <#{h.channel}> {', '.join(f'<@{c}>' for c in h.customers) or 'a customer'}: "
        + (f"<@{h.agent}> has it" if h.agent else f"waiting {show_wait(h.waited)}")
        for h in board.open
    ]
    blocks: list[Block] = [
        {"type": "divider"},
        section(
            "*Open handoffs*\n" + ("\n".join(handoffs) if handoffs else "None: every thread is answered.")
        ),
        section(f"*Today*\nCSAT: {board.csat_today}\nBot resolution rate: {board.resolution_today}"),
    ]
    gaps = [f"• {escape(shorten(g, 120))}" for g in board.gaps]
    reviews = [f"• {escape(r)}" for r in board.reviews]
    blocks.append(section("*Recent questions I was unsure of*\n" + ("\n".join(gaps) or "None lately.")))
    blocks.append(section("*FAQ entries with 👎*\n" + ("\n".join(reviews) or "None.")))
    blocks.append(section("*Suggested FAQ entries* (answered by agents after I was unsure)"))
    blocks += suggestion_blocks(board.suggestions, dismiss=False) or [section("None yet.")]
    return blocks


def show_wait(waited: timedelta) -> str:
    """A waiting time for people: "3 min", "2 h 5 min"."""
    minutes = int(waited.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
