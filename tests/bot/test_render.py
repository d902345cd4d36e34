"""Block Kit builders: shapes Slack accepts, within its limits, without Slack."""

from __future__ import annotations

import pytest

from bot import render
from bot.render import escape, mrkdwn, unescape
from models.kb import Entry

RESET = Entry(
    "reset-password",
    "How do I reset my password?",
    "Click *Forgot password?* on <https://app.tally.example/login|the login page>.",
    links=("https://docs.tally.example/account/password",),
)
LONG_QUESTION = "How do I " + "really " * 30 + "reset my password?"


def test_answer_shows_the_entry_and_where_it_came_from() -> None:
    message = render.answer(RESET)
    assert message["text"] == RESET.answer
    section, context = message["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": RESET.answer}}
    line = context["elements"][0]["text"]
    assert context["type"] == "context" and line.startswith("From the FAQ: _How do I reset my password?_")
    assert "<https://docs.tally.example/account/password|More>" in line


def test_long_answers_are_split_into_sections_slack_accepts() -> None:
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(100))  # ~10,000 characters
    blocks = render.answer(Entry("long", "q?", text))["blocks"][:-1]
    assert len(blocks) == 4 and all(len(b["text"]["text"]) <= render.SECTION_LIMIT for b in blocks)
    assert "\n".join(b["text"]["text"] for b in blocks) == text
    one_line = render.sections("y" * 7000)
    assert [len(b["text"]["text"]) for b in one_line] == [3000, 3000, 1000]


def test_clarify_offers_each_entry_as_a_button() -> None:
    other = Entry("change-login-email", LONG_QUESTION, "…")
    message = render.clarify([RESET, other])
    lead, actions = message["blocks"]
    assert lead["type"] == "section" and actions["type"] == "actions"
    buttons = actions["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("baton_pick_1", "reset-password"),
        ("baton_pick_2", "change-login-email"),
    ]
    assert all(len(b["text"]["text"]) <= render.BUTTON_LIMIT for b in buttons)
    assert buttons[1]["text"]["text"].endswith("…")
    assert "How do I reset my password?" in message["text"]


def test_the_choice_replaces_the_buttons_and_escapes_the_question() -> None:
    message = render.chosen(Entry("e", "Is <b> & <c> ok?", "a"))
    assert message["blocks"] == [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "You picked: *Is &lt;b&gt; &amp; &lt;c&gt; ok?*"},
        }
    ]


def test_notes_have_text_for_notifications() -> None:
    for message in (render.handoff_notice(), render.file_note(), render.rephrase()):
        assert message["text"] and message["blocks"][0]["type"] == "section"
    assert render.handoff_notice("A person joins shortly.")["text"] == "A person joins shortly."
    assert render.pick_refused()["response_type"] == "ephemeral"
    assert render.command_help()["response_type"] == "ephemeral"


def test_home_view() -> None:
    view = render.home(render.HomeStats(63, 2, ("C_SUPPORT",), "C_AGENTS"))
    assert view["type"] == "home" and view["blocks"][0]["type"] == "header"
    text = " ".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")
    assert "<#C_SUPPORT>" in text and "<#C_AGENTS>" in text and "*FAQ entries:* 63" in text
    everywhere = render.home(render.HomeStats(1, 0, (), "C_AGENTS"))
    assert "every channel I'm in" in everywhere["blocks"][1]["text"]["text"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2 < 3 & 4 > 1", "2 &lt; 3 &amp; 4 &gt; 1"),
        ("<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"),
        ("see <https://x.example/a?b=1&c=2|the docs> or <mailto:help@x.example>", None),
        ("ask <@U123> in <#C42|support> <!here>", None),
        ("already &amp; escaped &lt;", None),
        ("<https://unclosed", "&lt;https://unclosed"),
    ],
)
def test_typed_text_becomes_mrkdwn_keeping_slack_markup(typed: str, expected: str | None) -> None:
    assert mrkdwn(typed) == (typed if expected is None else expected)
    assert unescape(escape("Tom & Jerry <ops>")) == "Tom & Jerry <ops>"
