"""No message of one thread ever reaches another: not in answers, cards, transcripts or relays.

Hypothesis opens a few customer threads at once (some handed to a person, some answered by
Baton), then interleaves customers' and agents' messages across them without waiting. Every
message carries a marker naming its thread; afterwards each thread's space (the customer's
thread, its card and the card's thread) holds only its own thread's markers.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.localslack.store import Message
from tests.bot.conftest import Harness
from tests.faults.test_slack_faults import REFUND, card_for, key_of

MARKER = re.compile(r"zq(\d+)t(\d+)s(\d+)")
EXAMPLES = itertools.count()
CUSTOMERS = ("U_CUST1", "U_CUST2")
THREADS = st.lists(st.booleans(), min_size=2, max_size=3)  # handed off, or answered by Baton
STEPS = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["customer", "agent"])), min_size=1, max_size=8)


def markers(message: Message) -> set[tuple[int, int]]:
    """(example, thread) of every marker a message shows."""
    text = json.dumps([message.get("text"), message.get("blocks")], ensure_ascii=False)
    return {(int(m.group(1)), int(m.group(2))) for m in MARKER.finditer(text)}


def space(harness: Harness, root: str) -> Iterator[Message]:
    """A customer thread, its cards and the cards' threads."""
    slack = harness.slack
    yield from slack.messages("C_SUPPORT", root)
    for top in slack.messages("C_AGENTS"):
        if (key_of(top) or "").startswith(f"card:C_SUPPORT:{root}:"):
            yield from slack.messages("C_AGENTS", top["ts"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(handed=THREADS, steps=STEPS)
async def test_interleaved_threads_never_mix(
    harness: Harness, handed: list[bool], steps: list[tuple[int, str]]
) -> None:
    slack, example = harness.slack, next(EXAMPLES)
    mark = lambda t, n: f"zq{example}t{t}s{n}"  # noqa: E731
    roots = []
    for t, to_person in enumerate(handed):
        opening = REFUND if to_person else "how do I reset my password?"
        roots.append(await slack.post(CUSTOMERS[t % 2], "C_SUPPORT", f"{opening} {mark(t, 0)}"))
    cards = {t: (await card_for(harness, roots[t]))["ts"] for t, to_person in enumerate(handed) if to_person}
    for n, (t, who) in enumerate(steps, start=1):
        t %= len(roots)
        if who == "agent" and t in cards:
            await slack.post("U_AGENT1", "C_AGENTS", f"on it {mark(t, n)}", cards[t])
        else:
            await slack.post(CUSTOMERS[t % 2], "C_SUPPORT", f"and also {mark(t, n)}", roots[t])
    await harness.settle()

    for t, root in enumerate(roots):
        seen = set().union(*(markers(m) for m in space(harness, root)))
        assert seen == {(example, t)}, f"thread {t} shows {seen}"
    top = [m for m in slack.messages("C_AGENTS") if not (key_of(m) or "").startswith("card:")]
    assert top == []  # nothing else lands in the agent channel
