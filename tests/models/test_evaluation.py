"""Evaluation metrics on hand-made labels."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluation import OOS, decide_labels, matthews, score, sweep


def test_scores_on_a_hand_counted_example() -> None:
    gold = ["a", "a", "b", OOS, OOS]
    predicted = decide_labels(["a", "b", "b", "a", "b"], np.array([0.9, 0.8, 0.3, 0.2, 0.7]), 0.5)
    assert list(predicted) == ["a", "b", OOS, OOS, "b"]
    s = score(gold, predicted, 0.5)
    assert s.in_scope_accuracy == pytest.approx(1 / 3)
    assert s.oos_recall == pytest.approx(1 / 2)
    assert s.oos_precision == pytest.approx(1 / 2)
    assert s.accuracy == pytest.approx(2 / 5)
    assert s.n == 5 and s.threshold == 0.5


def test_mcc_is_one_for_perfect_and_zero_for_constant_predictions() -> None:
    gold = np.array(["a", "b", OOS, "a"], dtype=object)
    assert matthews(gold, gold.copy()) == pytest.approx(1.0)
    assert matthews(gold, np.array(["a"] * 4, dtype=object)) == 0.0


def test_mcc_matches_the_binary_formula() -> None:
    gold = np.array(["p", "p", "p", "n", "n", "n", "n"], dtype=object)
    pred = np.array(["p", "p", "n", "n", "n", "p", "n"], dtype=object)
    tp, tn, fp, fn = 2, 3, 1, 1
    expected = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert matthews(gold, pred) == pytest.approx(expected)


def test_sweep_runs_from_accepting_everything_towards_refusing_everything() -> None:
    rows = sweep(["a", OOS], ["a", "a"], np.array([0.6, 0.4]))
    assert rows[0].oos_recall == 0.0 and rows[-1].oos_recall == 1.0
