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


@pytest.mark.parametrize("value", ["0", "1441", "-1", "nan"])
def test_the_re_alert_range_in_the_message_is_the_one_accepted(value: str) -> None:
    assert Settings.from_env({"BATON_REALERT_MINUTES": "1440"}).realert_after == 1440 * 60
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"BATON_REALERT_MINUTES": value})
    assert f"BATON_REALERT_MINUTES={value} must be a number of minutes above 0 and at most 1440" in str(
        error.value
    )


@pytest.mark.parametrize("value", ["²", "٣", "0", "65536", "-1", "3e3"])
def test_a_port_must_be_plain_digits_in_range(value: str) -> None:
    with pytest.raises(ConfigError, match=f"PORT={value} must be a number from 1 to 65535"):
        Settings.from_env({"PORT": value})


def test_the_tuned_folder_must_be_a_folder_or_creatable(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    assert Settings.from_env({"BATON_TUNED_DIR": str(tmp_path / "new" / "tuned")}).tuned_root == (
        tmp_path / "new" / "tuned"
    )
    with pytest.raises(ConfigError, match=f"BATON_TUNED_DIR={afile} is not a directory"):
        Settings.from_env({"BATON_TUNED_DIR": str(afile)})
    with pytest.raises(ConfigError, match=f"cannot be created: {afile} is a file"):
        Settings.from_env({"BATON_TUNED_DIR": str(afile / "tuned")})


def test_the_database_folder_may_be_created_but_not_its_parent(tmp_path: Path) -> None:
    assert (
        Settings.from_env({"BATON_DB": str(tmp_path / "new" / "b.db")}).db_path == tmp_path / "new" / "b.db"
    )
    deep = tmp_path / "no" / "such" / "b.db"
    with pytest.raises(
        ConfigError, match=f"neither its folder {deep.parent} nor {deep.parent.parent} exists"
    ):
        Settings.from_env({"BATON_DB": str(deep)})
    with pytest.raises(ConfigError, match="is a directory, not a database file"):
        Settings.from_env({"BATON_DB": str(tmp_path)})


def test_path_problems_are_reported_with_the_others(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    env = {"BATON_TUNED_DIR": str(tmp_path / "file"), "BATON_DB": "/nonexistent/dir/x.db", "PORT": "x"}
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert [line.split("=")[0] for line in str(error.value).splitlines()[1:]] == [
        "  - BATON_DB",
        "  - PORT",
        "  - BATON_TUNED_DIR",
    ]
    assert not Path("/nonexistent").exists()
