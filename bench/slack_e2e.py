"""End to end through the local Slack: a customer's message in, Baton's answer posted in its thread.

Customers post FAQ questions (the sample FAQ's paraphrases) in the Slack Connect channel at a
steady rate; the latency of each is the time from the post to Baton's reply appearing in the
thread, through signed Events API delivery, Bolt, the checks (real model), the outbox and
`chat.postMessage`. The same run measures a bare Bolt app that echoes each message in its
thread through the same emulator, and prints the ratio. Everything runs on loopback in one
process. Prints one JSON object.

    python -m bench.slack_e2e [--rate 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_app
from bot.brain import Brain
from bot.localslack import Change, LocalSlack
from bot.runner import build_web_app, model_threads
from bot.services import Services, sync_faq_file
from bot.settings import Settings
from handoff.knowledge import KnowledgeBase
from handoff.store import open_database
from models.encoder import TransformerEncoder, default_model_dir
from models.kb import load_file, sample_path
from models.requests import HumanRequestDetector
from models.sentiment import Polarity, Sentiment, SentimentModel, default_head_path, load_scorer

TARGET_P50_MS, TARGET_P99_MS = 30.0, 100.0
WARMUP = 20  # messages before measuring: connections, caches, the first forward passes
CUSTOMERS = ("U_CUST1", "U_CUST2")


class NeutralSentiment:
    """Used only while the bundled sentiment head has not been trained yet."""

    def score(self, text: str, vector: np.ndarray | None = None) -> Sentiment:
        return Sentiment(0.0, Polarity.NEUTRAL)

    def score_batch(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Sentiment]:
        return [self.score(t) for t in texts]


def questions() -> list[str]:
    """Every paraphrase in the sample FAQ: what customers ask."""
    return [alt for entry in load_file(sample_path()) for alt in entry.alternates]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of the values."""
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def summary(latencies: list[float], sent: int) -> dict[str, Any]:
    """Latency figures in milliseconds."""
    return {
        "answered": len(latencies),
        "missing": sent - len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p90_ms": round(percentile(latencies, 90), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
    }


class Stopwatch:
    """Times each customer message until the bot's first reply in its thread."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.replies: dict[str, int] = {}

    def on_change(self, change: Change) -> None:
        if change.kind != "message":
            return
        message = change.data["message"]
        thread = message.get("thread_ts")
        if not message.get("bot_id") or thread not in self.sent:
            return
        self.replies[thread] = self.replies.get(thread, 0) + 1
        self.latencies.setdefault(thread, (time.perf_counter() - self.sent[thread]) * 1000)


async def drive(slack: LocalSlack, rate: float, seconds: float, texts: list[str]) -> dict[str, Any]:
    """Post at `rate` per second for `seconds` (after a warm-up) and time every answer."""
    watch = Stopwatch()
    unsubscribe = slack.subscribe(watch.on_change)
    total = WARMUP + int(rate * seconds)
    measured: list[str] = []
    start = time.perf_counter()
    for n in range(total):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        posted_at = time.perf_counter()
        ts = await slack.post(CUSTOMERS[n % 2], "C_SUPPORT", texts[n % len(texts)])
        watch.sent[ts] = posted_at
        if n >= WARMUP:
            measured.append(ts)
    deadline = time.perf_counter() + 10
    while (
        len([t for t in measured if t in watch.latencies]) < len(measured) and time.perf_counter() < deadline
    ):
        await asyncio.sleep(0.05)
    await slack.drain(quiet=0.2, timeout=30)
    unsubscribe()
    latencies = [watch.latencies[t] for t in measured if t in watch.latencies]
    result = summary(latencies, len(measured))
    result["duplicates"] = sum(1 for t in measured if watch.replies.get(t, 0) > 1)
    result["retried_deliveries"] = sum(1 for d in slack.deliveries() if d.retry_num)
    return result


async def serve_on(slack: LocalSlack, web_app: web.Application) -> web.AppRunner:
    """Serve an aiohttp app on loopback and point the emulator at it."""
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    return runner


def baton_services(settings: Settings) -> tuple[Services, str]:
    """Baton's services with the serving thread count; the stand-in sentiment only if need be."""
    encoder = TransformerEncoder(default_model_dir(), threads=model_threads())
    db = open_database(settings.db_path)
    knowledge = KnowledgeBase(db, encoder)
    sync_faq_file(knowledge, sample_path())
    found = default_head_path().exists()
    scorer: SentimentModel = load_scorer() if found else NeutralSentiment()
    brain = Brain(encoder, knowledge, scorer, HumanRequestDetector(encoder))
    return Services(settings, db, encoder, knowledge, brain), "bundled head" if found else "neutral stand-in"


async def run_baton(services: Services, rate: float, seconds: float, texts: list[str]) -> dict[str, Any]:
    """Baton, served like `baton serve`, against a fresh emulator."""
    async with LocalSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        settings = Settings(
            db_path=services.settings.db_path,
            bot_token=slack.bot_token,
            signing_secret=slack.signing_secret,
            api_url=slack.api_url,
            agent_channel="C_AGENTS",
        )
        app = build_app(settings, services, client)
        await app.baton.start()
        runner = await serve_on(slack, build_web_app(app))
        try:
            result = await drive(slack, rate, seconds, texts)
            await app.baton.idle()
        finally:
            await runner.cleanup()
            await app.baton.close()
        kinds = services.db.execute("select kind, count(*) from outbox group by kind").fetchall()
        result["replies_by_kind"] = dict(kinds)
        return result


def echo_app(token: str, api_url: str, signing_secret: str) -> AsyncApp:
    """The baseline: a bare Bolt app that echoes each person's message in its thread."""
    app = AsyncApp(client=AsyncWebClient(token=token, base_url=api_url), signing_secret=signing_secret)

    @app.event("message")
    async def echo(event: dict[str, Any], say: Callable[..., Awaitable[Any]]) -> None:
        if not event.get("bot_id") and not event.get("subtype"):
            await say(text=event["text"], thread_ts=event["ts"])

    return app


async def run_echo(rate: float, seconds: float, texts: list[str]) -> dict[str, Any]:
    """The bare echo app against a fresh emulator."""
    async with LocalSlack() as slack:
        app = echo_app(slack.bot_token, slack.api_url, slack.signing_secret)
        runner = await serve_on(slack, app.web_app(path="/slack/events"))
        try:
            return await drive(slack, rate, seconds, texts)
        finally:
            await runner.cleanup()


async def main(rate: float, seconds: float) -> dict[str, Any]:
    texts = questions()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db_path=Path(tmp) / "baton.db", agent_channel="C_AGENTS")
        started = time.perf_counter()
        services, sentiment = await asyncio.to_thread(baton_services, settings)
        ready_s = time.perf_counter() - started
        try:
            baton = await run_baton(services, rate, seconds, texts)
        finally:
            services.close()
    echo = await run_echo(rate, seconds, texts)
    ratio = lambda key: round(baton[key] / echo[key], 2) if echo[key] else None  # noqa: E731
    return {
        "bench": "slack_e2e",
        "rate_per_s": rate,
        "seconds": seconds,
        "events": int(rate * seconds),
        "baton": baton,
        "echo": echo,
        "ratio_p50": ratio("p50_ms"),
        "ratio_p99": ratio("p99_ms"),
        "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS},
        "meets_targets": baton["p50_ms"] <= TARGET_P50_MS and baton["p99_ms"] <= TARGET_P99_MS,
        "sentiment": sentiment,
        "model_threads": model_threads(),
        "startup_s": round(ready_s, 1),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.slack_e2e", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="customer messages per second (default 20)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to keep posting (default 30)")
    options = parser.parse_args()
    print(json.dumps(asyncio.run(main(options.rate, options.seconds)), indent=2))
