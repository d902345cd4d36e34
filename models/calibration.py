"""Calibrating a fine-tuned encoder on its own knowledge base, without any test labels.

A fine-tuned encoder has seen every question of its knowledge base, so the KB cannot be asked
against itself as the frozen encoder's calibration does (models/faq.py). Folds of the KB are
held out before fine-tuning instead: each fold holds out a share of the entries entirely (their
questions stand in for questions the KB does not cover) and a share of every other entry's
questions (stand-ins for questions it covers). A model tuned on the rest of the fold answers
them, and the answers (top cosine, right or wrong, covered or not) are the evidence.

The confidence is a logistic of the top cosine that is 0.5 at the median held-out entry (each
held-out entry's median top cosine, then the median over entries, so a large entry counts once),
with the slope fitted to the evidence. So, as with the frozen encoder, the default threshold 0.5
turns away at least half of the questions about topics the KB lacks, and means the same on any
KB. The rule was chosen on pseudo-splits of other intent sets (README, "How Baton decides"):
a threshold halfway up to the right answers' median scored better MCC when the stand-in
out-of-scope questions were held-out entries, but turned away 8 points of in-scope questions
when they came from other domains, where this rule lost 1 point and matched the best MCC.

Raises `CalibrationError` when the evidence cannot place a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HELD_OUT_SHARE = 0.2  # of the entries (and of each other entry's questions) per fold
MIN_HELD_OUT_ENTRIES = 40  # enough folds that this many entries are held out in all (at most MAX_FOLDS)
MAX_FOLDS = 5
MIN_ENTRIES = 5


class CalibrationError(Exception):
    """The knowledge base or the evidence cannot place a threshold."""


@dataclass(frozen=True)
class Fold:
    """Rows to fine-tune on, rows to ask, and the entries held out entirely."""

    train: np.ndarray
    calibration: np.ndarray
    held_out: frozenset[str]


@dataclass(frozen=True)
class Evidence:
    """Per calibration question: its top cosine, whether its best entry is right, whether uncovered."""

    top: np.ndarray
    correct: np.ndarray
    unknown: np.ndarray
    entry: np.ndarray  # the question's own entry

    @classmethod
    def join(cls, parts: Sequence[Evidence]) -> Evidence:
        """The evidence of several folds together."""
        fields = ("top", "correct", "unknown", "entry")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


@dataclass(frozen=True)
class Threshold:
    """Where the confidence is 0.5 on the top cosine, and how fast it rises there."""

    cosine: float
    slope: float

    def confidence(self, top: np.ndarray) -> np.ndarray:
        """The confidence of top cosines, in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.slope * (np.asarray(top) - self.cosine), -30, 30)))


def folds(labels: Sequence[str], seed: int = 0) -> list[Fold]:
    """Folds of held-out entries and questions, enough to hold out MIN_HELD_OUT_ENTRIES in all."""
    y = np.asarray(labels)
    entries = np.random.default_rng(1000 + seed).permutation(np.unique(y))
    if len(entries) < MIN_ENTRIES:
        raise CalibrationError(f"calibration needs at least {MIN_ENTRIES} entries, not {len(entries)}")
    per_fold = max(2, round(HELD_OUT_SHARE * len(entries)))
    count = min(MAX_FOLDS, math.ceil(MIN_HELD_OUT_ENTRIES / per_fold), len(entries) // per_fold)
    return [_fold(y, entries, per_fold, fold, seed) for fold in range(max(1, count))]


def _fold(y: np.ndarray, entries: np.ndarray, per_fold: int, fold: int, seed: int) -> Fold:
    held_out = frozenset(np.roll(entries, -fold * per_fold)[:per_fold].tolist())
    rng = np.random.default_rng(2000 + seed + fold)
    train: list[int] = []
    calibration: list[int] = []
    for entry in sorted(set(y.tolist())):
        rows = rng.permutation(np.flatnonzero(y == entry)).tolist()
        asked = (
            len(rows) if entry in held_out else (round(HELD_OUT_SHARE * len(rows)) if len(rows) >= 3 else 0)
        )
        calibration += rows[:asked]
        train += rows[asked:]
    return Fold(np.array(train, dtype=np.int64), np.array(calibration, dtype=np.int64), held_out)


def evidence(fold: Fold, labels: Sequence[str], top: np.ndarray, predicted: Sequence[str]) -> Evidence:
    """The evidence of one fold from its calibration questions' top cosines and best entries."""
    truth = np.asarray(labels)[fold.calibration]
    unknown = np.isin(truth, sorted(fold.held_out))
    correct = (np.asarray(predicted) == truth) & ~unknown
    return Evidence(np.asarray(top, dtype=np.float64), correct, unknown, truth)


def threshold(seen: Evidence) -> Threshold:
    """Confidence 0.5 at the median held-out entry's median top cosine; slope fitted."""
    if not seen.unknown.any() or not seen.correct.any():
        raise CalibrationError("calibration needs uncovered questions and questions answered right")
    held_out = seen.entry[seen.unknown]
    per_entry = [np.median(seen.top[seen.unknown][held_out == entry]) for entry in np.unique(held_out)]
    cosine = float(np.median(per_entry))
    return Threshold(cosine, _slope(seen, cosine))


def _slope(seen: Evidence, cosine: float, l2: float = 1e-4) -> float:
    """The logistic slope at a fixed centre: right answers against the rest, classes weighted alike."""
    x = seen.top - cosine
    y = seen.correct.astype(np.float64)
    w = np.where(seen.correct, 0.5 / y.sum(), 0.5 / max(1.0, len(y) - y.sum()))
    slope = 10.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(slope * x, -30, 30)))
        gradient = float((w * (p - y) * x).sum()) + l2 * slope
        curvature = float((w * p * (1 - p) * x * x).sum()) + l2
        slope -= gradient / curvature
    return max(slope, 1.0)
