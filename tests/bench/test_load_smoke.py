"""The load bench's quick run end to end: Baton and the echo app each in their own process.

No timed assertions (the machine is shared): every message is answered or relayed exactly
once, in its thread, and the report has its figures.
"""

from __future__ import annotations

import pytest

from bench.load import QUICK, main

pytestmark = pytest.mark.model  # the Baton child process loads the real bundled encoder

REPORT_KEYS = {
    "threads",
    "rate_per_s",
    "seconds",
    "events",
    "events_by_kind",
    "baton",
    "echo",
    "ratio_baton_over_echo",
    "targets",
    "meets_targets",
}
APP_KEYS = {
    "startup",
    "peak_rss_mb",
    "cpu_s",
    "customer_messages",
    "agent_replies",
    "lost",
    "duplicated",
    "wrong_thread",
    "altered_relays",
    "latency_ms",
    "deliveries",
}


async def test_every_message_is_answered_or_relayed_exactly_once() -> None:
    result = await main(QUICK)
    assert result.keys() >= REPORT_KEYS
    for app in ("baton", "echo"):
        figures = result[app]
        assert figures.keys() >= APP_KEYS
        faults = ("lost", "duplicated", "wrong_thread", "altered_relays")
        assert {name: figures[name] for name in faults} == dict.fromkeys(faults, 0)
        assert figures["customer_messages"] > 0 and figures["exit_code"] == 0
    baton = result["baton"]
    assert baton["agent_replies"] > 0 and baton["cards"] > 0 and baton["duplicate_cards"] == 0
    assert {"answers", "relays"} <= baton["latency_ms"].keys()
    assert baton["startup"]["ready_s"] > 0 and baton["peak_rss_mb"] > 0
    ratios = result["ratio_baton_over_echo"]
    assert ratios.keys() >= {"answers_p50", "answers_p99", "relays_p50", "relays_p99"}
