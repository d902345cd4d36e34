"""The manifest asks for exactly what Baton uses, and points Slack at the one endpoint."""

from __future__ import annotations

from tests.bot.conftest import Harness, manifest

HISTORY = {"channels:history", "groups:history", "im:history"}
READ = {"channels:read", "groups:read", "im:read"}
METHOD_SCOPES: dict[str, set[str]] = {  # what each Web API method Baton calls needs
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "conversations.info": READ,
    "conversations.members": READ,
    "conversations.replies": HISTORY,
    "conversations.history": HISTORY,
    "views.publish": set(),
    "views.open": set(),
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(),
    "users.info": {"users:read"},
    "team.info": {"team:read"},
}
CUSTOMIZE = {"chat:write.customize"}  # chat.postMessage with `username` and `icon_url` (relays)
EVENT_SCOPES = {
    "app_mention": {"app_mentions:read"},
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "message.im": {"im:history"},
    "reaction_added": {"reactions:read"},
    "reaction_removed": {"reactions:read"},
    "app_home_opened": set(),
}


def test_the_manifest_subscribes_to_the_events_baton_handles() -> None:
    app = manifest()
    assert set(app["settings"]["event_subscriptions"]["bot_events"]) == set(EVENT_SCOPES)
    assert [c["command"] for c in app["features"]["slash_commands"]] == ["/baton"]
    assert app["features"]["app_home"]["home_tab_enabled"] and app["settings"]["interactivity"]["is_enabled"]
    urls = {
        app["settings"]["event_subscriptions"]["request_url"],
        app["settings"]["interactivity"]["request_url"],
        app["features"]["slash_commands"][0]["url"],
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    assert app["settings"]["socket_mode_enabled"] is False and app["features"]["bot_user"]["display_name"]


async def test_the_scopes_are_what_baton_uses_and_nothing_more(harness: Harness) -> None:
    slack = harness.slack
    slack.faults.add("chat.postMessage", "error", times=1, status=503)  # makes Baton look for its reply
    await harness.answer_to("U_CUST1", "C_SUPPORT", "how do I reset my password?")
    await harness.answer_to("U_EMPLOYEE", "D_U_EMPLOYEE", "<@U_BATON> can we log in with Okta?")
    await slack.open_home("U_AGENT1")
    await harness.settle()
    called = {call.method for call in slack.calls()}
    assert called <= set(METHOD_SCOPES), called - set(METHOD_SCOPES)
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    needed = set().union(*METHOD_SCOPES.values(), *EVENT_SCOPES.values(), {"commands"}, CUSTOMIZE)
    assert all(METHOD_SCOPES[m] & scopes or not METHOD_SCOPES[m] for m in called)
    assert scopes == needed
