"""Baton's Slack app served on loopback against the local Slack emulator, as Slack would drive it.

The sample FAQ is imported once per session (real model); each test gets its own copy of
that database, its own emulator and its own app, so tests share nothing but the models.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import torch
import yaml
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import BatonApp, build_app
from bot.brain import Brain
from bot.localslack import AppIdentity, Channel, LocalSlack, User, World
from bot.localslack.events import signed_headers
from bot.localslack.store import Message
from bot.runner import build_web_app, model_threads
from bot.services import Services, sync_faq_file
from bot.settings import Settings
from handoff.knowledge import KnowledgeBase
from handoff.outbox import RetryPolicy
from handoff.store import open_database
from models.encoder import Encoder
from models.kb import sample_path
from models.requests import HumanRequestDetector
from models.sentiment import Polarity, Sentiment, SentimentModel, default_head_path, load_scorer

HOST, CUSTOMER = "T_HOST", "T_CUST"
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


class NeutralSentiment:
    """Stands in for the bundled sentiment head until its file is trained: every turn is calm."""

    def score(self, text: str, vector: np.ndarray | None = None) -> Sentiment:
        return Sentiment(0.0, Polarity.NEUTRAL)

    def score_batch(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Sentiment]:
        return [self.score(text) for text in texts]


@pytest.fixture(scope="package", autouse=True)
def serving_threads() -> Iterator[None]:
    """Forward passes with the thread count `baton serve` uses, for this package's tests only."""
    before = torch.get_num_threads()
    torch.set_num_threads(model_threads())
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def scorer(encoder: Encoder) -> SentimentModel:
    """The bundled sentiment scorer on the shared encoder, or a neutral stand-in while it is not there yet."""
    return load_scorer(encoder=encoder) if default_head_path().exists() else NeutralSentiment()


@pytest.fixture(scope="session")
def requests_detector(encoder: Encoder) -> HumanRequestDetector:
    return HumanRequestDetector(encoder)


@pytest.fixture(scope="package")
def faq_db(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """A database with the sample FAQ imported and its embeddings cached."""
    path = tmp_path_factory.mktemp("faq") / "baton.db"
    db = open_database(path)
    sync_faq_file(KnowledgeBase(db, encoder), sample_path())
    db.close()
    return path


@pytest.fixture
def db_path(tmp_path: Path, faq_db: Path) -> Path:
    """This test's own copy of the FAQ database."""
    path = tmp_path / "baton.db"
    shutil.copy(faq_db, path)
    return path


def manifest() -> dict[str, Any]:
    """The Slack app manifest Baton ships."""
    return dict(yaml.safe_load(MANIFEST.read_text(encoding="utf-8")))


def world() -> World:
    """The emulator's seed with the manifest's events, plus an employee, two channels and a DM."""
    app = manifest()
    identity = AppIdentity(
        scopes=tuple(app["oauth_config"]["scopes"]["bot"]),
        events=frozenset(app["settings"]["event_subscriptions"]["bot_events"]),
    )
    seed = World(app=identity)
    seed.users.append(User("U_EMPLOYEE", HOST, "eve", "Eve Employee", "Eve"))
    staff = ["U_BATON", "U_AGENT1"]
    seed.add_channel(Channel("C_INTERNAL", "it-help", [*staff, "U_EMPLOYEE"]))
    seed.add_channel(Channel("C_LOBBY", "lobby", [*staff, "U_EMPLOYEE"]))
    seed.dm_with("U_EMPLOYEE")
    return seed


@pytest.fixture
def parts(encoder: Encoder, scorer: SentimentModel, requests_detector: HumanRequestDetector) -> tuple:
    return encoder, scorer, requests_detector


class Harness:
    """One emulator and one Baton app serving it; `restart` swaps in a fresh app on the same DB."""

    def __init__(self, slack: LocalSlack, db_path: Path, parts: tuple, **settings: Any) -> None:
        self.slack = slack
        self.db_path = db_path
        self.parts = parts
        self.overrides = settings
        self.app: BatonApp
        self.services: Services
        self._runner: web.AppRunner | None = None

    @property
    def settings(self) -> Settings:
        base = Settings(
            db_path=self.db_path,
            bot_token=self.slack.bot_token,
            signing_secret=self.slack.signing_secret,
            api_url=self.slack.api_url,
            agent_channel="C_AGENTS",
        )
        return replace(base, **self.overrides)

    def make_services(self) -> Services:
        encoder, scorer, detector = self.parts
        db = open_database(self.db_path)
        knowledge = KnowledgeBase(db, encoder)
        return Services(self.settings, db, encoder, knowledge, Brain(encoder, knowledge, scorer, detector))

    async def up(self, secret: str | None = None) -> BatonApp:
        """Build, start and serve a new app; point the emulator at it."""
        self.services = self.make_services()
        client = AsyncWebClient(token=self.slack.bot_token, base_url=self.slack.api_url)
        settings = replace(self.settings, signing_secret=secret or self.settings.signing_secret)
        self.app = build_app(settings, self.services, client)
        self.app.baton.courier.policy = RetryPolicy(base=0.02, inline=3)
        await self.app.baton.start()
        self._runner = web.AppRunner(build_web_app(self.app), shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.slack.app_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/slack/events"
        return self.app

    async def down(self) -> None:
        """Stop serving, stop the app, close its database."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            await self.app.baton.close()
            self.services.close()

    async def restart(self) -> BatonApp:
        """A new process, as far as Baton can tell: new app, new connection, same database file."""
        await self.down()
        return await self.up()

    @property
    def url(self) -> str:
        return str(self.slack.app_url).removesuffix("/slack/events")

    async def settle(self) -> None:
        """Wait until Slack delivered everything and Baton finished every turn."""
        while True:
            await self.slack.drain(quiet=0.03)
            await self.app.baton.idle()
            if not self.slack.busy and not len(self.app.baton.tasks) and not self.app.baton.courier.busy:
                return

    def replies(self, channel: str, ts: str) -> list[Message]:
        """Baton's messages in the thread of `ts`."""
        return [m for m in self.slack.messages(channel, ts)[1:] if m.get("bot_id") == "B_BATON"]

    async def answer_to(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> list[Message]:
        """Post as `user`, wait for everything, and return Baton's replies in that thread."""
        ts = await self.slack.post(user, channel, text, thread_ts)
        await self.settle()
        return self.replies(channel, thread_ts or ts)

    async def send_raw(
        self, payload: dict[str, Any], *, headers: dict[str, str] | None = None, secret: str | None = None
    ) -> tuple[int, str]:
        """POST an Events API payload to the app, signed like Slack (or as told)."""
        body = json.dumps(payload)
        signed = signed_headers(secret or self.slack.signing_secret, body, "application/json")
        async with (
            aiohttp.ClientSession() as session,
            session.post(str(self.slack.app_url), data=body, headers={**signed, **(headers or {})}) as resp,
        ):
            return resp.status, await resp.text()


@pytest.fixture
def slack_options() -> dict[str, Any]:
    """Emulator options; a test overrides this fixture for short ack timeouts and the like."""
    return {"ack_timeout": 3.0, "retry_backoff": (0.0,)}


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Setting overrides for the app under test."""
    return {}


@pytest.fixture
async def harness(
    db_path: Path, parts: tuple, slack_options: dict[str, Any], app_settings: dict[str, Any]
) -> AsyncIterator[Harness]:
    async with LocalSlack(world(), **slack_options) as slack:
        harness = Harness(slack, db_path, parts, **app_settings)
        await harness.up()
        try:
            yield harness
        finally:
            await harness.down()


def texts(messages: list[Message]) -> list[str]:
    return [m.get("text", "") for m in messages]
