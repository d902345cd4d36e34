"""Configuration from the environment: the only reader of `os.environ`.

Raises `ConfigError` naming every missing or malformed variable at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_API_URL = "https://slack.com/api/"
_CHANNEL = re.compile(r"^[CGD][A-Z0-9_]{2,}$")
_USER = re.compile(r"^[UW][A-Z0-9_]{2,}$")
_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only: str.isdigit() is true for '²', which int() refuses
MAX_REALERT_MINUTES = 24 * 60
DEFAULT_HANDOFF_TEXT = (
    "I'm passing you to a person on our team. They'll reply right here in this thread, "
    "so there's no need to repeat yourself."
)
DEFAULT_REALERT_MINUTES = 10


class ConfigError(Exception):
    """One or more settings are missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """Everything Baton reads from its environment."""

    db_path: Path = Path("baton.db")
    faq_path: Path | None = None  # None: the bundled sample FAQ
    model_dir: Path | None = None  # None: the bundled all-MiniLM-L6-v2
    sentiment_model: Path | None = None  # None: the bundled sentiment head
    bot_token: str = ""
    signing_secret: str = ""
    app_token: str = ""
    api_url: str = DEFAULT_API_URL
    agent_channel: str = ""
    support_channels: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    port: int = 3000
    handoff_text: str = DEFAULT_HANDOFF_TEXT
    realert_after: float = DEFAULT_REALERT_MINUTES * 60  # seconds an unclaimed handoff waits
    tune: bool = False  # fine-tune the encoder on the KB when it is large enough (BATON_TUNE=1)
    tuned_dir: Path | None = None  # None: .baton/tuned next to the database

    @property
    def tuned_root(self) -> Path:
        """Where tuned encoders are cached, one folder per (base model, KB, recipe)."""
        return self.tuned_dir or self.db_path.parent / ".baton" / "tuned"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], slack: str | None = None) -> Settings:
        """Read the environment; `slack` is None, "http" or "socket" for what must be present."""
        problems: list[str] = []
        get = lambda name: environ.get(name, "").strip()  # noqa: E731
        settings = cls(
            db_path=_database(get("BATON_DB"), problems),
            faq_path=_existing(get("BATON_FAQ"), "BATON_FAQ", problems, file=True),
            model_dir=_existing(get("BATON_MODEL"), "BATON_MODEL", problems, file=False),
            sentiment_model=_existing(
                get("BATON_SENTIMENT_MODEL"), "BATON_SENTIMENT_MODEL", problems, file=None
            ),
            bot_token=get("SLACK_BOT_TOKEN"),
            signing_secret=get("SLACK_SIGNING_SECRET"),
            app_token=get("SLACK_APP_TOKEN"),
            api_url=_api_url(get("SLACK_API_URL"), problems),
            agent_channel=get("BATON_AGENT_CHANNEL"),
            support_channels=_ids(
                get("BATON_SUPPORT_CHANNELS"), _CHANNEL, "BATON_SUPPORT_CHANNELS", problems
            ),
            admins=_ids(get("BATON_ADMINS"), _USER, "BATON_ADMINS", problems),
            port=_port(get("PORT"), problems),
            handoff_text=get("BATON_HANDOFF_TEXT") or DEFAULT_HANDOFF_TEXT,
            realert_after=_minutes(get("BATON_REALERT_MINUTES"), problems) * 60,
            tune=_flag(get("BATON_TUNE"), "BATON_TUNE", problems),
            tuned_dir=_directory(get("BATON_TUNED_DIR"), "BATON_TUNED_DIR", problems),
        )
        if slack:
            settings._require_slack(slack, problems)
        if problems:
            raise ConfigError("Baton cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
        return settings

    def _require_slack(self, mode: str, problems: list[str]) -> None:
        required = {"SLACK_BOT_TOKEN": self.bot_token, "BATON_AGENT_CHANNEL": self.agent_channel}
        required["SLACK_SIGNING_SECRET" if mode == "http" else "SLACK_APP_TOKEN"] = (
            self.signing_secret if mode == "http" else self.app_token
        )
        problems.extend(f"{name} is not set" for name, value in required.items() if not value)
        if self.bot_token and not self.bot_token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN must be a bot token starting with 'xoxb-'")
        if mode == "socket" and self.app_token and not self.app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'")
        if self.agent_channel and not _CHANNEL.match(self.agent_channel):
            problems.append(f"BATON_AGENT_CHANNEL {self.agent_channel!r} is not a channel ID like C0123ABCD")


def _existing(value: str, name: str, problems: list[str], file: bool | None) -> Path | None:
    """A path that must exist (a file, a directory, or either when `file` is None)."""
    if not value:
        return None
    path = Path(value).expanduser()
    ok = path.exists() if file is None else (path.is_file() if file else path.is_dir())
    if not ok:
        kind = "path" if file is None else ("file" if file else "directory")
        problems.append(f"{name}={value} is not an existing {kind}")
    return path


def _database(value: str, problems: list[str]) -> Path:
    """The database file; its folder may be missing (it is created), but not the folder above it."""
    if not value:
        return Path("baton.db")
    path = Path(value).expanduser()
    folder = path.parent
    if path.is_dir():
        problems.append(f"BATON_DB={value} is a directory, not a database file")
    elif folder.exists() and not folder.is_dir():
        problems.append(f"BATON_DB={value}: {folder} is a file, not a folder")
    elif not folder.exists() and not folder.parent.is_dir():
        problems.append(
            f"BATON_DB={value}: neither its folder {folder} nor {folder.parent} exists "
            "(Baton creates only the database's own folder)"
        )
    return path


def _directory(value: str, name: str, problems: list[str]) -> Path | None:
    """A folder that exists or can be created (under an existing, writable folder)."""
    if not value:
        return None
    path = Path(value).expanduser()
    if path.exists():
        if not path.is_dir():
            problems.append(f"{name}={value} is not a directory")
        return path
    ancestor = next(parent for parent in path.absolute().parents if parent.exists())
    if not ancestor.is_dir():
        problems.append(f"{name}={value} cannot be created: {ancestor} is a file, not a folder")
    elif not os.access(ancestor, os.W_OK | os.X_OK):
        problems.append(f"{name}={value} cannot be created: {ancestor} is not writable")
    return path


def _api_url(value: str, problems: list[str]) -> str:
    if not value:
        return DEFAULT_API_URL
    if not value.startswith(("http://", "https://")):
        problems.append(f"SLACK_API_URL={value} must start with http:// or https://")
    return value if value.endswith("/") else value + "/"


def _ids(value: str, pattern: re.Pattern[str], name: str, problems: list[str]) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in value.replace(" ", ",").split(",") if part.strip())
    bad = [i for i in ids if not pattern.match(i)]
    if bad:
        problems.append(f"{name} has malformed ID(s): {', '.join(bad)}")
    return ids


def _port(value: str, problems: list[str]) -> int:
    if not value:
        return 3000
    if not _PORT.fullmatch(value) or not 0 < int(value) < 65536:
        problems.append(f"PORT={value} must be a number from 1 to 65535")
        return 3000
    return int(value)


def _minutes(value: str, problems: list[str]) -> float:
    if not value:
        return DEFAULT_REALERT_MINUTES
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not 0 < minutes <= MAX_REALERT_MINUTES:
        problems.append(
            f"BATON_REALERT_MINUTES={value} must be a number of minutes above 0 "
            f"and at most {MAX_REALERT_MINUTES} (a day)"
        )
        return DEFAULT_REALERT_MINUTES
    return minutes


def _flag(value: str, name: str, problems: list[str]) -> bool:
    if value.lower() in ("", "0", "false", "no", "off"):
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    problems.append(f"{name}={value} must be 1 or 0")
    return False
