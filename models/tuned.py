"""A knowledge base's fine-tuned encoder: whether to tune, the tuning run, and its cache on disk.

The tuned encoder shares the base encoder's embeddings and lower layers: a question runs through
them once, then through the base model's top layers (the vector sentiment and the request check
read) and the tuned top layers (the vector FAQ retrieval reads). Tuning (models/adaptation.py)
and its calibration (models/calibration.py) take minutes on a large KB, so the result is kept in
`<root>/<key>/`, keyed by the base model, the KB's questions and labels, and the recipe: a
changed KB gets a new key, and an unchanged one loads in a second.

Raises `TuningError` when a KB cannot be tuned or a cached tuning cannot be read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.adaptation import (
    RECIPE_VERSION,
    TUNED_LAYERS,
    AdaptationError,
    copy_top_layers,
    epochs_for,
    first_tuned,
    lower_states,
    top_vectors,
    train_top_layers,
)
from models.calibration import CalibrationError, Evidence, Fold, Threshold, evidence, folds, threshold
from models.encoder import TransformerEncoder
from models.faq import PRIOR_CALIBRATOR, Calibrator, FaqIndex

SEED = 0
# Worth tuning (measured on pseudo-splits, README "How Baton decides"): enough entries to learn
# what separates them, and enough phrasings per entry to learn what they have in common.
MIN_ENTRIES = 8
MIN_MEDIAN_EXAMPLES = 5

Report = Callable[[str], None]


class TuningError(Exception):
    """The knowledge base cannot be tuned on, or a cached tuning is unreadable."""


@dataclass(frozen=True)
class TuningInfo:
    """What a tuning run produced besides the layers (kept as `tuning.json`)."""

    key: str
    base_model: str
    recipe: int
    tuned_layers: int
    seed: int
    examples: int
    entries: int
    threshold: float  # top cosine where the confidence is 0.5
    slope: float
    seconds: float


def worth_tuning(labels: Sequence[str]) -> bool:
    """Whether a KB is large enough for fine-tuning to pay (MIN_ENTRIES, MIN_MEDIAN_EXAMPLES)."""
    counts = Counter(labels)
    return len(counts) >= MIN_ENTRIES and statistics.median(counts.values()) >= MIN_MEDIAN_EXAMPLES


def cache_key(base_model: str, texts: Sequence[str], labels: Sequence[str], seed: int = SEED) -> str:
    """A key that changes with the base model, any question or label, the recipe or the seed."""
    digest = hashlib.sha256()
    digest.update(json.dumps([base_model, RECIPE_VERSION, TUNED_LAYERS, seed]).encode())
    for label, text in sorted(zip(labels, texts, strict=True)):
        digest.update(json.dumps([label, text]).encode())
    return digest.hexdigest()[:24]


class TunedEncoder:
    """FAQ vectors from the tuned top layers over the base encoder's shared lower layers."""

    def __init__(self, base: TransformerEncoder, layers: Any, info: TuningInfo) -> None:
        self.base = base
        self.info = info
        self.first = first_tuned(base.model, info.tuned_layers)
        self._layers = layers
        self.name = f"{base.name}+tuned:{info.key}"
        self.dim = base.dim

    @property
    def layers(self) -> Any:
        """The tuned top layers (from layer `first` up), for callers that stack them with others."""
        return self._layers

    @property
    def calibrator(self) -> Calibrator:
        """The KB-calibrated confidence: 0.5 at the tuned threshold (no weight on the margin)."""
        return Calibrator((-self.info.slope * self.info.threshold, self.info.slope, 0.0))

    def encode(self, texts: list[str]) -> np.ndarray:
        """FAQ vectors only (the KB's questions)."""
        return self.base.encode_tops(texts, self.first, [self._layers])[0]

    def encode_pair(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Base vectors and FAQ vectors, from one pass through the shared lower layers."""
        base, tuned = self.base.encode_tops(texts, self.first, [self.base.layers[self.first :], self._layers])
        return base, tuned


def load_or_tune(
    base: TransformerEncoder,
    texts: Sequence[str],
    labels: Sequence[str],
    root: Path,
    report: Report | None = None,
    seed: int = SEED,
) -> TunedEncoder:
    """The cached tuned encoder for this KB, tuning (and caching) it first if there is none."""
    key = cache_key(base.name, texts, labels, seed)
    folder = root / key
    if not (folder / "tuning.json").is_file():
        layers, info = tune(base, texts, labels, key, report, seed)
        _save(folder, layers, info)
        return TunedEncoder(base, layers, info)
    return TunedEncoder(base, *_load(folder, base))


def tune(
    base: TransformerEncoder,
    texts: Sequence[str],
    labels: Sequence[str],
    key: str = "",
    report: Report | None = None,
    seed: int = SEED,
) -> tuple[Any, TuningInfo]:
    """Calibrate on held-out folds, then tune on the whole KB: the layers and what they mean."""
    with _one_thread():
        return _tune(base, texts, labels, key, report or (lambda _: None), seed)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, then restore the count."""
    import torch

    # On a shared two-core machine, two threads spent most of their time waiting for each other:
    # the tests' tiny model tuned in 8.5 s with two threads and 0.4 s with one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tune(
    base: TransformerEncoder, texts: Sequence[str], labels: Sequence[str], key: str, say: Report, seed: int
) -> tuple[Any, TuningInfo]:
    started = time.perf_counter()
    say(f"fine-tuning the top {TUNED_LAYERS} layers on {len(texts)} questions, {len(set(labels))} entries")
    states = lower_states(base.tokenizer, base.model, texts, first_tuned(base.model, TUNED_LAYERS))
    y = np.asarray(labels)
    try:
        point = _calibrate(base, states, y, seed, say)
        layers = train_top_layers(
            base.model, states, y.tolist(), seed=seed, progress=_milestones(say, "final model")
        )
    except (AdaptationError, CalibrationError) as exc:
        raise TuningError(f"cannot fine-tune on this knowledge base: {exc}") from exc
    info = _info(key, base.name, len(texts), len(set(labels)), seed, point, time.perf_counter() - started)
    say(f"fine-tuned in {info.seconds:.0f} s; confidence 0.5 at cosine {info.threshold:.3f}")
    return layers, info


def _calibrate(
    base: TransformerEncoder, states: list[Any], y: np.ndarray, seed: int, say: Report
) -> Threshold:
    """Tune without each fold's held-out questions (as many passes as the whole KB gets) and ask them."""
    parts = folds(y.tolist(), seed)
    epochs = epochs_for(len(y))
    seen = []
    for number, fold in enumerate(parts, 1):
        layers = train_top_layers(
            base.model,
            [states[i] for i in fold.train],
            y[fold.train].tolist(),
            epochs=epochs,
            seed=seed,
            progress=_milestones(say, f"calibration {number}/{len(parts)}"),
        )
        seen.append(_fold_evidence(layers, states, y, fold))
    return threshold(Evidence.join(seen))


def _fold_evidence(layers: Any, states: list[Any], y: np.ndarray, fold: Fold) -> Evidence:
    """Ask a fold's calibration questions of an index over its training questions."""
    vectors = top_vectors(layers, [states[i] for i in np.concatenate([fold.train, fold.calibration])])
    index = FaqIndex(vectors[: len(fold.train)], y[fold.train].tolist(), PRIOR_CALIBRATOR)
    top, best = [], []
    for start in range(len(fold.train), len(vectors), 512):
        scores = index.entry_scores(vectors[start : start + 512])
        top.append(scores.max(axis=1))
        best.append(index.entries[scores.argmax(axis=1)])
    return evidence(fold, y.tolist(), np.concatenate(top), np.concatenate(best).tolist())


def _info(
    key: str, base_model: str, examples: int, entries: int, seed: int, point: Threshold, seconds: float
) -> TuningInfo:
    return TuningInfo(
        key=key,
        base_model=base_model,
        recipe=RECIPE_VERSION,
        tuned_layers=TUNED_LAYERS,
        seed=seed,
        examples=examples,
        entries=entries,
        threshold=round(point.cosine, 6),
        slope=round(point.slope, 6),
        seconds=round(seconds, 1),
    )


def _milestones(say: Report, stage: str) -> Callable[[float], None]:
    """A progress callback that reports every tenth of a stage."""
    reached = [0]

    def progress(share: float) -> None:
        tenth = int(share * 10)
        if tenth > reached[0]:
            reached[0] = tenth
            say(f"  {stage}: {tenth * 10}%")

    return progress


def _save(folder: Path, layers: Any, info: TuningInfo) -> None:
    """Write the layers and info to a temporary folder, then move it into place."""
    from safetensors.torch import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    save_file(
        {k: v.contiguous() for k, v in layers.state_dict().items()}, str(staging / "layers.safetensors")
    )
    (staging / "tuning.json").write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    try:
        staging.rename(folder)
    except OSError:  # another process cached the same key first: theirs is as good
        shutil.rmtree(staging, ignore_errors=True)


def _load(folder: Path, base: TransformerEncoder) -> tuple[Any, TuningInfo]:
    """The cached layers on top of a copy of the base model's top layers, and their info."""
    from safetensors.torch import load_file

    try:
        info = TuningInfo(**json.loads((folder / "tuning.json").read_text(encoding="utf-8")))
        first = first_tuned(base.model, info.tuned_layers)
        layers = copy_top_layers(base.model, first, load_file(str(folder / "layers.safetensors")))
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise TuningError(f"cannot read the cached tuning in {folder}: {exc}") from exc
    return layers.eval(), info
