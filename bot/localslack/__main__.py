"""Run the local Slack standalone: `python -m bot.localslack --app-url URL --port 3001`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.localslack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET, LocalSlack


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bot.localslack", description=__doc__)
    parser.add_argument("--app-url", help="the app's Request URL, e.g. http://127.0.0.1:3000/slack/events")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--signing-secret", default=DEFAULT_SIGNING_SECRET)
    parser.add_argument("--bot-token", default=DEFAULT_BOT_TOKEN)
    parser.add_argument("--ack-timeout", type=float, default=3.0)
    return parser.parse_args(argv)


async def serve(options: argparse.Namespace) -> None:
    """Run until cancelled (Ctrl-C)."""
    slack = LocalSlack(
        None,
        options.app_url,
        options.signing_secret,
        options.bot_token,
        ack_timeout=options.ack_timeout,
    )
    await slack.start(options.host, options.port)
    print(
        f"LocalSlack on {slack.url} (base_url {slack.api_url}, bot token {slack.bot_token})",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await slack.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
