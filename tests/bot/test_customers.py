"""Who is a customer and where Baton answers: pure rules over plain values."""

from __future__ import annotations

import pytest

from bot.customers import Place, Staff, is_customer, is_support_place, should_answer

STAFF = Staff(home_team="T_HOST", agent_channel="C_AGENTS", agents=frozenset({"U_AGENT1", "U_ADMIN"}))
CONNECT = Place("C_SUPPORT", is_ext_shared=True)
INTERNAL = Place("C_INTERNAL")
DM = Place("D_EVE", is_im=True)
AGENTS = Place("C_AGENTS")


@pytest.mark.parametrize(
    ("user", "team", "place", "customer"),
    [
        ("U_CUST1", "T_CUST", CONNECT, True),  # another organisation in Slack Connect
        ("U_AGENT1", "T_HOST", CONNECT, False),
        ("U_EVE", "T_HOST", CONNECT, False),  # a colleague, even if not an agent
        ("U_CUST1", None, CONNECT, True),  # no team on the event: fall back to the agent list
        ("U_AGENT1", None, CONNECT, False),
        ("U_EVE", "T_HOST", INTERNAL, True),  # internal channel: anyone but agents
        ("U_AGENT1", "T_HOST", INTERNAL, False),
        ("U_EVE", "T_HOST", DM, True),
        ("U_ADMIN", "T_HOST", DM, False),
    ],
)
def test_is_customer(user: str, team: str | None, place: Place, customer: bool) -> None:
    assert is_customer(user, team, place, STAFF) is customer


def test_support_places_default_to_every_channel_but_the_agents() -> None:
    assert is_support_place(CONNECT, "C_AGENTS", ()) and is_support_place(INTERNAL, "C_AGENTS", ())
    assert not is_support_place(AGENTS, "C_AGENTS", ())


def test_the_allow_list_limits_channels_but_not_dms() -> None:
    allowed = ("C_SUPPORT",)
    assert is_support_place(CONNECT, "C_AGENTS", allowed)
    assert not is_support_place(INTERNAL, "C_AGENTS", allowed)
    assert is_support_place(DM, "C_AGENTS", allowed)


def test_mentions_reach_baton_outside_support_channels_but_never_in_the_agent_channel() -> None:
    allowed = ("C_SUPPORT",)
    assert not should_answer("U_EVE", "T_HOST", INTERNAL, False, STAFF, allowed)
    assert should_answer("U_EVE", "T_HOST", INTERNAL, True, STAFF, allowed)
    assert not should_answer("U_AGENT1", "T_HOST", INTERNAL, True, STAFF, allowed)
    assert not should_answer("U_EVE", "T_HOST", AGENTS, True, STAFF, ())
    assert should_answer("U_CUST1", "T_CUST", CONNECT, False, STAFF, allowed)
