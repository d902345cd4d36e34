"""Offline evaluation of a sentiment backend on a `text,label` CSV.

`negative` is the class to detect; every other label counts as not negative. Backends: `default`
(Baton's shipped scorer on the bundled encoder), `vader` (compound <= -0.05), the path of a head
.npz, or the path of a local Hugging Face sequence-classification checkpoint.
Raises `EvalError` for an unreadable, malformed or empty file or an unavailable backend.

    python -m models.sentiment_eval --test a.csv --test b.csv --backend default --backend vader
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.encoder import Encoder, TransformerEncoder, default_model_dir
from models.kb import KbError, read_rows, read_text
from models.sentiment import (
    HeadSentiment,
    Polarity,
    SentimentError,
    SentimentModel,
    load_scorer,
)

VADER_NEGATIVE = -0.05  # VADER's documented cut-off for a negative compound score
BATCH = 64


class EvalError(Exception):
    """The test file or the backend cannot be used."""


@dataclass(frozen=True)
class Example:
    """One labelled text."""

    text: str
    label: str

    @property
    def negative(self) -> bool:
        """Whether the gold label is the class to detect."""
        return self.label.strip().lower() == Polarity.NEGATIVE.value


@dataclass(frozen=True)
class Metrics:
    """Detection quality for the negative class, plus binary accuracy."""

    n: int
    negative_precision: float
    negative_recall: float
    negative_f1: float
    accuracy: float


def read_examples(path: Path) -> list[Example]:
    """Read a UTF-8 CSV with a `text,label` header, refusing a malformed row with its line named."""
    try:
        rows = read_rows(read_text(path), str(path))
    except KbError as exc:
        raise EvalError(str(exc)) from exc
    return [Example(text, label) for _, text, label in rows]  # texts as written: the models see them so


def compute_metrics(gold: Sequence[bool], predicted: Sequence[bool]) -> Metrics:
    """Precision, recall and F1 of `negative`, and accuracy, from gold and predicted flags."""
    if len(gold) != len(predicted):
        raise EvalError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    pairs = list(zip(gold, predicted, strict=True))
    true_pos = sum(g and p for g, p in pairs)
    false_pos = sum(p and not g for g, p in pairs)
    false_neg = sum(g and not p for g, p in pairs)
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0
    return Metrics(len(pairs), precision, recall, f1, accuracy)


def embed(texts: Sequence[str], encoder: Encoder, batch: int = BATCH) -> np.ndarray:
    """Encode texts in length-sorted batches (less padding), returned in the original order."""
    vectors = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    order = np.argsort([len(text) for text in texts], kind="stable")
    for start in range(0, len(texts), batch):
        rows = order[start : start + batch]
        vectors[rows] = encoder.encode([texts[i] for i in rows])
    return vectors


def predict_vader(texts: Sequence[str]) -> list[bool]:
    """VADER's verdicts: negative when the compound score is at most -0.05."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as exc:
        raise EvalError("the vader backend needs `pip install vaderSentiment`") from exc
    analyzer = SentimentIntensityAnalyzer()
    return [analyzer.polarity_scores(text)["compound"] <= VADER_NEGATIVE for text in texts]


def predict_model(texts: Sequence[str], model: SentimentModel, vectors: np.ndarray | None) -> list[bool]:
    """A Baton scorer's verdicts, in batches."""
    verdicts: list[bool] = []
    for start in range(0, len(texts), BATCH):
        chunk = vectors[start : start + BATCH] if vectors is not None else None
        scored = model.score_batch(texts[start : start + BATCH], chunk)
        verdicts.extend(s.label is Polarity.NEGATIVE for s in scored)
    return verdicts


def predictor(backend: str, encoder: Encoder | None = None) -> Callable[[list[str]], list[bool]]:
    """A function from texts to negative verdicts for a backend name or checkpoint path."""
    if backend == "vader":
        return predict_vader
    path = None if backend == "default" else Path(backend)
    if path is not None and not (path.is_dir() or path.suffix == ".npz"):
        raise EvalError(
            f"backend must be default, vader, a head .npz or a checkpoint directory, not {backend}"
        )
    try:
        scorer = load_scorer(path, encoder)
    except SentimentError as exc:
        raise EvalError(str(exc)) from exc
    if isinstance(scorer, HeadSentiment):  # it reads the bundled encoder's sentence vector
        enc = encoder or TransformerEncoder(default_model_dir())
        return lambda texts: predict_model(texts, scorer, embed(texts, enc))
    return lambda texts: predict_model(texts, scorer, None)  # it runs its own layers or model


def run(test: Path | str, backend: str = "default", encoder: Encoder | None = None) -> dict[str, Any]:
    """Evaluate one backend on one CSV; returns the metrics plus backend, test and seconds."""
    examples = read_examples(Path(test))
    predict = predictor(backend, encoder)
    started = time.perf_counter()
    predicted = predict([example.text for example in examples])
    seconds = time.perf_counter() - started
    metrics = compute_metrics([example.negative for example in examples], predicted)
    return {"backend": backend, "test": str(test), **asdict(metrics), "seconds": round(seconds, 2)}


def render(result: dict[str, Any], as_json: bool = False) -> str:
    """One JSON object, or a short human-readable report."""
    if as_json:
        return json.dumps(result, sort_keys=True)
    return "\n".join(
        [
            f"sentiment eval: {result['test']} ({result['n']} texts), backend {result['backend']}",
            f"  negative precision {result['negative_precision']:.3f}"
            f"  recall {result['negative_recall']:.3f}  F1 {result['negative_f1']:.3f}",
            f"  accuracy (negative vs not) {result['accuracy']:.3f}  in {result['seconds']:.1f}s",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Evaluate each backend on each test file and print the reports."""
    parser = argparse.ArgumentParser(prog="python -m models.sentiment_eval")
    parser.add_argument("--test", type=Path, action="append", required=True)
    parser.add_argument("--backend", action="append", help="default, vader or a checkpoint dir")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    backends = args.backend or ["default"]
    encoder = TransformerEncoder(default_model_dir()) if "default" in backends else None
    for test in args.test:
        for backend in backends:
            print(render(run(test, backend, encoder), args.json), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
