"""Who Baton answers, and where: customers told apart from agents, support places from others.

In a Slack Connect channel (externally shared) a customer is anyone from another team than
Baton's own. In an internal support channel or a DM a customer is anyone who is not an agent;
the agents are the people in the agent channel. Baton answers customers in its support
channels (by default every channel it is in except the agent channel), in DMs, and wherever a
customer @mentions it. Pure functions over plain values: `bot.app` looks the values up.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Place:
    """A conversation as Baton sees it."""

    id: str
    is_im: bool = False
    is_ext_shared: bool = False


@dataclass(frozen=True)
class Staff:
    """Baton's own team and the agents (members of the agent channel)."""

    home_team: str
    agent_channel: str
    agents: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Person:
    """Someone in Slack as `users.info` describes them."""

    id: str
    team: str
    name: str
    avatar: str | None = None
    is_admin: bool = False  # a workspace admin or owner


def person_from(user: dict[str, Any]) -> Person:
    """A `users.info` user object as a `Person`."""
    profile = user.get("profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user["id"]
    return Person(
        id=user["id"],
        team=str(user.get("team_id") or profile.get("team") or ""),
        name=str(name),
        avatar=profile.get("image_192") or profile.get("image_72"),
        is_admin=bool(user.get("is_admin") or user.get("is_owner")),
    )


def is_customer(user: str, team: str | None, place: Place, staff: Staff) -> bool:
    """Whether a person speaking in `place` is a customer Baton should serve."""
    if place.is_ext_shared and team:
        return team != staff.home_team
    return user not in staff.agents


def is_support_place(place: Place, agent_channel: str, support_channels: Collection[str]) -> bool:
    """Whether Baton answers every customer message here (not only @mentions)."""
    if place.id == agent_channel:
        return False
    if place.is_im:
        return True
    return not support_channels or place.id in support_channels


def should_answer(
    user: str,
    team: str | None,
    place: Place,
    mentioned: bool,
    staff: Staff,
    support_channels: Collection[str],
) -> bool:
    """Whether Baton answers this message: a customer's, in a support place or to Baton."""
    if place.id == staff.agent_channel:
        return False  # the agents' room: the bridge's business, never a question for Baton
    if not is_customer(user, team, place, staff):
        return False
    return mentioned or is_support_place(place, staff.agent_channel, support_channels)
