"""A local Slack for Baton's tests, benchmarks and demo: Web API, Events API, interactivity.

async with LocalSlack(World(), app_url="http://127.0.0.1:3000/slack/events") as slack:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    ts = await slack.post("U_CUST1", "C_SUPPORT", "Hi <@U_BATON>")
    await slack.drain()
"""

from bot.localslack.errors import LocalSlackError, SlackError
from bot.localslack.events import AppReply, Delivery
from bot.localslack.faults import Fault, FaultKind, FaultSchedule
from bot.localslack.server import LocalSlack
from bot.localslack.webapi import Call
from bot.localslack.workspace import Change
from bot.localslack.world import AppIdentity, Channel, Team, User, World

__all__ = [
    "AppIdentity",
    "AppReply",
    "Call",
    "Change",
    "Channel",
    "Delivery",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "LocalSlack",
    "LocalSlackError",
    "SlackError",
    "Team",
    "User",
    "World",
]
