"""Errors of the local Slack emulator.

`SlackError` carries a Web API error code (answered as `{"ok": false, "error": code}`);
`LocalSlackError` means the Python API was misused (unknown user, channel or message).
"""

from __future__ import annotations


class SlackError(Exception):
    """A Slack Web API error such as `channel_not_found`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class LocalSlackError(Exception):
    """The emulator's Python API was called with something the world does not hold."""
