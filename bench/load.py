"""Load: customer threads at a steady event rate against `baton serve` running in its own process.

The local Slack (`bot.localslack`) and the load generator run in this process on loopback;
Baton runs as `baton serve` in a child process whose environment points it at the emulator,
so its start-up time, peak memory and CPU are its own. Customers of an external team ask FAQ
questions in Slack Connect threads, follow up, react 👍/👎 to the answers and demand refunds
(handoffs); agents reply in the handoff cards' threads and customers answer them. Every
customer message must be answered or relayed exactly once and every agent reply relayed
exactly once, in the right thread: the emulator's store is checked after the run, each of
Baton's messages matched to the message it answers by the outbox key it carries in Slack
message metadata, and each relayed copy also by its text. The same schedule then drives a
bare Bolt echo app (its own child process) through a fresh emulator, and the latency ratios
are printed. The emulator runs with its defaults: no `chat.postMessage` rate limit, and each
channel's events delivered in order, one at a time (so the threads are spread over
`--channels` Slack Connect channels of the same customer team). Prints one JSON object.

    python -m bench.load [--threads 200] [--rate 50] [--seconds 60] [--seed 0] [--channels 4] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bench.slack_e2e import echo_app, percentile, questions, summary
from bot.localslack import Change, Channel, LocalSlack, User, World
from bot.localslack.store import Message
from bot.localslack.world import CUSTOMER_TEAM_ID, HOST_TEAM_ID
from bot.runner import EVENTS_PATH, stop_on_signals
from bot.settings import Settings

TARGET_RSS_MB, TARGET_STARTUP_S = 600.0, 5.0
AGENT_CHANNEL = "C_AGENTS"
CUSTOMERS = 12  # people of the customer team; each thread belongs to one of them
AGENTS = ("U_AGENT1", "U_AGENT2", "U_AGENT3", "U_AGENT4")
HANDOFF_SHARE = 0.4  # threads that open with (or soon reach) a refund demand
REACTION_SHARE = 0.3  # after an answered question, the customer reacts instead of asking again
THUMBS_DOWN_SHARE = 0.2
OPENING_WINDOW = 0.25  # every thread opens in the first quarter of the run
WAIT_FOR = 10.0  # seconds a step waits for what it needs (the previous answer, the card)
SETTLE = 30.0  # seconds after the last event for the last replies to land
READY_TIMEOUT = 120.0
WARMUP = 10  # questions before the schedule: connections, caches, the first forward passes
ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """What to run."""

    threads: int = 200
    rate: float = 50.0
    seconds: float = 60.0
    seed: int = 0
    channels: int = 4  # the emulator delivers each channel's events in order, one at a time
    warmup: int = WARMUP
    settle: float = SETTLE


QUICK = Options(threads=20, rate=10.0, seconds=8.0, warmup=5, settle=15.0)


# --- the schedule --------------------------------------------------------------------------


class Kind(StrEnum):
    """What one step of the schedule does."""

    QUESTION = "question"  # a customer opens a thread with an FAQ question
    FOLLOW_UP = "follow_up"  # another FAQ question in the customer's thread
    DEMAND = "demand"  # an angry refund demand: Baton hands the thread to a person
    CUSTOMER_REPLY = "customer_reply"  # the customer writes in a handed-off thread
    AGENT_REPLY = "agent_reply"  # an agent writes in the card's thread
    REACTION = "reaction"  # 👍 or 👎 on the app's latest reply in the thread


CUSTOMER_KINDS = frozenset({Kind.QUESTION, Kind.FOLLOW_UP, Kind.DEMAND, Kind.CUSTOMER_REPLY})
DEMANDS = (
    "I want a refund for invoice {ref}, you charged us twice this month.",
    "This is the third time I'm asking: refund invoice {ref} now or I file a chargeback.",
    "Your billing is a mess. Cancel my subscription and refund invoice {ref} today.",
    "We never approved invoice {ref}. I'm going to dispute the charge with our bank.",
    "Absolutely unacceptable. I need a refund for invoice {ref} and a real person.",
)
AGENT_LINES = (
    "Hi, I'm sorry about this. I'm looking at invoice {ref} now.",
    "I can see invoice {ref}; could you confirm the last four digits of the card?",
    "Thanks! I've asked billing to reverse invoice {ref}.",
    "The refund for invoice {ref} is on its way: 3 to 5 working days.",
)
CUSTOMER_LINES = (
    "The card ends in 4242 (invoice {ref}).",
    "Any news on invoice {ref}?",
    "Thanks, I'll keep an eye on invoice {ref}.",
    "It's the Growth plan, invoice {ref}.",
)


@dataclass(frozen=True)
class Thread:
    """One customer's thread: where it is, who writes in it, whether it is handed off."""

    index: int
    channel: str
    customer: str
    agent: str
    handoff: bool


@dataclass(frozen=True)
class Step:
    """One event of the schedule, posted at `slot / rate` seconds."""

    slot: int
    thread: int
    kind: Kind
    text: str  # the message, or the reaction's emoji name


@dataclass(frozen=True)
class Plan:
    """The threads and every event, in slot order."""

    threads: list[Thread]
    steps: list[Step]

    def counts(self) -> dict[str, int]:
        """Events per kind."""
        return dict(Counter(str(step.kind) for step in self.steps))


def support_channels(options: Options) -> list[str]:
    """The Slack Connect channels the threads are spread over."""
    return ["C_SUPPORT", *(f"C_SUPPORT{n}" for n in range(2, options.channels + 1))]


def customer_ids() -> list[str]:
    """The customer team's people (the default world has the first two)."""
    return [f"U_CUST{n}" for n in range(1, CUSTOMERS + 1)]


def bench_world(options: Options) -> World:
    """The default world with more customers and agents, and as many Slack Connect channels as asked."""
    seed = World()
    known = {user.id for user in seed.users}
    for n, user in enumerate(customer_ids(), 1):
        if user not in known:
            seed.users.append(User(user, CUSTOMER_TEAM_ID, f"cust{n}", f"Customer {n}", f"Cust{n}"))
    for n, agent in enumerate(AGENTS, 1):
        if agent not in known:
            seed.users.append(User(agent, HOST_TEAM_ID, f"agent{n}", f"Agent {n}", f"Agent{n}"))
    staff = ["U_BATON", "U_ADMIN", *AGENTS]
    seed.channel(AGENT_CHANNEL).members[:] = staff
    existing = {channel.id for channel in seed.channels}
    for channel in support_channels(options):
        members = [*staff, *customer_ids()]
        if channel in existing:
            seed.channel(channel).members[:] = members
        else:  # a further Slack Connect channel with the same customer team
            shared = (HOST_TEAM_ID, CUSTOMER_TEAM_ID)
            name = f"acme-support-{channel.removeprefix('C_SUPPORT')}"
            seed.add_channel(Channel(channel, name, members, is_ext_shared=True, shared_team_ids=shared))
    return seed


def make_plan(options: Options) -> Plan:
    """The seeded schedule: `rate * seconds` events over the threads, each thread in order."""
    rng = random.Random(options.seed)
    total = int(options.rate * options.seconds)
    count = max(1, min(options.threads, total // 2))
    channels, customers, faq = support_channels(options), customer_ids(), questions()
    threads = [
        Thread(
            i,
            channels[i % len(channels)],
            rng.choice(customers),
            AGENTS[i % len(AGENTS)],
            rng.random() < HANDOFF_SHARE,
        )
        for i in range(count)
    ]
    timed: list[tuple[float, int, Kind, str]] = []
    for thread, length in zip(threads, lengths(total, count, rng), strict=True):
        script = thread_script(thread, length, rng, faq)
        when = step_times(len(script), options.seconds, rng)
        timed += [(t, thread.index, kind, text) for t, (kind, text) in zip(when, script, strict=True)]
    timed.sort()
    steps = [Step(slot, thread, kind, text) for slot, (_, thread, kind, text) in enumerate(timed)]
    return Plan(threads, steps)


def lengths(total: int, count: int, rng: random.Random) -> list[int]:
    """How many events each thread gets: at least two, `total` in all."""
    sizes = [2] * count
    for _ in range(total - 2 * count):
        sizes[rng.randrange(count)] += 1
    return sizes


def step_times(length: int, seconds: float, rng: random.Random) -> list[float]:
    """When a thread's events happen: it opens early, then the rest are spread to the end."""
    start = rng.uniform(0.0, seconds * OPENING_WINDOW)
    gap = (seconds - start) / length
    return [start] + [start + gap * (i + rng.uniform(-0.3, 0.3)) for i in range(1, length)]


def thread_script(thread: Thread, length: int, rng: random.Random, faq: list[str]) -> list[tuple[Kind, str]]:
    """A thread's events in order (texts unique within the thread, so copies can be matched)."""
    if thread.handoff:
        return handoff_script(thread, length, rng, faq)
    asked = iter(rng.sample(faq, min(length, len(faq))))
    script = [(Kind.QUESTION, next(asked))]
    while len(script) < length:
        if script[-1][0] is not Kind.REACTION and rng.random() < REACTION_SHARE:
            script.append((Kind.REACTION, "-1" if rng.random() < THUMBS_DOWN_SHARE else "+1"))
        else:
            script.append((Kind.FOLLOW_UP, next(asked)))
    return script


def handoff_script(thread: Thread, length: int, rng: random.Random, faq: list[str]) -> list[tuple[Kind, str]]:
    """A thread handed off: a question or not, the demand, then agent and customer turns."""
    n = iter(range(length))
    ref = lambda: f"INV-{thread.index:04d}-{next(n)}"  # noqa: E731
    script = [(Kind.QUESTION, rng.choice(faq))] if rng.random() < 0.5 else []
    script.append((Kind.DEMAND, rng.choice(DEMANDS).format(ref=ref())))
    while len(script) < length:
        agent = script[-1][0] is Kind.DEMAND or rng.random() < 0.55
        lines = AGENT_LINES if agent else CUSTOMER_LINES
        script.append(
            (Kind.AGENT_REPLY if agent else Kind.CUSTOMER_REPLY, rng.choice(lines).format(ref=ref()))
        )
    return script[:length]


# --- watching what lands in Slack ----------------------------------------------------------

Fact = tuple[str, str]  # ("reply" | "relay" | "handled", source ts) or ("card", thread root ts)
Sources = dict[tuple[str, str, str], str]  # (channel, thread root, text) -> ts of a posted message
Attribute = Callable[[str, Message, Sources], list[Fact]]


def baton_facts(channel: str, message: Message, sources: Sources) -> list[Fact]:
    """What one of Baton's messages is, from the outbox key it carries in Slack message metadata.

    The keys are `reply:<channel>:<ts>` and `joining:<channel>:<ts>` (Baton's reply to that
    message: an answer, a question back, or the handoff notice), `relay:<channel>:<ts>` (a copy
    of that message in the other thread) and `card:<channel>:<thread>:...` (a handoff card).
    """
    key = str(((message.get("metadata") or {}).get("event_payload") or {}).get("key") or "")
    parts = key.split(":")
    if parts[0] in ("reply", "joining") and len(parts) == 3:
        return [("reply", parts[2]), ("handled", parts[2])]
    if parts[0] == "relay" and len(parts) == 3:
        return [("relay", parts[2]), ("handled", parts[2])]
    if parts[0] == "card" and len(parts) >= 3:
        return [("card", parts[2])]
    return []


def echo_facts(channel: str, message: Message, sources: Sources) -> list[Fact]:
    """An echo is the copy of the posted message with the same text in the same thread."""
    source = sources.get((channel, message.get("thread_ts") or message["ts"], message.get("text") or ""))
    return [("reply", source), ("handled", source)] if source else []


class Watch:
    """The app's messages as they land: when each did, and what it answers (for steps that wait)."""

    def __init__(self, attribute: Attribute) -> None:
        self.attribute = attribute
        self.sources: Sources = {}
        self.landed: dict[tuple[str, str], float] = {}
        self.seen: dict[Fact, Message] = {}
        self._waiting: dict[Fact, list[asyncio.Future[Message]]] = defaultdict(list)

    def facts(self, channel: str, message: Message) -> list[Fact]:
        """What a message of the app is."""
        return self.attribute(channel, message, self.sources)

    def on_change(self, change: Change) -> None:
        """Note every new message of the app; wake the steps waiting for it."""
        message = change.data.get("message") or {}
        if change.kind != "message" or not message.get("bot_id"):
            return
        channel = str(change.data["channel"])
        self.landed[channel, message["ts"]] = time.perf_counter()
        for fact in self.facts(channel, message):
            self.seen.setdefault(fact, {**message, "channel": channel})
            for waiter in self._waiting.pop(fact, []):
                if not waiter.done():
                    waiter.set_result(self.seen[fact])

    async def wait(self, fact: Fact, timeout: float = WAIT_FOR) -> Message | None:
        """The message that makes `fact` true, once it lands (None after `timeout`)."""
        if fact in self.seen:
            return self.seen[fact]
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[fact].append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None


# --- driving the schedule ------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """A message the schedule posted: where, and when (perf_counter)."""

    step: Step
    channel: str
    ts: str
    root: str
    at: float
    late: float  # seconds after its slot (waiting for an answer or a card)


@dataclass
class ThreadState:
    """What a thread has so far."""

    root: str | None = None
    last: str | None = None  # the customer's latest message
    said: list[str] = field(default_factory=list)  # every message of the customer, oldest first
    agent_root: str | None = None  # echo runs: the agents' own thread
    reacted: set[tuple[str, str]] = field(default_factory=set)
    tail: asyncio.Task[None] | None = None


class Driver:
    """Posts the schedule at its rate; each thread's steps in order, each when it can be."""

    def __init__(self, slack: LocalSlack, plan: Plan, watch: Watch, rate: float, cards: bool) -> None:
        self.slack = slack
        self.plan = plan
        self.watch = watch
        self.rate = rate
        self.cards = cards  # Baton: agents write in the card's thread, which the customer waits for
        self.state = [ThreadState() for _ in plan.threads]
        self.posted: list[Posted] = []
        self.reactions: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.warmup: list[str] = []
        self.elapsed = 0.0

    async def warm_up(self, count: int) -> int:
        """A few questions before the schedule; returns how many were answered."""
        faq, channel = questions(), support_channels(Options())[0]
        for n in range(count):
            ts = await self.slack.post("U_CUST1", channel, faq[-1 - n])
            self.watch.sources[channel, ts, faq[-1 - n]] = ts
            self.warmup.append(ts)
            await asyncio.sleep(0.1)
        found = await asyncio.gather(*(self.watch.wait(("handled", ts), 60.0) for ts in self.warmup))
        return sum(1 for message in found if message)

    async def run(self) -> None:
        """Every step at its slot (those that must wait for something run late)."""
        start = time.perf_counter()
        tasks = []
        for step in self.plan.steps:
            due = start + step.slot / self.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            state = self.state[step.thread]
            state.tail = asyncio.create_task(self.perform(step, state, state.tail, due))
            tasks.append(state.tail)
        await asyncio.gather(*tasks)
        self.elapsed = time.perf_counter() - start

    async def perform(
        self, step: Step, state: ThreadState, before: asyncio.Task[None] | None, due: float
    ) -> None:
        """One step, after the thread's previous one."""
        if before is not None:
            await before
        thread = self.plan.threads[step.thread]
        if step.kind is Kind.REACTION:
            await self.react(step, thread, state)
            return
        where = await self.where(step, thread, state)
        if where is None:
            self.skipped[step.kind] += 1
            return
        channel, thread_ts = where
        user = thread.agent if step.kind is Kind.AGENT_REPLY else thread.customer
        at = time.perf_counter()
        ts = await self.slack.post(user, channel, step.text, thread_ts)
        root = thread_ts or ts
        self.watch.sources[channel, root, step.text] = ts
        self.posted.append(Posted(step, channel, ts, root, at, max(0.0, at - due)))
        if step.kind in CUSTOMER_KINDS:
            state.root, state.last = state.root or ts, ts
            state.said.append(ts)
        elif not self.cards:
            state.agent_root = state.agent_root or ts

    async def where(self, step: Step, thread: Thread, state: ThreadState) -> tuple[str, str | None] | None:
        """The channel and thread a message goes to, once what it follows is there."""
        if step.kind is Kind.AGENT_REPLY:
            if not self.cards:
                return AGENT_CHANNEL, state.agent_root
            card = await self.watch.wait(("card", state.root or ""))
            return (AGENT_CHANNEL, str(card["ts"])) if card else None
        if state.root is None:
            return thread.channel, None
        if step.kind is Kind.CUSTOMER_REPLY and self.cards:
            await self.watch.wait(("card", state.root))
        await self.watch.wait(("handled", state.last or ""))  # people wait for an answer
        return thread.channel, state.root

    async def react(self, step: Step, thread: Thread, state: ThreadState) -> None:
        """👍/👎 on the app's latest reply in the thread (skipped if it has none not rated so)."""
        await self.watch.wait(("handled", state.last or ""))
        replies = (self.watch.seen.get(("reply", ts)) for ts in reversed(state.said))
        reply = next((r for r in replies if r and (r["ts"], step.text) not in state.reacted), None)
        if reply is None:
            self.skipped[step.kind] += 1
            return
        state.reacted.add((reply["ts"], step.text))
        await self.slack.react(thread.customer, reply["channel"], reply["ts"], step.text)
        self.reactions[step.text] += 1

    def unanswered(self) -> int:
        """Posted messages not yet answered or relayed."""
        return sum(1 for p in self.posted if ("handled", p.ts) not in self.watch.seen)

    async def settle(self, timeout: float) -> float:
        """Wait until every posted message is answered or relayed; returns the seconds waited."""
        started = time.perf_counter()
        while self.unanswered() and time.perf_counter() - started < timeout:
            await asyncio.sleep(0.05)
        return time.perf_counter() - started


# --- checking the store --------------------------------------------------------------------


def app_messages(slack: LocalSlack) -> Iterator[tuple[str, Message]]:
    """Every message the app posted, top level and in threads, as Slack stores them."""
    for channel in slack.world.channels:
        for message in slack.messages(channel.id):
            if message.get("bot_id"):
                yield channel.id, message
            if message.get("reply_count"):
                replies = slack.messages(channel.id, message["ts"])[1:]
                yield from ((channel.id, reply) for reply in replies if reply.get("bot_id"))


@dataclass
class Found:
    """The app's messages by what they answer, relay or announce."""

    outcomes: dict[str, list[tuple[str, Message, str]]] = field(default_factory=lambda: defaultdict(list))
    cards: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    other: Counter[str] = field(default_factory=Counter)

    def card_owner(self) -> dict[str, str]:
        """Card ts -> the customer thread's root ts."""
        return {card["ts"]: root for root, found in self.cards.items() for card in found}

    def card_of(self, root: str) -> str | None:
        """The ts of the (first) card of a customer thread."""
        found = self.cards.get(root)
        return str(found[0]["ts"]) if found else None


def collect(slack: LocalSlack, watch: Watch) -> Found:
    """Sort the store's app messages by what they are."""
    found = Found()
    for channel, message in app_messages(slack):
        facts = [f for f in watch.facts(channel, message) if f[0] != "handled"]
        for kind, ref in facts:
            if kind == "card":
                found.cards[ref].append(message)
            else:
                found.outcomes[ref].append((channel, message, kind))
        if not facts:
            key = str(((message.get("metadata") or {}).get("event_payload") or {}).get("key") or "echo")
            found.other[key.split(":")[0]] += 1
    return found


@dataclass
class Tally:
    """Exactly-once, right-thread and latency figures for one run."""

    lost: Counter[str] = field(default_factory=Counter)
    duplicated: Counter[str] = field(default_factory=Counter)
    wrong_thread: Counter[str] = field(default_factory=Counter)
    altered: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    groups: dict[int, str] = field(default_factory=dict)  # slot -> "answers" | "relays"
    missing: list[dict[str, Any]] = field(default_factory=list)  # the first lost messages, described


def expected_place(
    p: Posted, how: str, found: Found, roots: dict[str, str], owners: dict[str, str]
) -> tuple[str | None, str | None]:
    """Where the answer to, or the copy of, a posted message belongs: channel and thread.

    `roots` maps a customer thread to its channel, `owners` a card to its customer thread.
    """
    if how == "reply":
        return p.channel, p.root
    if p.step.kind is Kind.AGENT_REPLY:  # the thread of the customer whose card this is
        root = owners.get(p.root)
        return roots.get(root or ""), root
    return AGENT_CHANNEL, found.card_of(p.root)


def group_of(p: Posted, how: str, groups: dict[int, str] | None) -> str:
    """The latency group of a message: how Baton handled it (the echo run takes Baton's groups)."""
    if groups is None:
        return "answers" if how == "reply" else "relays"
    relayed = p.step.kind in (Kind.AGENT_REPLY, Kind.CUSTOMER_REPLY)
    return groups.get(p.step.slot) or ("relays" if relayed else "answers")


def tally(posted: list[Posted], found: Found, watch: Watch, groups: dict[int, str] | None) -> Tally:
    """Check every posted message against what the app posted for it."""
    result = Tally()
    roots = {p.root: p.channel for p in posted if p.step.kind in CUSTOMER_KINDS}
    owners = found.card_owner()
    for p in posted:
        who = "agent_replies" if p.step.kind is Kind.AGENT_REPLY else "customer_messages"
        outcomes = found.outcomes.get(p.ts, [])
        if len(outcomes) != 1:
            (result.lost if not outcomes else result.duplicated)[who] += 1
        for channel, message, how in outcomes:
            want_channel, want_thread = expected_place(p, how, found, roots, owners)
            if channel != want_channel or message.get("thread_ts") != want_thread:
                result.wrong_thread[who] += 1
            if how == "relay" and message.get("text") != p.step.text:
                result.altered[who] += 1
        if not outcomes:
            result.missing.append(describe(p, watch))
            continue
        channel, message, how = outcomes[0]
        result.outcomes[p.step.kind][how] += 1
        group = result.groups[p.step.slot] = group_of(p, how, groups)
        landed = watch.landed.get((channel, message["ts"]))
        if landed is not None:
            result.latency[group].append((landed - p.at) * 1000)
            result.latency["all"].append((landed - p.at) * 1000)
            if group == "relays":
                side = "to_customer" if p.step.kind is Kind.AGENT_REPLY else "to_agents"
                result.latency[f"relays_{side}"].append((landed - p.at) * 1000)
    return result


def describe(p: Posted, watch: Watch) -> dict[str, Any]:
    """A lost message; for an agent's reply, how long after its card landed it was posted."""
    parent = watch.landed.get((p.channel, p.root))  # only the app's messages (cards) are timed
    after = round((p.at - parent) * 1000, 1) if parent is not None else None
    return {
        "kind": p.step.kind,
        "slot": p.step.slot,
        "channel": p.channel,
        "ts": p.ts,
        "after_card_ms": after,
    }


def card_latencies(posted: list[Posted], found: Found, watch: Watch) -> list[float]:
    """Demand posted -> its card in the agent channel (ms)."""
    out = []
    for p in posted:
        cards = found.cards.get(p.root) if p.step.kind is Kind.DEMAND else None
        landed = watch.landed.get((AGENT_CHANNEL, cards[0]["ts"])) if cards else None
        if landed is not None and landed >= p.at:
            out.append((landed - p.at) * 1000)
    return out


# --- the app in its own process ------------------------------------------------------------


@dataclass
class Child:
    """A server in its own process: when it was spawned and said it listened, and what it logged."""

    process: asyncio.subprocess.Process
    spawned: float
    listening: float | None = None
    levels: Counter[str] = field(default_factory=Counter)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    reader: asyncio.Task[None] | None = None


LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(slack: LocalSlack, db: Path) -> dict[str, str]:
    """This environment without Baton's or Slack's variables, then those that point at the emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BATON_"))}
    env.update(
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=slack.signing_secret,
        SLACK_API_URL=slack.api_url,
        BATON_AGENT_CHANNEL=AGENT_CHANNEL,
        BATON_DB=str(db),
    )
    return env


async def spawn(argv: list[str], env: dict[str, str], cwd: Path) -> Child:
    """Start a server process and read its log as it comes."""
    spawned = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    child = Child(process, spawned)
    child.reader = asyncio.create_task(read_log(child))
    return child


async def read_log(child: Child) -> None:
    """Count log lines by level; keep the last warnings, errors and stray lines."""
    assert child.process.stderr is not None
    async for raw in child.process.stderr:
        line = raw.decode(errors="replace").rstrip()
        if child.listening is None and "listening" in line:
            child.listening = time.perf_counter()
        words = line.split(" ", 3)  # date, time, level, rest
        level = words[2] if len(words) > 2 and words[2] in LEVELS else "other"
        child.levels[level] += 1
        if level not in ("DEBUG", "INFO"):
            child.tail.append(line[:300])


async def health(session: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    """The server's /healthz, or None while it does not answer."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            return dict(await response.json()) if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def wait_ready(child: Child, url: str) -> float:
    """Seconds from spawning the process to /healthz answering "ok"."""
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - child.spawned < READY_TIMEOUT:
            if child.process.returncode is not None:
                raise RuntimeError(f"the server exited ({child.process.returncode}): {list(child.tail)}")
            found = await health(session, url)
            if found and found.get("status") == "ok":
                return time.perf_counter() - child.spawned
            await asyncio.sleep(0.02)
    raise RuntimeError(f"the server was not ready after {READY_TIMEOUT:.0f} s: {list(child.tail)}")


async def quiesce(url: str, timeout: float) -> dict[str, Any] | None:
    """Wait until the server has no work and nothing pending in its outbox; its last /healthz."""
    async with aiohttp.ClientSession() as session:
        deadline, found = time.perf_counter() + timeout, None
        while time.perf_counter() < deadline:
            found = await health(session, url)
            outbox = (found or {}).get("outbox") or {}
            if found and not found.get("working") and not outbox.get("pending"):
                return found
            await asyncio.sleep(0.1)
        return found


def process_figures(pid: int) -> dict[str, Any]:
    """Peak and current resident memory (MB) and CPU seconds of a live process, from /proc."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    kib = lambda name: int(status[name].split()[0])  # noqa: E731
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "peak_rss_mb": round(kib("VmHWM") / 1024, 1),
        "rss_mb": round(kib("VmRSS") / 1024, 1),
        "cpu_s": round((int(fields[11]) + int(fields[12])) / ticks, 1),  # utime + stime
    }


async def stop(child: Child) -> int | None:
    """SIGTERM, then SIGKILL if it does not leave in time; returns the exit code."""
    if child.process.returncode is None:
        child.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.process.wait(), 20.0)
        except TimeoutError:
            child.process.kill()
            await child.process.wait()
    if child.reader is not None:
        await child.reader
    return child.process.returncode


class Phases:
    """Seconds each phase of a run took."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        """The phase `name` ends now."""
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now

    async def timed(self, name: str, work: Awaitable[T]) -> T:
        """Await one phase."""
        result = await work
        self.mark(name)
        return result


# --- one run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """An app under test: how to start it and how to read its messages."""

    name: str
    attribute: Attribute
    cards: bool

    def argv(self, port: int) -> list[str]:
        """The command that serves it on loopback."""
        if self.name == "baton":
            return [
                str(Path(sys.executable).parent / "baton"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
        return [sys.executable, "-m", "bench.load", "--serve-echo", "--port", str(port)]


BATON = App("baton", baton_facts, cards=True)
ECHO = App("echo", echo_facts, cards=False)


async def run_app(
    app: App, plan: Plan, options: Options, tmp: Path, groups: dict[int, str] | None
) -> tuple[dict[str, Any], dict[int, str]]:
    """Start the app in its own process against a fresh emulator, drive the schedule, check it all.

    Returns the figures and each message's latency group (answers or relays).
    """
    async with LocalSlack(bench_world(options)) as slack:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        slack.app_url = base + EVENTS_PATH
        env = child_env(slack, tmp / f"{app.name}.db")
        child = await spawn(app.argv(port), env, ROOT if app is ECHO else tmp)
        try:
            ready_s = await wait_ready(child, base + "/healthz")
            watch = Watch(app.attribute)
            unsubscribe = slack.subscribe(watch.on_change)
            driver = Driver(slack, plan, watch, options.rate, app.cards)
            phases = Phases()
            warmed = await phases.timed("warmup", driver.warm_up(options.warmup))
            await phases.timed("schedule", driver.run())
            await phases.timed("settle", driver.settle(options.settle))
            last_health = await phases.timed("quiesce", quiesce(base + "/healthz", options.settle))
            drained = await phases.timed("drain", drained_quietly(slack, options.settle))
            figures = process_figures(child.process.pid)
            unsubscribe()
        finally:
            code = await stop(child)
        phases.mark("stop")
        found = collect(slack, watch)
        result = tally(driver.posted, found, watch, groups)
        if app is BATON:
            figures |= store_figures(tmp / f"{app.name}.db")
        figures |= {
            "startup": startup(child, ready_s),
            "exit_code": code,
            "warmup_answered": f"{warmed}/{options.warmup}",
            "phases_s": phases.seconds,
            "drained": drained,
            "health_at_end": last_health,
        }
        return figures | report(app, child, driver, found, result, watch, slack), result.groups


async def drained_quietly(slack: LocalSlack, timeout: float) -> bool:
    """Whether the emulator went quiet (no deliveries, calls or changes for a moment) in time."""
    try:
        await slack.drain(quiet=0.5, timeout=timeout)
    except TimeoutError:
        return False
    return True


def startup(child: Child, ready_s: float) -> dict[str, Any]:
    """Spawn -> /healthz ok, and spawn -> the "listening" log line."""
    listening = round(child.listening - child.spawned, 2) if child.listening else None
    return {"ready_s": round(ready_s, 2), "listening_s": listening}


def report(
    app: App, child: Child, driver: Driver, found: Found, result: Tally, watch: Watch, slack: LocalSlack
) -> dict[str, Any]:
    """The run's figures as JSON-ready values."""
    posted = driver.posted
    customers = sum(1 for p in posted if p.step.kind in CUSTOMER_KINDS)
    lags = [p.late * 1000 for p in posted]
    out: dict[str, Any] = {
        "customer_messages": customers,
        "agent_replies": len(posted) - customers,
        "reactions": dict(driver.reactions),
        "skipped_steps": dict(driver.skipped),
        "lost": sum(result.lost.values()),
        "duplicated": sum(result.duplicated.values()),
        "wrong_thread": sum(result.wrong_thread.values()),
        "altered_relays": sum(result.altered.values()),
        "by_sender": {
            name: {
                "lost": result.lost[name],
                "duplicated": result.duplicated[name],
                "wrong_thread": result.wrong_thread[name],
            }
            for name in ("customer_messages", "agent_replies")
        },
        "lost_examples": result.missing[:10],
        "outcomes_by_kind": {kind: dict(counts) for kind, counts in result.outcomes.items()},
        "latency_ms": {
            group: summary(values, len(values)) for group, values in sorted(result.latency.items())
        },
        "schedule": {
            "elapsed_s": round(driver.elapsed, 1),
            "late_over_100ms": sum(1 for lag in lags if lag > 100),
            "lag_p99_ms": round(percentile(lags, 99), 1),
        },
        "deliveries": delivery_figures(slack),
        "log_lines": dict(child.levels),
        "log_tail": list(child.tail)[-8:],
    }
    if app.cards:
        out["cards"] = sum(len(found) for found in found.cards.values())
        out["duplicate_cards"] = sum(len(found) - 1 for found in found.cards.values() if len(found) > 1)
        out["latency_ms"]["cards"] = summary(card_latencies(posted, found, watch), out["cards"])
    out["other_app_messages"] = dict(found.other)
    for figures in out["latency_ms"].values():
        figures.pop("missing", None)
        figures["n"] = figures.pop("answered")
    return out


def delivery_figures(slack: LocalSlack) -> dict[str, Any]:
    """Events API attempts, retries, failed acks and Web API rate limiting in the emulator."""
    attempts = slack.deliveries()
    elapsed = [d.elapsed * 1000 for d in attempts]
    by_channel: dict[str, list[float]] = defaultdict(list)
    for attempt in attempts:
        by_channel[attempt.channel or "-"].append(attempt.elapsed * 1000)
    return {
        "attempts": len(attempts),
        "retries": sum(1 for d in attempts if d.retry_num),
        "not_acked": sum(1 for d in attempts if not d.ok),
        "ack_p50_ms": round(percentile(elapsed, 50), 1),
        "ack_p99_ms": round(percentile(elapsed, 99), 1),
        "web_api_calls": len(slack.calls()),
        "rate_limited_calls": sum(1 for _, fault in slack.faults.injected if fault.kind == "ratelimit"),
        "by_channel": {
            channel: {
                "attempts": len(acks),
                "ack_p50_ms": round(percentile(acks, 50), 1),
                "busy_s": round(sum(acks) / 1000, 1),  # near the run's length: its queue never emptied
            }
            for channel, acks in sorted(by_channel.items())
        },
    }


def store_figures(db: Path) -> dict[str, Any]:
    """From Baton's own database after the run: its messages by kind, and why threads were handed off."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        kinds = dict(conn.execute("select kind, count(*) from outbox group by kind").fetchall())
        stored = conn.execute("select reasons from conversations where handed_off_at is not null").fetchall()
    reasons: Counter[str] = Counter()
    for (text,) in stored:
        reasons.update({reason["kind"] for reason in json.loads(text or "[]")})
    return {"outbox_by_kind": kinds, "handed_off_threads": len(stored), "handoff_reasons": dict(reasons)}


def ratios(baton: dict[str, Any], echo: dict[str, Any]) -> dict[str, float | None]:
    """Baton's latency over the echo's, per group and percentile."""
    out: dict[str, float | None] = {}
    for group in ("answers", "relays", "all"):
        for q in ("p50_ms", "p99_ms"):
            ours = baton["latency_ms"].get(group, {}).get(q)
            base = echo["latency_ms"].get(group, {}).get(q)
            out[f"{group}_{q.removesuffix('_ms')}"] = round(ours / base, 2) if ours and base else None
    return out


async def main(options: Options) -> dict[str, Any]:
    """Baton then the echo app, on the same schedule; one JSON-ready report."""
    plan = make_plan(options)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        baton, groups = await run_app(BATON, plan, options, Path(tmp), None)
        echo, _ = await run_app(ECHO, plan, options, Path(tmp), groups)
    return {
        "bench": "load",
        "threads": len(plan.threads),
        "rate_per_s": options.rate,
        "seconds": options.seconds,
        "seed": options.seed,
        "support_channels": options.channels,
        "customers": CUSTOMERS,
        "agents": len(AGENTS),
        "events": len(plan.steps),
        "events_by_kind": plan.counts(),
        "emulator": "bot.localslack defaults: no chat.postMessage rate limit, serial delivery per channel",
        "baton": baton,
        "echo": echo,
        "ratio_baton_over_echo": ratios(baton, echo),
        "targets": {"peak_rss_mb": TARGET_RSS_MB, "startup_s": TARGET_STARTUP_S, "lost": 0, "duplicated": 0},
        "meets_targets": meets(baton),
        "cpus": os.cpu_count(),
        "bench_cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
    }


def meets(baton: dict[str, Any]) -> dict[str, bool]:
    """Each bar of the issue, met or not."""
    return {
        "exactly_once": baton["lost"] == 0 and baton["duplicated"] == 0 and baton["wrong_thread"] == 0,
        "peak_rss": baton["peak_rss_mb"] <= TARGET_RSS_MB,
        "startup": baton["startup"]["ready_s"] <= TARGET_STARTUP_S,
    }


# --- the baseline's own process ----------------------------------------------------------------


async def serve_echo(port: int) -> None:
    """The bare Bolt echo app on loopback, configured from the same variables as Baton."""
    settings = Settings.from_env(os.environ, slack="http")
    app = echo_app(settings.bot_token, settings.api_url, settings.signing_secret)

    @app.event("reaction_added")
    async def ignore() -> None:
        """Reactions are acknowledged (an unhandled event gets a 404, which Slack retries)."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    web_app = app.web_app(path=EVENTS_PATH)
    web_app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(f"echo listening on port {port}", file=sys.stderr, flush=True)
        await stop_on_signals().wait()
    finally:
        await runner.cleanup()


def parse(argv: list[str] | None = None) -> tuple[Options, argparse.Namespace]:
    """Options from the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=Options.threads, help="customer threads (200)")
    parser.add_argument("--rate", type=float, default=Options.rate, help="events per second (50)")
    parser.add_argument("--seconds", type=float, default=Options.seconds, help="how long to post (60)")
    parser.add_argument("--seed", type=int, default=Options.seed, help="schedule seed (0)")
    parser.add_argument(
        "--channels", type=int, default=Options.channels, help="Slack Connect channels the threads share (4)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 threads, 10 events/s, 8 s")
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = Options(args.threads, args.rate, args.seconds, args.seed, args.channels)
    if args.quick:
        options = replace(QUICK, seed=args.seed, channels=args.channels)
    return options, args


if __name__ == "__main__":
    chosen, arguments = parse()
    if arguments.serve_echo:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_echo(arguments.port))
    else:
        print(json.dumps(asyncio.run(main(chosen)), indent=2, ensure_ascii=False))
