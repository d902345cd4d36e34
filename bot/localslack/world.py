"""The emulated world: teams, users, channels and the installed app, as plain data.

The default `World()` is a host company ("Tally Labs", `T_HOST`) that installed Baton and an
external customer ("Acme Corp", `T_CUST`) talking to it in a Slack Connect channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.localslack.errors import SlackError

HOST_TEAM_ID = "T_HOST"
CUSTOMER_TEAM_ID = "T_CUST"
DEFAULT_SCOPES = (
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "groups:history",
    "im:history",
    "reactions:read",
    "reactions:write",
    "team:read",
    "users:read",
)
DEFAULT_EVENTS = frozenset(
    {
        "message.channels",
        "message.groups",
        "message.im",
        "message.mpim",
        "app_mention",
        "reaction_added",
        "reaction_removed",
        "app_home_opened",
    }
)


@dataclass(frozen=True)
class Team:
    """A Slack workspace (team)."""

    id: str
    name: str
    domain: str
    email_domain: str = ""

    def as_slack(self) -> dict[str, Any]:
        """The `team` object of `team.info`."""
        icon = {f"image_{n}": f"https://localslack.test/team/{self.id}_{n}.png" for n in (34, 68)}
        return {
            "id": self.id,
            "name": self.name,
            "domain": self.domain,
            "email_domain": self.email_domain,
            "icon": icon,
            "url": f"https://{self.domain}.slack.com/",
        }


@dataclass(frozen=True)
class User:
    """A person (or the app's bot user) in one of the teams."""

    id: str
    team_id: str
    name: str
    real_name: str
    display_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    bot_id: str | None = None
    title: str = ""
    tz: str = "Europe/London"

    def profile(self) -> dict[str, Any]:
        """The `profile` object of `users.info`."""
        images = {
            f"image_{n}": f"https://localslack.test/avatar/{self.id}_{n}.png"
            for n in (24, 32, 48, 72, 192, 512)
        }
        names = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
        }
        extra = {"bot_id": self.bot_id, "always_active": True} if self.is_bot else {}
        return {**names, **images, **extra, "title": self.title, "team": self.team_id}

    def as_slack(self) -> dict[str, Any]:
        """The `user` object of `users.info`."""
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "profile": self.profile(),
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_690_000_000,
        }


@dataclass
class Channel:
    """A conversation: public or private channel, Slack Connect channel, DM or group DM."""

    id: str
    name: str
    members: list[str] = field(default_factory=list)
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    is_ext_shared: bool = False
    context_team_id: str = HOST_TEAM_ID
    shared_team_ids: tuple[str, ...] = ()
    topic: str = ""
    purpose: str = ""
    created: int = 1_690_000_000
    user: str | None = None  # the person on the other side of a DM

    @property
    def channel_type(self) -> str:
        """The `channel_type` that message events carry."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "group" if self.is_private else "channel"

    def as_slack(self, viewer: str) -> dict[str, Any]:
        """The `channel` object of `conversations.info`, as seen by `viewer`."""
        teams = list(self.shared_team_ids) or [self.context_team_id]
        base = {
            "id": self.id,
            "created": self.created,
            "is_im": self.is_im,
            "is_archived": False,
            "context_team_id": self.context_team_id,
            "is_member": viewer in self.members,
        }
        if self.is_im:
            return {**base, "user": self.user, "is_user_deleted": False, "is_org_shared": False}
        return {
            **base,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private and not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private,
            "is_general": False,
            "is_shared": self.is_ext_shared,
            "is_ext_shared": self.is_ext_shared,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "shared_team_ids": teams,
            "conversation_host_id": self.context_team_id,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "num_members": len(self.members),
        }


@dataclass(frozen=True)
class AppIdentity:
    """The installed Slack app (Baton) and its bot user."""

    app_id: str = "A_BATON"
    bot_id: str = "B_BATON"
    user_id: str = "U_BATON"
    name: str = "baton"
    team_id: str = HOST_TEAM_ID
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    events: frozenset[str] = DEFAULT_EVENTS

    def bot_profile(self) -> dict[str, Any]:
        """The `bot_profile` attached to the app's messages."""
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": self.name,
            "deleted": False,
            "updated": 1_690_000_000,
            "team_id": self.team_id,
            "icons": {"image_48": f"https://localslack.test/avatar/{self.bot_id}_48.png"},
        }

    def as_bot_user(self) -> User:
        """The bot user that the app posts as."""
        return User(
            self.user_id,
            self.team_id,
            self.name,
            self.name.title(),
            self.name,
            is_bot=True,
            bot_id=self.bot_id,
        )


def _default_teams() -> list[Team]:
    """Tally Labs (the host) and Acme Corp (the customer)."""
    return [
        Team(HOST_TEAM_ID, "Tally Labs", "tallylabs", "tallylabs.example"),
        Team(CUSTOMER_TEAM_ID, "Acme Corp", "acme", "acme.example"),
    ]


def _default_users() -> list[User]:
    """Customers in Acme, agents and an admin at Tally Labs, and the bot user."""
    return [
        AppIdentity().as_bot_user(),
        User("U_ADMIN", HOST_TEAM_ID, "ada", "Ada Admin", "Ada", is_admin=True, is_owner=True),
        User("U_AGENT1", HOST_TEAM_ID, "sam", "Sam Agent", "Sam", title="Support"),
        User("U_AGENT2", HOST_TEAM_ID, "riley", "Riley Agent", "Riley", title="Support"),
        User("U_CUST1", CUSTOMER_TEAM_ID, "casey", "Casey Customer", "Casey"),
        User("U_CUST2", CUSTOMER_TEAM_ID, "dana", "Dana Customer", "Dana"),
    ]


def _default_channels() -> list[Channel]:
    """#acme-support (Slack Connect), #support-agents, #general (no bot) and two DMs."""
    staff = ["U_BATON", "U_ADMIN", "U_AGENT1", "U_AGENT2"]
    return [
        Channel(
            "C_SUPPORT",
            "acme-support",
            [*staff, "U_CUST1", "U_CUST2"],
            is_ext_shared=True,
            shared_team_ids=(HOST_TEAM_ID, CUSTOMER_TEAM_ID),
            purpose="Acme Corp support",
        ),
        Channel("C_AGENTS", "support-agents", list(staff), purpose="Handoffs from Baton"),
        Channel("C_GENERAL", "general", ["U_ADMIN", "U_AGENT1", "U_AGENT2"]),
        Channel("D_AGENT1", "", ["U_BATON", "U_AGENT1"], is_im=True, is_private=True, user="U_AGENT1"),
        Channel("D_ADMIN", "", ["U_BATON", "U_ADMIN"], is_im=True, is_private=True, user="U_ADMIN"),
    ]


@dataclass
class World:
    """Teams, users, channels and the app; `World()` is the Tally Labs / Acme Corp seed."""

    teams: list[Team] = field(default_factory=_default_teams)
    users: list[User] = field(default_factory=_default_users)
    channels: list[Channel] = field(default_factory=_default_channels)
    app: AppIdentity = field(default_factory=AppIdentity)

    def __post_init__(self) -> None:
        if all(u.id != self.app.user_id for u in self.users):
            self.users.append(self.app.as_bot_user())

    @property
    def host(self) -> Team:
        """The team that installed the app."""
        return self.team(self.app.team_id)

    def team(self, team_id: str) -> Team:
        """The team with this id, or `team_not_found`."""
        return _find(self.teams, team_id, "team_not_found")

    def user(self, user_id: str) -> User:
        """The user with this id or name, or `user_not_found`."""
        for user in self.users:
            if user_id in (user.id, user.name):
                return user
        raise SlackError("user_not_found")

    def channel(self, ref: str) -> Channel:
        """The channel with this id or `#name`, or `channel_not_found`."""
        name = ref.removeprefix("#")
        for channel in self.channels:
            if ref == channel.id or (channel.name and name == channel.name):
                return channel
        raise SlackError("channel_not_found")

    def dm_with(self, user_id: str) -> Channel:
        """The app's DM with a user, opened on first use."""
        for channel in self.channels:
            if channel.is_im and channel.user == user_id:
                return channel
        dm = Channel(
            f"D_{user_id}",
            "",
            [self.app.user_id, user_id],
            is_im=True,
            is_private=True,
            user=user_id,
        )
        self.channels.append(dm)
        return dm

    def add_channel(self, channel: Channel) -> Channel:
        """Add a channel after construction (e.g. from a test)."""
        self.channels.append(channel)
        return channel


def _find(items: list[Team], key: str, error: str) -> Team:
    """The item whose id is `key`, or a Slack error."""
    for item in items:
        if item.id == key:
            return item
    raise SlackError(error)
