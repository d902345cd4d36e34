"""Errors of the local Slack emulator.

`SlackError` carries a Web API error code (answered as `{"ok": false, "error": code}`);
`LocalSlackError` means the Python API was misused (unknown user, channel or message);
`StateFileError` means a saved state file cannot be read back (the emulator then starts empty).
"""

from __future__ import annotations


class SlackError(Exception):
    """A Slack Web API error such as `channel_not_found`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class LocalSlackError(Exception):
    """The emulator's Python API was called with something the world does not hold."""


class StateFileError(Exception):
    """A saved state file is unreadable, not JSON, or not a state this emulator wrote."""
