"""Settings from the environment: defaults, and one error naming every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import DEFAULT_API_URL, ConfigError, Settings


def test_defaults_need_nothing() -> None:
    settings = Settings.from_env({})
    assert settings.db_path == Path("baton.db") and settings.faq_path is None
    assert settings.api_url == DEFAULT_API_URL and settings.port == 3000


def test_every_problem_is_named_at_once() -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxp-user",
        "PORT": "eighty",
        "BATON_ADMINS": "U1AB,bob",
        "SLACK_API_URL": "ftp://x",
    }
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env, slack="http")
    message = str(error.value)
    for fragment in (
        "SLACK_SIGNING_SECRET is not set",
        "BATON_AGENT_CHANNEL is not set",
        "xoxb-",
        "PORT=eighty",
        "bob",
        "ftp://x",
    ):
        assert fragment in message


def test_slack_settings_are_parsed() -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "BATON_AGENT_CHANNEL": "C0AGENTS",
        "BATON_SUPPORT_CHANNELS": "C01, C02",
        "SLACK_API_URL": "http://127.0.0.1:9/api",
    }
    settings = Settings.from_env(env, slack="http")
    assert settings.support_channels == ("C01", "C02")
    assert settings.api_url == "http://127.0.0.1:9/api/"


def test_handoff_text_and_re_alert_time_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {"BATON_HANDOFF_TEXT": "A person joins soon.", "BATON_REALERT_MINUTES": "2.5"}
    )
    assert (settings.handoff_text, settings.realert_after) == ("A person joins soon.", 150.0)
    assert Settings.from_env({}).realert_after == 600.0
    with pytest.raises(ConfigError, match="BATON_REALERT_MINUTES=soon"):
        Settings.from_env({"BATON_REALERT_MINUTES": "soon"})
