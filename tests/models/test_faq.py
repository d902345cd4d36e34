"""FAQ retrieval as a pure function of vectors: random unit vectors, no model."""

from __future__ import annotations

import numpy as np
import pytest

from models.faq import DEFAULT_THRESHOLD, FaqError, FaqIndex


def clustered(entries: int, per_entry: int, dim: int = 32, spread: float = 0.15, seed: int = 0):
    """Example vectors scattered around one centre per entry; the centres share a topic direction."""
    rng = np.random.default_rng(seed)
    topic = np.zeros(dim)
    topic[0] = 4.0
    centres = topic + rng.normal(size=(entries, dim)) / np.sqrt(2)
    vectors = np.repeat(centres, per_entry, axis=0) + spread * rng.normal(size=(entries * per_entry, dim))
    labels = [f"e{i}" for i in range(entries) for _ in range(per_entry)]
    return unit(vectors), labels, unit(centres)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_a_question_near_an_entry_finds_it_with_high_confidence() -> None:
    vectors, labels, centres = clustered(12, 6)
    index = FaqIndex.build(vectors, labels)
    results = index.search(centres)
    assert [r.best.entry_id for r in results if r.best] == [f"e{i}" for i in range(12)]
    assert all(r.confidence > DEFAULT_THRESHOLD for r in results)
    assert all(r.runner_up and r.runner_up.entry_id != r.best.entry_id for r in results if r.best)


def test_a_question_far_from_every_entry_gets_low_confidence() -> None:
    vectors, labels, _ = clustered(12, 6)
    index = FaqIndex.build(vectors, labels)
    # Off-topic questions: orthogonal to the knowledge base's shared topic.
    strangers = np.random.default_rng(9).normal(size=(20, 32))
    strangers[:, 0] = -1.0
    assert max(r.confidence for r in index.search(unit(strangers))) < DEFAULT_THRESHOLD


def test_confidence_grows_with_similarity() -> None:
    vectors, labels, centres = clustered(10, 5)
    index = FaqIndex.build(vectors, labels)
    noise = np.random.default_rng(3).normal(size=(1, 32))
    blends = unit(np.concatenate([centres[:1] * (1 - a) + noise * a for a in (0.0, 0.2, 0.35, 0.5)]))
    confidences = [r.confidence for r in index.search(blends)]
    assert confidences == sorted(confidences, reverse=True)


def test_probabilities_are_shares_and_best_is_largest() -> None:
    vectors, labels, centres = clustered(8, 4)
    result = FaqIndex.build(vectors, labels).search(centres[:1])[0]
    assert result.best and result.runner_up
    assert 0.0 <= result.runner_up.probability <= result.best.probability <= 1.0


def test_the_calibrator_is_fitted_on_the_knowledge_base() -> None:
    vectors, labels, _ = clustered(12, 6)
    index = FaqIndex.build(vectors, labels)
    tight = FaqIndex.build(*clustered(12, 6, spread=0.02)[:2])
    assert index.calibrator != tight.calibrator


def test_a_zero_vector_matches_nothing() -> None:
    vectors, labels, _ = clustered(6, 3)
    result = FaqIndex.build(vectors, labels).search(np.zeros((1, 32), dtype=np.float32))[0]
    assert result.confidence == 0.0


def test_a_single_entry_knowledge_base_still_answers() -> None:
    vectors, labels, centres = clustered(1, 3)
    result = FaqIndex.build(vectors, labels).search(centres)[0]
    assert result.best and result.best.entry_id == "e0" and result.runner_up is None


def test_empty_or_mismatched_input_is_refused() -> None:
    with pytest.raises(FaqError):
        FaqIndex.build(np.zeros((0, 8), dtype=np.float32), [])
    with pytest.raises(FaqError):
        FaqIndex.build(np.zeros((3, 8), dtype=np.float32), ["a", "b"])


def test_a_large_index_shortlists_without_changing_in_scope_answers() -> None:
    vectors, labels, centres = clustered(400, 60, dim=48, seed=5)  # 24,000 examples: shortlisted
    index = FaqIndex.build(vectors, labels)
    queries = unit(centres + 0.1 * np.random.default_rng(6).normal(size=centres.shape))
    exhaustive = index.entries[index.entry_scores(queries).argmax(axis=1)]
    assert [r.best.entry_id for r in index.search(queries) if r.best] == list(exhaustive)
