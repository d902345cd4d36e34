"""The `/baton` parser: every text is a command or a polite explanation of how to write one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands import (
    USAGE,
    AddFaq,
    AddKeyword,
    Command,
    Help,
    ListFaq,
    ListKeywords,
    RemoveFaq,
    RemoveKeyword,
    Resolve,
    SetSetting,
    ShowAudit,
    ShowCsat,
    ShowStats,
    ShowTriggers,
    SuggestFaq,
    UsageError,
    help_text,
    parse,
)
from handoff.tuning import KNOBS


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", Help()),
        ("help", Help()),
        ("  HELP me ", Help()),
        ("triggers", ShowTriggers()),
        ("set confidence 0.55", SetSetting("confidence", "0.55")),
        ("set sentiment -0.4", SetSetting("sentiment", "-0.4")),
        ("set sentiment −0.4", SetSetting("sentiment", "-0.4")),
        ("set max-fallbacks 2", SetSetting("max-fallbacks", "2")),
        ("set max_fallbacks 3", SetSetting("max-fallbacks", "3")),
        ("set max fallbacks 1", SetSetting("max-fallbacks", "1")),
        ("set human-request 0.7", SetSetting("human-request", "0.7")),
        ("set ambiguity 0.1", SetSetting("ambiguity", "0.1")),
        ("set plausible 0.25", SetSetting("plausible", "0.25")),
        ("set Confidence = 0.6", SetSetting("confidence", "0.6")),
        ("set confidence default", SetSetting("confidence", "default")),
        ("keyword add chargeback", AddKeyword("chargeback")),
        ('keyword add "cancel my   plan"', AddKeyword("cancel my plan")),
        ("keyword add “wire transfer”", AddKeyword("wire transfer")),
        ("keyword add re:refund(s|ed)?", AddKeyword("re:refund(s|ed)?")),
        ("keyword add AT&amp;T", AddKeyword("AT&T")),
        ("keyword remove 'legal'", RemoveKeyword("legal")),
        ("keyword list", ListKeywords()),
        ("keywords", ListKeywords()),
        ("faq add How do I reset my password? | Open Settings, then Security.",
         AddFaq("How do I reset my password?", "Open Settings, then Security.")),
        ("faq add Is there a | in it? | Yes | really", AddFaq("Is there a", "in it? | Yes | really")),
        ("faq remove reset-password", RemoveFaq("reset-password")),
        ("faq list", ListFaq()),
        ("faq suggest", SuggestFaq()),
        ("csat", ShowCsat(7)),
        ("csat 30", ShowCsat(30)),
        ("csat 14 days", ShowCsat(14)),
        ("stats", ShowStats()),
        ("audit", ShowAudit()),
        ("resolve", Resolve()),
    ],
)  # fmt: skip
def test_commands(text: str, command: Command) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("command", "admin_only"),
    [
        (SetSetting("confidence", "0.5"), True),
        (AddKeyword("x"), True),
        (RemoveKeyword("x"), True),
        (AddFaq("q", "a"), True),
        (RemoveFaq("x"), True),
        (Help(), False),
        (ShowTriggers(), False),
        (ListKeywords(), False),
        (ListFaq(), False),
        (SuggestFaq(), False),
        (ShowCsat(), False),
        (ShowStats(), False),
        (ShowAudit(), False),
        (Resolve(), False),
    ],
)
def test_which_commands_change_settings(command: Command, admin_only: bool) -> None:
    assert command.changes_settings is admin_only


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "set confidence",
            "`set confidence` needs a number between 0 and 1, like `/baton set confidence 0.55`",
        ),
        ("set confidence high", "`high` is not a number"),
        ("set confidence 1.5", "`1.5` won't do: `set confidence` needs a number between 0 and 1"),
        ("set max-fallbacks 2.5", "needs a whole number between 0 and 10"),
        ("set sentiment -2", "between -1 and 1"),
        ("set confidence 0.5 0.6", "more than one value"),
        ("set confidnce 0.5", "Did you mean `confidence`?"),
        ("set", "`set` needs a setting and a value"),
        ("keyword add", "`keyword add` needs a word or phrase, like `/baton keyword add chargeback`"),
        ('keyword add ""', "`keyword add` needs a word or phrase"),
        ("keyword add re:(", "is not a valid pattern"),
        ("keyword add re:.*", "matches an empty message"),
        ("keyword add re:a{99999999999}", "too large"),
        ("keyword remove", "`keyword remove` needs the keyword"),
        ("keyword ad refund", "Did you mean `/baton keyword add refund`?"),
        ("keyword", "`keyword` needs one of"),
        ("keyword list everything", "`keyword list` takes nothing after it"),
        ("faq add How do I reset my password?", "separated by `|`"),
        ("faq add | Open Settings", "The question is empty"),
        ("faq add How? |  ", "The answer is empty"),
        ("faq remove", "`faq remove` needs an entry id"),
        ("faq remove a b", "`faq remove` takes one entry id"),
        ("faq lst", "Did you mean `/baton faq list`?"),
        ("faq", "`faq` needs one of"),
        ("csat lots", "`csat` takes a number of days from 1 to 365, like `/baton csat 30`"),
        ("csat 0", "from 1 to 365"),
        ("csat 9999", "from 1 to 365"),
        ("stats please", "`stats` takes nothing after it: write `/baton stats`"),
        ("resolve now", "`resolve` takes nothing after it"),
        ("stat", "Did you mean `/baton stats`?"),
        ("trigers", "Did you mean `/baton triggers`?"),
        ("add keyword refund", "Did you mean `/baton keyword add refund`?"),
        ("frobnicate", "I don't know `/baton frobnicate`. `/baton help` lists every command."),
        ("`rm -rf`", "I don't know `/baton 'rm`"),
    ],
)
def test_wrong_usage_says_what_is_wrong_and_how_to_write_it(text: str, says: str) -> None:
    result = parse(text)
    assert isinstance(result, UsageError)
    assert says in result.message


def test_a_long_faq_answer_is_refused() -> None:
    result = parse("faq add q | " + "x" * 5000)
    assert isinstance(result, UsageError) and "keep it under" in result.message


def test_help_lists_every_command_and_setting() -> None:
    text = help_text()
    for usage, _, _ in USAGE:
        assert f"/baton {usage}" in text
    for word in ("help", "triggers", "set", "keyword", "faq", "csat", "stats", "audit", "resolve"):
        assert f"`/baton {word}" in text
    for knob in KNOBS:
        assert knob.key in text


@settings(max_examples=500)
@given(
    st.one_of(
        st.text(),
        st.lists(
            st.sampled_from(["set", "keyword", "faq", "add", "remove", "list", "csat", "confidence", "re:(",
                             "|", '"', "“", "0.5", "-1", "re:a{99999999999}", "default", " ", "&amp;", "`"]),
        ).map(" ".join),
    )
)  # fmt: skip
def test_any_text_is_a_command_or_an_explanation(text: str) -> None:
    result = parse(text)
    assert isinstance(result, Command | UsageError)
    if isinstance(result, UsageError):
        assert result.message.strip()


@given(st.floats(min_value=0, max_value=1, allow_nan=False), st.sampled_from(["confidence", "plausible"]))
def test_any_value_in_range_is_accepted_as_written(value: float, key: str) -> None:
    result = parse(f"set {key} {value!r}")
    assert isinstance(result, SetSetting) and result.key == key
    assert float(result.value) == value


@given(st.text(alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=30))
def test_a_quoted_phrase_is_added_as_written(word: str) -> None:
    assert parse(f'keyword add "{word} {word}"') == AddKeyword(f"{word} {word}")
