"""`baton serve` (HTTP) and `baton socket` (Socket Mode): run the Slack app until stopped.

HTTP: one aiohttp server; `POST /slack/events` takes events, slash commands and
interactivity, `GET /healthz` answers with a small JSON status. Socket Mode: the same app
behind slack_bolt's Socket Mode handler, with `SLACK_APP_TOKEN`.
Slack, aiohttp and the models load only when a server starts, so the other `baton`
commands stay quick to start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any

from bot.settings import Settings

if TYPE_CHECKING:
    from aiohttp import web
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.app import BatonApp
    from bot.services import Services

log = logging.getLogger("baton.runner")
EVENTS_PATH = "/slack/events"
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # a request from Slack, as aiohttp reads it


def run_serve(args: argparse.Namespace) -> int:
    """`baton serve`: the Slack app over HTTP."""
    settings = Settings.from_env(os.environ, slack="http")
    return _run(serve(settings, args.host, args.port or settings.port))


def run_socket(args: argparse.Namespace) -> int:
    """`baton socket`: the Slack app over Socket Mode."""
    settings = Settings.from_env(os.environ, slack="socket")
    return _run(socket(settings))


def _run(main: Coroutine[Any, Any, None]) -> int:
    from bot.app import SetupError

    configure_logging()
    try:
        asyncio.run(main)
    except SetupError as exc:
        print(f"baton: {exc}", file=sys.stderr)
        return 2
    return 0


def configure_logging(level: int = logging.INFO) -> None:
    """Timestamped lines on stderr (ids and numbers only: no message text, no tokens)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build_web_app(app: BatonApp, path: str = EVENTS_PATH) -> web.Application:
    """The aiohttp application: Slack's requests at `path`, and `/healthz`."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

    async def slack_request(request: web.Request) -> web.Response:
        stamp = request.headers.get("X-Slack-Request-Timestamp")
        if stamp is not None and not stamp.isdigit():  # Bolt would fail (500): refuse it as unsigned
            return web.Response(status=401)
        response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(app.baton.health())

    # aiohttp refuses bodies over 1 MiB by default, and Slack retries a refused event, then drops
    # it: a 40,000-character message of emoji codes with its rich-text blocks is larger than that.
    web_app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    web_app.router.add_post(path, slack_request)
    web_app.router.add_get("/healthz", healthz)
    return web_app


@contextlib.asynccontextmanager
async def running(settings: Settings, client: AsyncWebClient | None = None) -> AsyncIterator[BatonApp]:
    """Load the models, build and start the app; stop it all on the way out."""
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.app import build_app, check_workspace

    client = client or AsyncWebClient(token=settings.bot_token, base_url=settings.api_url)
    await check_workspace(client, settings)  # before the models load: a wrong setting fails fast
    services = await asyncio.to_thread(load_services, settings)
    try:
        app = build_app(settings, services, client)
        try:
            await app.baton.start()
            yield app
        finally:
            await app.baton.close()
    finally:
        services.close()


def model_threads() -> int:
    """Threads for forward passes: one core is left to the event loop (on two cores, one).

    More threads than free cores makes the small per-turn batches wait on each other: measured
    on a busy two-core machine, one sentence took 20 ms with one thread and 1 s with two.
    """
    return max(1, (os.cpu_count() or 2) - 1)


def load_services(settings: Settings) -> Services:
    """The services, with the encoder sized for serving."""
    from bot.services import build_services
    from models.encoder import TransformerEncoder, default_model_dir

    encoder = TransformerEncoder(settings.model_dir or default_model_dir(), threads=model_threads())
    return build_services(settings, encoder, serving=True)


async def serve(
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event | None = None,
    client: AsyncWebClient | None = None,
) -> None:
    """Serve HTTP on host:port until `stop` is set (or SIGINT/SIGTERM)."""
    from aiohttp import web

    async with running(settings, client) as app:
        runner = web.AppRunner(build_web_app(app), access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            log.info("listening on http://%s:%d%s", host, port, EVENTS_PATH)
            await (stop or stop_on_signals()).wait()
        finally:
            await runner.cleanup()


async def socket(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Hold a Socket Mode connection until `stop` is set (or SIGINT/SIGTERM)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    async with running(settings) as app:
        handler = AsyncSocketModeHandler(app, settings.app_token)
        await handler.connect_async()
        log.info("connected over Socket Mode")
        try:
            await (stop or stop_on_signals()).wait()
        finally:
            await handler.close_async()


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(sig, stop.set)
    return stop
