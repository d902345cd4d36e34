"""Fault injection for the Web API: rate limits, server errors, slow and lost responses.

Faults come from a schedule (`add`), a seeded random mode (`random`) or Slack's real
"about one message per second per channel" limit on `chat.postMessage` (`limit_channels`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    """What goes wrong with a Web API call."""

    RATELIMIT = "ratelimit"  # 429, Retry-After, {"ok": false, "error": "ratelimited"}
    ERROR = "error"  # HTTP 500, nothing done
    SLOW = "slow"  # answered normally after `delay` seconds
    TIMEOUT = "timeout"  # nothing done; after `delay` seconds HTTP 504
    LATE = "late"  # done at once (events go out), answered after `delay` seconds


DEFAULT_DELAY = {FaultKind.SLOW: 1.0, FaultKind.TIMEOUT: 60.0, FaultKind.LATE: 1.0}


@dataclass
class Fault:
    """One scheduled fault, for one method (or all when `method` is None)."""

    kind: FaultKind
    method: str | None = None
    times: int | None = 1  # None: forever
    retry_after: int = 1
    delay: float = 0.0
    status: int = 500
    hits: int = 0

    def matches(self, method: str) -> bool:
        """Whether this fault still applies to a call of `method`."""
        left = self.times is None or self.hits < self.times
        return left and self.method in (None, "*", method)


@dataclass
class TokenBucket:
    """Slack's per-channel posting limit: `per_second` sustained, `burst` at once."""

    per_second: float = 1.0
    burst: int = 1
    clock: Callable[[], float] = time.monotonic
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str) -> int | None:
        """Spend a token for `key`, or return the Retry-After seconds if none is left."""
        now = self.clock()
        tokens, last = self._tokens.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        if tokens < 1.0:
            self._tokens[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.per_second))
        self._tokens[key] = (tokens - 1.0, now)
        return None


@dataclass
class RandomFaults:
    """Faults drawn at `rate` from a seeded generator."""

    rate: float
    kinds: tuple[FaultKind, ...]
    methods: frozenset[str] | None
    rng: random.Random
    retry_after: int = 1
    delay: float | None = None

    def draw(self, method: str) -> Fault | None:
        """A fault for this call, or None."""
        if self.methods is not None and method not in self.methods:
            return None
        if self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(self.kinds)
        delay = self.delay if self.delay is not None else DEFAULT_DELAY.get(kind, 0.0)
        return Fault(kind, method, retry_after=self.retry_after, delay=delay, hits=1)


class FaultSchedule:
    """The faults the emulated Web API will inject."""

    def __init__(self) -> None:
        self.scheduled: list[Fault] = []
        self.injected: list[tuple[str, Fault]] = []
        self._random: RandomFaults | None = None
        self._bucket: TokenBucket | None = None

    def add(
        self,
        method: str | None = None,
        kind: FaultKind | str = FaultKind.RATELIMIT,
        times: int | None = 1,
        retry_after: int = 1,
        delay: float | None = None,
        status: int = 500,
    ) -> Fault:
        """Fail the next `times` calls of `method` (None or "*" for every method)."""
        kind = FaultKind(kind)
        wait = DEFAULT_DELAY.get(kind, 0.0) if delay is None else delay
        fault = Fault(kind, method, times, retry_after, wait, status)
        self.scheduled.append(fault)
        return fault

    def random(
        self,
        rate: float,
        seed: int = 0,
        kinds: Iterable[FaultKind | str] = (FaultKind.RATELIMIT, FaultKind.ERROR),
        methods: Iterable[str] | None = None,
        retry_after: int = 1,
        delay: float | None = None,
    ) -> None:
        """Fail a seeded-random `rate` of calls (of `methods`, default all)."""
        chosen = tuple(FaultKind(k) for k in kinds)
        only = frozenset(methods) if methods is not None else None
        self._random = RandomFaults(rate, chosen, only, random.Random(seed), retry_after, delay)

    def limit_channels(
        self, per_second: float = 1.0, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Rate-limit `chat.postMessage` per channel like Slack does (off by default)."""
        self._bucket = TokenBucket(per_second, burst, clock)

    def clear(self) -> None:
        """Remove every fault and the channel limit."""
        self.scheduled.clear()
        self._random = None
        self._bucket = None

    def pick(self, method: str, channel: str | None = None) -> Fault | None:
        """The fault to inject into this call, if any (counts it as used)."""
        fault = self._scheduled(method) or (self._random.draw(method) if self._random else None)
        if fault is None and self._bucket and method == "chat.postMessage" and channel:
            wait = self._bucket.take(channel)
            fault = None if wait is None else Fault(FaultKind.RATELIMIT, method, retry_after=wait, hits=1)
        if fault is not None:
            self.injected.append((method, fault))
        return fault

    def _scheduled(self, method: str) -> Fault | None:
        """The first scheduled fault that still applies, marked as used once more."""
        for fault in self.scheduled:
            if fault.matches(method):
                fault.hits += 1
                return fault
        return None
