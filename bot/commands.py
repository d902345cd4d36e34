"""The `/baton` slash command: the text an admin typed, read as a command.

`parse` is pure and raises nothing: any text gives a `Command`, or a `UsageError` whose
message says what is wrong and how to write it. Running a command is the Slack layer's
job; `Command.changes_settings` marks the ones only admins may use.
This module defines no exception types (`UsageError` is a value, not an exception).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from bot.render import unescape
from handoff.tuning import KNOBS, Knob, SettingError, compile_keyword, parse_value, show_value, tidy_keyword
from models.kb import MAX_TEXT

DEFAULT_CSAT_DAYS = 7
MAX_CSAT_DAYS = 365
_QUOTES = {'"': '"', "“": "”", "„": "“", "'": "'", "‘": "’", "«": "»"}  # Slack may send curly quotes
_WORD = re.compile(r"\s*(\S+)\s*(.*)", re.DOTALL)
_DAYS = re.compile(r"(\d{1,6})\s*(?:d|days?)?", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    """A `/baton` command; `changes_settings` marks the admin-only ones."""

    changes_settings: ClassVar[bool] = False


@dataclass(frozen=True)
class Help(Command):
    """List every command."""


@dataclass(frozen=True)
class ShowTriggers(Command):
    """Show every trigger setting and keyword."""


@dataclass(frozen=True)
class SetSetting(Command):
    """Change one numeric setting; `value` is a number as admins write it, or "default"."""

    changes_settings: ClassVar[bool] = True
    key: str
    value: str


@dataclass(frozen=True)
class AddKeyword(Command):
    """Add a handoff keyword or phrase."""

    changes_settings: ClassVar[bool] = True
    phrase: str


@dataclass(frozen=True)
class RemoveKeyword(Command):
    """Remove a handoff keyword or phrase."""

    changes_settings: ClassVar[bool] = True
    phrase: str


@dataclass(frozen=True)
class ListKeywords(Command):
    """List the handoff keywords."""


@dataclass(frozen=True)
class AddFaq(Command):
    """Add a FAQ entry from a question and its answer."""

    changes_settings: ClassVar[bool] = True
    question: str
    answer: str


@dataclass(frozen=True)
class RemoveFaq(Command):
    """Remove a FAQ entry by id."""

    changes_settings: ClassVar[bool] = True
    entry_id: str


@dataclass(frozen=True)
class ListFaq(Command):
    """List the FAQ entries."""


@dataclass(frozen=True)
class SuggestFaq(Command):
    """List questions agents answered that could become FAQ entries."""


@dataclass(frozen=True)
class ShowCsat(Command):
    """Show CSAT over the last `days` days."""

    days: int = DEFAULT_CSAT_DAYS


@dataclass(frozen=True)
class ShowStats(Command):
    """Show handoff and answer statistics."""


@dataclass(frozen=True)
class ShowAudit(Command):
    """Show the latest setting changes."""


@dataclass(frozen=True)
class Resolve(Command):
    """Resolve the conversation of the handoff card whose thread this is typed in."""


@dataclass(frozen=True)
class UsageError:
    """Text that is not a command: the message says what is wrong and how to write it."""

    message: str


Parsed = Command | UsageError

USAGE = (
    ("help", "show this list", False),
    ("triggers", "show every trigger setting and keyword", False),
    ("set <setting> <value>", "change a setting, like `set confidence 0.55` (or `default`)", True),
    (
        "keyword add <phrase>",
        'hand off when a message contains the phrase (quotes allowed: "cancel my plan")',
        True,
    ),
    ("keyword remove <phrase>", "stop handing off on the phrase", True),
    ("keyword list", "list the handoff keywords", False),
    ("faq add <question> | <answer>", "add a FAQ entry; it answers from the next question", True),
    ("faq remove <id>", "remove a FAQ entry", True),
    ("faq list", "list the FAQ entries and their ids", False),
    ("faq suggest", "questions agents answered that could become FAQ entries", False),
    ("csat [days]", f"satisfaction from 👍/👎 over the last days (default {DEFAULT_CSAT_DAYS})", False),
    ("stats", "handoffs, answers and the bot resolution rate", False),
    ("audit", "the latest setting changes: who, when, old → new", False),
    ("resolve", "resolve the conversation you have claimed (with several, pick one)", False),
)


def help_text() -> str:
    """Every command with what it does; admin-only ones are marked."""
    lines = ["*Baton commands* (those marked † are for admins)"]
    lines += [f"• `/baton {usage}`{' †' if admin else ''}: {what}" for usage, what, admin in USAGE]
    lines.append("Settings: " + ", ".join(f"`{knob.key}`" for knob in KNOBS) + ".")
    return "\n".join(lines)


def parse(text: str) -> Parsed:
    """Read `/baton` text as a command, or say what is wrong and how to write it."""
    word, rest = split_word(unescape(text))
    if not word:
        return Help()
    parser = _COMMANDS.get(word.casefold())
    if parser is None:
        return unknown(word, rest)
    return parser(rest)


# -- one parser per first word -----------------------------------------------------------


def parse_help(rest: str) -> Parsed:
    """`help`, whatever follows it."""
    return Help()


def no_arguments(command: Command, word: str) -> Callable[[str], Parsed]:
    """A parser for a command that takes nothing after its word."""

    def parse_bare(rest: str) -> Parsed:
        if rest:
            return UsageError(f"`{word}` takes nothing after it: write `/baton {word}`.")
        return command

    return parse_bare


def parse_set(rest: str) -> Parsed:
    """`set <setting> <value>`."""
    words = rest.replace("=", " ").split()
    if not words:
        names = ", ".join(f"`{knob.key}`" for knob in KNOBS)
        return UsageError(
            f"`set` needs a setting and a value, like `/baton set confidence 0.55`. Settings: {names}."
        )
    found = find_setting(words)
    if isinstance(found, UsageError):
        return found
    knob, values = found
    if not values:
        return UsageError(f"{requirement(knob)}.")
    if len(values) > 1:
        return UsageError(f"That is more than one value. {requirement(knob)}.")
    return read_value(knob, values[0])


def find_setting(words: list[str]) -> tuple[Knob, list[str]] | UsageError:
    """The setting named by the first word (or words, as in `max fallbacks`), and the words left."""
    for size in range(1, len(words) + 1):
        knob = knob_named("-".join(words[:size]))
        if knob is not None:
            return knob, words[size:]
    known = [knob.key for knob in KNOBS]
    close = difflib.get_close_matches(words[0].casefold(), known, n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    names = ", ".join(f"`{key}`" for key in known)
    return UsageError(f"There is no setting called `{shorten(words[0])}`.{hint} Settings: {names}.")


def knob_named(name: str) -> Knob | None:
    """The setting with this key (`max_fallbacks` and `max-fallbacks` alike), or None."""
    wanted = name.casefold().replace("_", "-")
    return next((k for k in KNOBS if wanted in (k.key, k.field.replace("_", "-"))), None)


def read_value(knob: Knob, raw: str) -> Parsed:
    """A setting's new value, checked like `handoff.tuning` will check it."""
    if raw.casefold() == "default":
        return SetSetting(knob.key, "default")
    try:
        value = parse_value(knob, raw)
    except SettingError:
        verdict = "won't do" if is_number(raw) else "is not a number"
        return UsageError(f"`{shorten(raw)}` {verdict}: {requirement(knob)}.")
    return SetSetting(knob.key, show_value(value))


def is_number(raw: str) -> bool:
    """Whether the text reads as a number at all (whatever its range)."""
    try:
        float(raw.replace("−", "-"))
    except ValueError:
        return False
    return True


def requirement(knob: Knob) -> str:
    """How to write a value: "`set confidence` needs a number between 0 and 1, like ..."."""
    kind = "a whole number" if knob.whole else "a number"
    low, high = show_value(knob.low), show_value(knob.high)
    example = f"`/baton set {knob.key} {knob.example}`"
    return f"`set {knob.key}` needs {kind} between {low} and {high}, like {example} (or `default`)"


def parse_keyword(rest: str) -> Parsed:
    """`keyword add|remove <phrase>` or `keyword list`."""
    action, phrase = split_word(rest)
    actions: dict[str, Callable[[str], Parsed]] = {
        "add": add_keyword,
        "remove": remove_keyword,
        "rm": remove_keyword,
        "delete": remove_keyword,
        "list": lambda extra: ListKeywords() if not extra else list_takes_nothing("keyword"),
    }
    return sub_command("keyword", action, phrase, actions, ("add", "remove", "list"))


def add_keyword(rest: str) -> Parsed:
    """The phrase of `keyword add`, checked like `handoff.tuning` will check it."""
    phrase = unquote(rest)
    if not phrase:
        return UsageError("`keyword add` needs a word or phrase, like `/baton keyword add chargeback`.")
    try:
        phrase = tidy_keyword(phrase)
        compile_keyword(phrase)
    except SettingError as exc:
        return UsageError(str(exc))
    except (OverflowError, RecursionError):  # re.compile's other refusals (huge or deep patterns)
        return UsageError(
            "That pattern is too large to use. Write a plain word or phrase, or a shorter pattern."
        )
    return AddKeyword(phrase)


def remove_keyword(rest: str) -> Parsed:
    """The phrase of `keyword remove`."""
    phrase = unquote(rest)
    if not phrase:
        return UsageError("`keyword remove` needs the keyword, like `/baton keyword remove chargeback`.")
    try:
        return RemoveKeyword(tidy_keyword(phrase))
    except SettingError as exc:
        return UsageError(str(exc))


def parse_keywords(rest: str) -> Parsed:
    """`keywords`: the list."""
    return ListKeywords() if not rest else parse_keyword(rest)


def parse_faq(rest: str) -> Parsed:
    """`faq add <question> | <answer>`, `faq remove <id>`, `faq list`, `faq suggest`."""
    action, tail = split_word(rest)
    actions: dict[str, Callable[[str], Parsed]] = {
        "add": add_faq,
        "remove": remove_faq,
        "rm": remove_faq,
        "delete": remove_faq,
        "list": lambda extra: ListFaq() if not extra else list_takes_nothing("faq"),
        "suggest": lambda extra: SuggestFaq() if not extra else takes_nothing("faq suggest"),
        "suggestions": lambda extra: SuggestFaq() if not extra else takes_nothing("faq suggest"),
    }
    return sub_command("faq", action, tail, actions, ("add", "remove", "list", "suggest"))


FAQ_EXAMPLE = (
    "`/baton faq add How do I reset my password? | Open Settings, then Security, then Reset password.`"
)


def add_faq(rest: str) -> Parsed:
    """A question and its answer, separated by `|`."""
    question, bar, answer = rest.partition("|")
    question, answer = unquote(question), unquote(answer)
    if not bar:
        return UsageError(f"`faq add` needs a question and an answer separated by `|`, like {FAQ_EXAMPLE}")
    if not question or not answer:
        missing = "question" if not question else "answer"
        return UsageError(f"The {missing} is empty: write both sides of the `|`, like {FAQ_EXAMPLE}")
    for name, value in (("question", question), ("answer", answer)):
        if len(value) > MAX_TEXT:
            return UsageError(f"The {name} is {len(value)} characters long; keep it under {MAX_TEXT}.")
    return AddFaq(question, answer)


def remove_faq(rest: str) -> Parsed:
    """One entry id."""
    ids = unquote(rest).split()
    if len(ids) != 1:
        problem = "needs an" if not ids else "takes one"
        return UsageError(
            f"`faq remove` {problem} entry id, like `/baton faq remove reset-password`; "
            "`/baton faq list` shows the ids."
        )
    return RemoveFaq(ids[0])


def parse_csat(rest: str) -> Parsed:
    """`csat` or `csat <days>`."""
    if not rest:
        return ShowCsat()
    match = _DAYS.fullmatch(rest)
    if match is None or not 1 <= int(match.group(1)) <= MAX_CSAT_DAYS:
        return UsageError(
            f"`csat` takes a number of days from 1 to {MAX_CSAT_DAYS}, like `/baton csat 30`, "
            f"or nothing for the last {DEFAULT_CSAT_DAYS} days."
        )
    return ShowCsat(int(match.group(1)))


_COMMANDS: dict[str, Callable[[str], Parsed]] = {
    "help": parse_help,
    "?": parse_help,
    "triggers": no_arguments(ShowTriggers(), "triggers"),
    "settings": no_arguments(ShowTriggers(), "triggers"),
    "set": parse_set,
    "keyword": parse_keyword,
    "keywords": parse_keywords,
    "faq": parse_faq,
    "csat": parse_csat,
    "stats": no_arguments(ShowStats(), "stats"),
    "audit": no_arguments(ShowAudit(), "audit"),
    "resolve": no_arguments(Resolve(), "resolve"),
}
_GROUPS = ("keyword", "faq")
_VERBS = ("add", "remove", "list", "suggest")


# -- helpers -----------------------------------------------------------------------------


def sub_command(
    group: str,
    action: str,
    rest: str,
    actions: dict[str, Callable[[str], Parsed]],
    shown: tuple[str, ...],
) -> Parsed:
    """Dispatch `group <action> ...`, or say which actions there are."""
    ways = ", ".join(f"`/baton {group} {name}`" for name in shown)
    if not action:
        return UsageError(f"`{group}` needs one of: {ways}.")
    parser = actions.get(action.casefold())
    if parser is not None:
        return parser(rest)
    close = difflib.get_close_matches(action.casefold(), list(shown), n=1)
    if close:
        again = " ".join(part for part in (group, close[0], shorten(rest)) if part)
        return UsageError(f"I don't know `{group} {shorten(action)}`. Did you mean `/baton {again}`?")
    return UsageError(f"I don't know `{group} {shorten(action)}`. Try one of: {ways}.")


def unknown(word: str, rest: str) -> UsageError:
    """An unknown first word: suggest the closest command."""
    folded = word.casefold()
    group, tail = split_word(rest)
    if folded in _VERBS and group.casefold() in _GROUPS:  # "add keyword refund"
        again = " ".join(part for part in (group.casefold(), folded, shorten(tail)) if part)
        return UsageError(
            f"Did you mean `/baton {again}`? The word order is `{group.casefold()} {folded} …`."
        )
    close = difflib.get_close_matches(folded, [w for w in _COMMANDS if w != "?"], n=1)
    hint = f" Did you mean `/baton {close[0]}`?" if close else ""
    return UsageError(f"I don't know `/baton {shorten(word)}`.{hint} `/baton help` lists every command.")


def takes_nothing(usage: str) -> UsageError:
    """A command given words it does not take."""
    return UsageError(f"`{usage}` takes nothing after it: write `/baton {usage}`.")


def list_takes_nothing(group: str) -> UsageError:
    """`keyword list` or `faq list` given more words."""
    return takes_nothing(f"{group} list")


def split_word(text: str) -> tuple[str, str]:
    """The first word of the text and the rest, trimmed."""
    match = _WORD.match(text)
    if match is None:
        return "", ""
    return match.group(1), match.group(2).strip()


def unquote(text: str) -> str:
    """The text trimmed, without one pair of quotes around it."""
    text = text.strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        return text[1:-1].strip()
    return text


def shorten(text: str, limit: int = 40) -> str:
    """User text fit to echo inside backticks."""
    text = " ".join(text.replace("`", "'").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
