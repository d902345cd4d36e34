"""Fine-tuning the encoder's top layers for sentiment: the shipped models/data/sentiment_head.npz.

Recipe: the embeddings and lower layers of the bundled encoder stay frozen (a turn runs them once,
shared with FAQ retrieval); a copy of its top `tuned_layers` layers and a linear 3-way classifier on
their mean-pooled, L2-normalised output train with cross-entropy on GoEmotions (negative / neutral /
positive, `ambiguous` as neutral) and SST-2 (its rows choose between negative and positive). The
hidden states entering the first tuned layer are computed once per text and cached (float16). Then
the usual head (`models.sentiment_training`: an MLP on the vector, hashed n-grams, cue weights) is
fitted on the tuned layers' vectors, and the thresholds are set. A seeded tenth of each training
file is held out to choose the checkpoint, the head's epoch and the thresholds; dev and validation
files are never read. Seeded, one torch thread. Raises `TrainingError` for missing data.

    python -m models.sentiment_tuning --data ../shared/data/sentiment \
        --out models/data/sentiment_head.npz
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.adaptation import copy_top_layers, length_batches, lower_states, pooled, top_vectors
from models.encoder import TransformerEncoder, default_model_dir
from models.sentiment import NEGATIVE, NEUTRAL, POSITIVE, Head, save_head
from models.sentiment_eval import read_examples
from models.sentiment_training import (
    HELD_OUT,
    LABELS,
    SEED,
    SOURCES,
    THRESHOLD_SOURCE,
    Corpus,
    TrainingError,
    choose_threshold,
    f1_at,
    featurise,
    fit,
    held_out_values,
    read_lexicon,
    runtime_report,
)
from models.sentiment_training import Settings as HeadSettings


@dataclass(frozen=True)
class Settings:
    """Fine-tuning hyper-parameters."""

    tuned_layers: int = 1  # each tuned layer adds ~2 ms to a turn; the budget is 3 ms
    lr: float = 1e-4  # the tuned layers
    classifier_lr: float = 2e-3
    scale: float = 20.0  # the classifier reads a unit vector: logits = W (scale * v) + b
    batch: int = 32
    epochs: float = 1.0
    checks: int = 4  # held-out checkpoints over the run; the best one is kept
    sst2_weight: float = 0.5
    sst2_share: float = 1.0  # the share of SST-2's fitting rows used (seeded)


@dataclass(frozen=True)
class Rows:
    """Training rows: texts, targets, whether neutral is an option, and their source."""

    texts: list[str]
    targets: np.ndarray  # (n,) int64 in {NEGATIVE, NEUTRAL, POSITIVE}
    binary: np.ndarray  # (n,) bool (SST-2)
    source: np.ndarray  # (n,) str

    def take(self, rows: np.ndarray) -> Rows:
        """The rows at the given indices."""
        return Rows([self.texts[i] for i in rows], self.targets[rows], self.binary[rows], self.source[rows])


def read_rows(data: Path) -> Rows:
    """The training files' labelled texts, in file order."""
    texts: list[str] = []
    targets: list[int] = []
    sources: list[str] = []
    for name, filename in SOURCES.items():
        path = data / filename
        if not path.is_file():
            raise TrainingError(f"missing training file {path}")
        examples = [e for e in read_examples(path) if e.label in LABELS]
        texts += [e.text for e in examples]
        targets += [LABELS[e.label] for e in examples]
        sources += [name] * len(examples)
    source = np.asarray(sources)
    return Rows(texts, np.asarray(targets, dtype=np.int64), source == "sst2", source)


def split(rows: Rows, held_out: float = HELD_OUT, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Seeded fitting and held-out indices, a `held_out` share of every source."""
    return split_of(rows, np.arange(len(rows.targets)), held_out, seed)


def split_of(
    rows: Rows, indices: np.ndarray, share: float, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of some indices into a rest and a `share` of every source."""
    rng = np.random.default_rng(seed)
    fitting, held = [], []
    for source in sorted(set(rows.source[indices])):
        order = rng.permutation(indices[rows.source[indices] == source])
        cut = int(len(order) * share)
        held.append(order[:cut])
        fitting.append(order[cut:])
    return np.concatenate(fitting), np.concatenate(held)


def subsample(rows: Rows, fitting: np.ndarray, share: float, seed: int = SEED) -> np.ndarray:
    """The fitting indices with only a seeded `share` of SST-2's kept."""
    if share >= 1.0:
        return fitting
    sst2 = fitting[rows.source[fitting] == "sst2"]
    keep = np.random.default_rng(seed + 1).permutation(sst2)[: int(len(sst2) * share)]
    return np.sort(np.concatenate([fitting[rows.source[fitting] != "sst2"], keep]))


# --- the lower layers' output, once ------------------------------------------------------------


def cached_states(
    encoder: TransformerEncoder, texts: Sequence[str], first: int, cache: Path | None
) -> list[Any]:
    """Float16 hidden states entering layer `first`, one (tokens, dim) tensor per text."""
    import torch

    key = hashlib.sha256(json.dumps([encoder.name, first, *texts]).encode()).hexdigest()[:20]
    path = cache / f"states-{key}.pt" if cache else None
    if path and path.is_file():
        saved = torch.load(path)
        return list(torch.split(saved["flat"], saved["lengths"].tolist()))
    states: list[Any] = []
    for start in range(0, len(texts), 2048):
        chunk = lower_states(encoder.tokenizer, encoder.model, texts[start : start + 2048], first)
        states += [state.half() for state in chunk]
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        lengths = torch.as_tensor([state.shape[0] for state in states])
        torch.save({"flat": torch.cat(states), "lengths": lengths}, path)
    return states


# --- fine-tuning -------------------------------------------------------------------------------


class Tuner:
    """The tuned layers plus the linear classifier used only while fine-tuning."""

    def __init__(self, model: Any, first: int, settings: Settings) -> None:
        import torch

        self.layers: Any = copy_top_layers(model, first)
        self.classifier = torch.nn.Linear(int(model.config.hidden_size), 3)
        self.scale = settings.scale

    def logits(self, states: Sequence[Any]) -> Any:
        """(n, 3) logits for a batch of lower states."""
        return self.classifier(self.scale * pooled(self.layers, states))

    def train(self, mode: bool = True) -> None:
        """Switch dropout on (training) or off."""
        self.layers.train(mode)
        self.classifier.train(mode)


def loss_of(logits: Any, targets: Any, binary: Any, weights: Any) -> Any:
    """Weighted cross-entropy; binary rows choose between negative and positive only."""
    import torch

    mask = torch.zeros_like(logits)
    mask[:, NEUTRAL] = torch.where(binary, -1e4, 0.0)
    losses = torch.nn.functional.cross_entropy(logits + mask, targets, reduction="none")
    return (losses * weights).sum() / weights.sum()


def tuner_scores(tuner: Tuner, states: Sequence[Any]) -> np.ndarray:
    """P(positive) - P(negative) for each text, in evaluation mode."""
    import torch

    tuner.train(False)
    out = np.zeros(len(states), dtype=np.float32)
    order = np.argsort([state.shape[0] for state in states], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(states), 256):
            rows = order[start : start + 256]
            probs = torch.softmax(tuner.logits([states[i] for i in rows]), dim=-1).numpy()
            out[rows] = probs[:, POSITIVE] - probs[:, NEGATIVE]
    return out


def held_out_f1(scores: np.ndarray, rows: Rows) -> dict[str, float]:
    """Best-threshold negative F1 per source (the threshold chosen on that source)."""
    grid = np.round(np.arange(-0.9, 0.91, 0.02), 2)
    out = {}
    for source in sorted(set(rows.source)):
        mask = rows.source == source
        gold = rows.targets[mask] == NEGATIVE
        out[source] = round(max(f1_at(scores[mask], gold, float(t), below=True) for t in grid), 4)
    return out


def tune_layers(
    model: Any,
    first: int,
    states: Sequence[Any],
    rows: Rows,
    fitting: np.ndarray,
    held: np.ndarray,
    settings: Settings,
    seed: int = SEED,
) -> tuple[Tuner, list[dict[str, Any]]]:
    """The fine-tuned layers and classifier at the held-out checkpoint with the best THRESHOLD_SOURCE F1."""
    import torch

    torch.manual_seed(seed)
    tuner = Tuner(model, first, settings)
    optimiser = torch.optim.AdamW(
        [
            {"params": list(tuner.layers.parameters()), "lr": settings.lr},
            {"params": list(tuner.classifier.parameters()), "lr": settings.classifier_lr},
        ],
        weight_decay=0.01,
    )
    steps = max(1, round(settings.epochs * len(fitting) / settings.batch))
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup + 1)))
    )
    lengths = np.asarray([states[i].shape[0] for i in fitting])
    plan = length_batches(lengths, settings.batch, steps, np.random.default_rng(seed))
    checkpoints = {math.ceil(steps * (k + 1) / settings.checks) for k in range(settings.checks)}
    weights = torch.as_tensor(np.where(rows.binary, settings.sst2_weight, 1.0).astype(np.float32))
    held_rows, held_states = rows.take(held), [states[i] for i in held]
    best: tuple[float, Any, Any] = (-1.0, None, None)
    log: list[dict[str, Any]] = []
    started = time.perf_counter()
    tuner.train()
    for step, batch in enumerate(plan, 1):
        picked = fitting[batch]
        logits = tuner.logits([states[i].float() for i in picked])
        loss = loss_of(
            logits,
            torch.as_tensor(rows.targets[picked]),
            torch.as_tensor(rows.binary[picked]),
            weights[picked],
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step in checkpoints:
            f1 = held_out_f1(tuner_scores(tuner, held_states), held_rows)
            entry = {"step": step, "epochs": round(step * settings.batch / len(fitting), 2), **f1}
            log.append({**entry, "seconds": round(time.perf_counter() - started)})
            print(json.dumps(log[-1]), flush=True)
            if f1[THRESHOLD_SOURCE] > best[0]:
                parts = (tuner.layers.state_dict(), tuner.classifier.state_dict())
                best = (f1[THRESHOLD_SOURCE], *copy.deepcopy(parts))
            tuner.train()
    tuner.layers.load_state_dict(best[1])
    tuner.classifier.load_state_dict(best[2])
    tuner.train(False)
    return tuner, log


# --- the head on the tuned vectors ------------------------------------------------------------


def corpus_of(rows: Rows, vectors: np.ndarray, lexicon: dict[str, float]) -> Corpus:
    """The head's training rows for these texts and their tuned vectors."""
    return featurise(rows.texts, rows.targets, rows.source, vectors, lexicon)


def fit_head(
    rows: Rows, vectors: np.ndarray, fitting: np.ndarray, held: np.ndarray, settings: HeadSettings
) -> tuple[Head, dict[str, Any]]:
    """The head (MLP, hashed n-grams, cue weights) on the tuned vectors, thresholds from held-out rows."""
    lexicon = read_lexicon()
    fit_corpus = corpus_of(rows.take(fitting), vectors[fitting], lexicon)
    held_corpus = corpus_of(rows.take(held), vectors[held], lexicon)
    head, epochs = fit(fit_corpus, held_corpus, settings, lexicon)
    values = held_out_values(head, held_corpus)
    negative, _ = choose_threshold(values, held_corpus, NEGATIVE)
    positive, _ = choose_threshold(values, held_corpus, POSITIVE)
    head = replace(
        head, negative_threshold=negative, positive_threshold=max(positive, negative + 0.02), lexicon=lexicon
    )
    return head, {"epochs": epochs, "held_out": runtime_report(head, values, held_corpus)}


def layer_arrays(layers: Any) -> dict[str, np.ndarray]:
    """The tuned layers' weights as float16 arrays named `layer.<name>`."""
    return {f"layer.{k}": v.detach().numpy().astype(np.float16) for k, v in layers.state_dict().items()}


def train(
    data: Path,
    cache: Path | None,
    settings: Settings,
    head_settings: HeadSettings,
    encoder: TransformerEncoder | None = None,
    limit: int | None = None,
) -> tuple[Head, Any]:
    """The full recipe: lower states, fine-tune, fit the head, set thresholds, describe."""
    import torch

    started = time.perf_counter()
    torch.set_num_threads(1)
    encoder = encoder or TransformerEncoder(default_model_dir(), threads=1)
    rows = read_rows(data)
    if limit:  # a quick run on the first rows of each source (tests, smoke runs)
        keep = np.concatenate([np.flatnonzero(rows.source == s)[:limit] for s in SOURCES])
        rows = rows.take(keep)
    fitting, held = split(rows)
    fitting = subsample(rows, fitting, settings.sst2_share)
    n_layers = int(encoder.model.config.num_hidden_layers)
    first = n_layers - settings.tuned_layers
    states = cached_states(encoder, rows.texts, first, cache)
    tuner, log = tune_layers(encoder.model, first, states, rows, fitting, held, settings)
    vectors = top_vectors(tuner.layers, states)
    head, report = fit_head(rows, vectors, fitting, held, head_settings)
    metadata = {
        "trained_on": sorted(SOURCES.values()),
        "rows": {"fit": len(fitting), "held_out": len(held)},
        "tuning": {**asdict(settings), "first": first, "checkpoints": log},
        "settings": {**asdict(head_settings), "epochs": report["epochs"]},
        "held_out": report["held_out"],
        "seed": SEED,
        "seconds": round(time.perf_counter() - started),
    }
    print(json.dumps(metadata), flush=True)
    return replace(head, encoder=encoder.name, metadata=metadata), tuner.layers


def main(argv: list[str] | None = None) -> int:
    """Fine-tune, fit the head and write the artefact."""
    parser = argparse.ArgumentParser(prog="python -m models.sentiment_tuning")
    parser.add_argument("--data", type=Path, required=True, help="folder of the training CSVs")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .npz")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/baton-sentiment/cache"))
    parser.add_argument("--limit", type=int, default=None, help="rows per source (smoke runs)")
    for name, value in asdict(Settings()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    settings = Settings(**{name: getattr(args, name) for name in asdict(Settings())})
    head, layers = train(args.data, args.cache, settings, HeadSettings(), limit=args.limit)
    save_head(head, args.out, layer_arrays(layers))
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
