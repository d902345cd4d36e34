"""FAQ retrieval: the best entry for a question, a calibrated confidence and the runner-up.

Raises `FaqError` for an index that cannot answer (no entries, mismatched shapes).
"""

from __future__ import annotations

from dataclasses import dataclass


class FaqError(Exception):
    """The FAQ index cannot be built or queried."""


@dataclass(frozen=True)
class Candidate:
    """One FAQ entry considered for a question."""

    entry_id: str
    similarity: float  # best cosine between the question and the entry's example questions
    probability: float  # the entry's share of the classifier's belief, in [0, 1]


@dataclass(frozen=True)
class Retrieval:
    """What the index thinks of one question."""

    best: Candidate | None
    runner_up: Candidate | None
    confidence: float  # calibrated probability in [0, 1] that `best` answers the question
