"""FAQ retrieval: the best entry for a question, a calibrated confidence and the runner-up.

The index holds the example questions of every entry as unit vectors. An entry's
similarity to a question is its best example's cosine. The confidence is calibrated on
the knowledge base itself, without test labels: each example is asked against the others
(leave-one-out: is the answer right?) and against the index with its whole entry held out
(a stand-in for a question the knowledge base does not cover). A logistic fit on those
gives the direction (how similarity and margin to the runner-up trade off) and the slope;
the intercept puts confidence 0.5 at the median held-out question, so the default
threshold 0.5 turns away at least half of the questions about topics the knowledge base
lacks, and means the same on any knowledge base.

Raises `FaqError` for an index that cannot answer (no entries, mismatched shapes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CALIBRATION_SAMPLE = 2000
FOLDS = 5
# Below this many examples one matrix product over all of them is fast enough (under 2 ms).
SHORTLIST_MIN_EXAMPLES = 20_000
SHORTLIST_SHARE = 0.02  # of the examples scored exactly per query on a large index...
SHORTLIST_MIN = 1_000  # ...and never fewer than this


class FaqError(Exception):
    """The FAQ index cannot be built or queried."""


@dataclass(frozen=True)
class Candidate:
    """One FAQ entry considered for a question."""

    entry_id: str
    similarity: float  # best cosine between the question and the entry's example questions
    probability: float  # the entry's share of the index's belief, in [0, 1]


@dataclass(frozen=True)
class Retrieval:
    """What the index thinks of one question."""

    best: Candidate | None
    runner_up: Candidate | None
    confidence: float  # calibrated probability in [0, 1] that `best` answers the question


@dataclass(frozen=True)
class Calibrator:
    """Logistic map from (best similarity, margin to the runner-up) to P(right)."""

    weights: tuple[float, float, float]

    def confidence(self, best: np.ndarray, second: np.ndarray) -> np.ndarray:
        """P(right) for arrays of best and runner-up similarities."""
        w0, w1, w2 = self.weights
        z = w0 + w1 * best + w2 * (best - second)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


# Without enough entries to hold some out, fall back to a fit measured on public intent sets.
PRIOR_CALIBRATOR = Calibrator((-9.0, 14.0, 10.0))
SOFTMAX_TEMPERATURE = 0.05
DEFAULT_THRESHOLD = 0.5


class FaqIndex:
    """Example vectors grouped by entry, answering nearest-entry queries."""

    def __init__(self, vectors: np.ndarray, labels: list[str], calibrator: Calibrator) -> None:
        if vectors.ndim != 2 or len(vectors) != len(labels):
            raise FaqError(f"{len(labels)} labels for vectors of shape {vectors.shape}")
        if not labels:
            raise FaqError("the knowledge base has no example questions")
        order = np.argsort(np.asarray(labels), kind="stable")
        self.vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        sorted_labels = np.asarray(labels)[order]
        self.entries, self._starts = np.unique(sorted_labels, return_index=True)
        self.example_entry = np.searchsorted(self.entries, sorted_labels)
        self.calibrator = calibrator
        self._shortlist = (
            SignShortlist(self.vectors, self.example_entry, self._starts)
            if len(self.vectors) >= SHORTLIST_MIN_EXAMPLES
            else None
        )

    @classmethod
    def build(
        cls, vectors: np.ndarray, labels: list[str], seed: int = 0, calibrator: Calibrator | None = None
    ) -> FaqIndex:
        """An index with `calibrator`, or else one fitted on its own examples."""
        index = cls(vectors, labels, calibrator or PRIOR_CALIBRATOR)
        if calibrator is None and len(index.entries) >= FOLDS:
            index.calibrator = fit_calibrator(index, seed)
        return index

    def entry_scores(self, queries: np.ndarray) -> np.ndarray:
        """Per entry, the best cosine between each query and that entry's examples."""
        sims = queries.astype(np.float32, copy=False) @ self.vectors.T
        return np.maximum.reduceat(sims, self._starts, axis=1)

    def search(self, queries: np.ndarray) -> list[Retrieval]:
        """The best entry, runner-up and confidence for each query vector."""
        if self._shortlist is None:
            return [self._retrieval(row) for row in self.entry_scores(queries)]
        queries = queries.astype(np.float32, copy=False)
        return [self._retrieval(self._shortlist.entry_scores(query)) for query in queries]

    def _retrieval(self, scores: np.ndarray) -> Retrieval:
        top = np.argsort(-scores)[:2]
        shares = softmax(scores / SOFTMAX_TEMPERATURE)
        candidates = [Candidate(str(self.entries[i]), float(scores[i]), float(shares[i])) for i in top]
        second = scores[top[1:2]] if len(top) > 1 else np.zeros(1, dtype=np.float32)
        confidence = float(self.calibrator.confidence(scores[top[:1]], second)[0])
        if not np.isfinite(scores[top[0]]) or scores[top[0]] <= 0.0:
            confidence = 0.0  # a zero vector (empty text) matches nothing
        return Retrieval(candidates[0], candidates[1] if len(candidates) > 1 else None, confidence)


class SignShortlist:
    """Coarse-to-fine entry scores for one query over a large index.

    The signs of every example vector, packed into bits, shortlist the examples nearest the
    query in Hamming distance, and only those are scored exactly. An entry without a
    shortlisted example keeps the mean cosine of its examples, a lower bound of its true score.
    bench/RESULTS.md measures the speed and how often the answer differs from exhaustive search.
    """

    def __init__(self, vectors: np.ndarray, example_entry: np.ndarray, starts: np.ndarray) -> None:
        self._vectors = vectors
        self._example_entry = example_entry
        # Word-major, so each XOR below runs over one contiguous array.
        self._words = _sign_words(vectors).T.copy()
        counts = np.diff(np.append(starts, len(vectors)))
        self._means = (np.add.reduceat(vectors, starts, axis=0) / counts[:, None]).astype(np.float32)
        self._size = max(SHORTLIST_MIN, int(len(vectors) * SHORTLIST_SHARE))

    def entry_scores(self, query: np.ndarray) -> np.ndarray:
        """Exact scores for entries with a shortlisted example, mean cosine for the rest."""
        scores = self._means @ query
        rows = self.candidates(query)
        # einsum, not `@`: OpenBLAS splits a product this size over two threads, and on a busy
        # machine waiting for the second one cost 8 ms against 0.4 ms for one thread.
        exact = np.einsum("ij,j->i", self._vectors[rows], query)
        np.maximum.at(scores, self._example_entry[rows], exact)
        return scores

    def candidates(self, query: np.ndarray) -> np.ndarray:
        """The examples nearest the query in Hamming distance between sign bits (ties kept)."""
        words = _sign_words(query[None, :])[0]
        distance = np.zeros(len(self._vectors), dtype=np.uint16)
        for column, word in zip(self._words, words, strict=True):
            distance += _popcount(column ^ word)
        cut = np.searchsorted(np.cumsum(np.bincount(distance)), self._size)
        return np.flatnonzero(distance <= cut)


def _sign_words(vectors: np.ndarray) -> np.ndarray:
    """The sign bits of each row, packed into 64-bit words (zero-padded)."""
    bits = np.packbits(vectors > 0, axis=1)
    padded = np.zeros((len(bits), -(-bits.shape[1] // 8) * 8), dtype=np.uint8)
    padded[:, : bits.shape[1]] = bits
    return padded.view(np.uint64)


_BYTE_BITS = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per 64-bit word (numpy < 2 has no `bitwise_count`: count per byte instead)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    return _BYTE_BITS[words.view(np.uint8)].reshape(len(words), 8).sum(axis=1, dtype=np.uint8)


def softmax(x: np.ndarray) -> np.ndarray:
    """A numerically stable softmax over the last axis."""
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def fit_calibrator(index: FaqIndex, seed: int = 0) -> Calibrator:
    """Fit P(right) on leave-one-out questions and held-out entries of the index itself."""
    rng = np.random.default_rng(seed)
    n = len(index.vectors)
    sample = rng.choice(n, size=min(n, CALIBRATION_SAMPLE), replace=False)
    scores = index.entry_scores(index.vectors[sample])
    own = index.example_entry[sample]
    loo = _leave_one_out_scores(index, sample, scores)
    best_in, second_in, right = _top_two(loo, own)
    folds = rng.permutation(len(index.entries)) % FOLDS
    held_out = scores.copy()
    held_out[folds[own][:, None] == folds[None, :]] = -np.inf  # the whole fold is unknown
    best_out, second_out, _ = _top_two(held_out, own)
    target = np.concatenate([right, np.zeros(len(best_out), dtype=bool)])
    _, w1, w2 = _logistic_fit(
        np.concatenate([best_in, best_out]), np.concatenate([second_in, second_out]), target
    )
    # Put the boundary at the median question about a held-out entry (see the module docstring).
    w0 = -float(np.median(w1 * best_out + w2 * (best_out - second_out)))
    return Calibrator((w0, w1, w2))


def _leave_one_out_scores(index: FaqIndex, sample: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Entry scores of each sampled example with that example itself removed."""
    sims = index.vectors[sample] @ index.vectors.T
    sims[np.arange(len(sample)), sample] = -np.inf
    loo = np.maximum.reduceat(sims, index._starts, axis=1)
    return np.where(np.isfinite(loo), loo, np.minimum(scores, -1.0))


def _top_two(scores: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best and runner-up similarity per row, and whether the best is the row's own entry."""
    order = np.argsort(-scores, axis=1)[:, :2]
    rows = np.arange(len(scores))
    best = scores[rows, order[:, 0]]
    second = scores[rows, order[:, 1]] if scores.shape[1] > 1 else np.zeros(len(scores))
    finite = np.isfinite(second)
    return best, np.where(finite, second, best - 1.0), order[:, 0] == own


def _logistic_fit(best: np.ndarray, second: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """Weights of a logistic regression on (best, margin) by Newton's method, lightly regularised."""
    x = np.column_stack([np.ones_like(best), best, best - second]).astype(np.float64)
    y = target.astype(np.float64)
    w = np.zeros(3)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + 1e-3 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-3 * np.eye(3)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return (float(w[0]), float(w[1]), float(w[2]))
