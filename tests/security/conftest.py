"""Baton against the local Slack: the fixtures of `tests/bot/conftest.py`, and `tests/faults`' FAQ."""

from tests.faults.conftest import (  # noqa: F401  (fixtures are found by name)
    app_settings,
    db_path,
    faq_db,
    harness,
    parts,
    requests_detector,
    scorer,
    serving_threads,
    slack_options,
)
