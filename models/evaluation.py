"""Scoring a FAQ retriever on labelled questions, where unknown labels mean "hand off".

Pure functions over plain arrays; raises nothing beyond numpy's own errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

OOS = "oos"


@dataclass(frozen=True)
class Scores:
    """The figures `baton eval` reports for one threshold."""

    in_scope_accuracy: float
    oos_recall: float
    oos_precision: float
    accuracy: float
    mcc: float
    threshold: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain values for JSON."""
        return asdict(self)


def decide_labels(best: list[str], confidence: np.ndarray, threshold: float) -> np.ndarray:
    """The predicted label per question: the best entry, or `oos` below the threshold."""
    return np.where(confidence >= threshold, np.asarray(best, dtype=object), OOS)


def score(gold: list[str], predicted: np.ndarray, threshold: float) -> Scores:
    """In-scope accuracy, out-of-scope recall/precision, accuracy and multi-class MCC."""
    y = np.asarray(gold, dtype=object)
    p = np.asarray(predicted, dtype=object)
    in_scope = y != OOS
    said_oos = p == OOS
    return Scores(
        in_scope_accuracy=_mean(p[in_scope] == y[in_scope]),
        oos_recall=_mean(said_oos[~in_scope]),
        oos_precision=_mean(~in_scope[said_oos]),
        accuracy=_mean(p == y),
        mcc=matthews(y, p),
        threshold=float(threshold),
        n=len(y),
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def matthews(gold: np.ndarray, predicted: np.ndarray) -> float:
    """Matthews correlation coefficient for any number of classes (Gorodkin's R_K)."""
    classes, codes = np.unique(np.concatenate([gold, predicted]).astype(str), return_inverse=True)
    k, n = len(classes), len(gold)
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (codes[:n], codes[n:]), 1)
    t, p = confusion.sum(axis=1), confusion.sum(axis=0)
    c, s = np.trace(confusion), confusion.sum()
    denominator = np.sqrt((s * s - p @ p) * (s * s - t @ t))
    return float((c * s - t @ p) / denominator) if denominator else 0.0


def sweep(gold: list[str], best: list[str], confidence: np.ndarray, steps: int = 19) -> list[Scores]:
    """Scores at evenly spaced thresholds, for choosing one by eye."""
    thresholds = np.linspace(0.05, 0.95, steps)
    return [score(gold, decide_labels(best, confidence, float(t)), float(t)) for t in thresholds]
