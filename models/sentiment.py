"""Sentiment of a customer turn.

(Being built: see issue 3.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Polarity(Enum):
    """The label of a turn's sentiment."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


@dataclass(frozen=True)
class Sentiment:
    """A turn's sentiment: score in [-1, 1], its label and the signals that fired."""

    score: float
    label: Polarity
    signals: tuple[str, ...] = ()
