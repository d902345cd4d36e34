"""Training of a sentiment head on the frozen encoder's sentence vectors (the previous default).

`models.sentiment_tuning` trains the shipped scorer and reuses this module's head fitting on the
vectors of its tuned layers.

Reads the GoEmotions (negative / neutral / positive, `ambiguous` as neutral) and SST-2 (negative /
positive only: its rows choose between those two logits) training files, embeds them with the
bundled encoder (cached under /tmp), and fits with torch, jointly: a one-hidden-layer MLP on the
embedding, a bag of hashed n-grams and the learned cue weights. A seeded tenth of each file is
held out to pick the settings, the epoch and the thresholds; dev and validation files are never
read. Raises `TrainingError` for missing data.

    python -m models.sentiment_training --data ../shared/data/sentiment \
        --out /tmp/baton-sentiment/frozen_head.npz
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.encoder import Encoder, TransformerEncoder, default_model_dir
from models.sentiment import (
    INTENSIFIERS,
    LEARNED_CUES,
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    SHOUTING,
    Head,
    find_cues,
    ngram_ids,
    save_head,
    score,
    valence,
)
from models.sentiment_eval import embed, read_examples

SOURCES = {"goemotions": "goemotions_train.csv", "sst2": "sst2_train.csv"}
LABELS = {"negative": NEGATIVE, "neutral": NEUTRAL, "ambiguous": NEUTRAL, "positive": POSITIVE}
HELD_OUT = 0.1
THRESHOLD_SOURCE = "goemotions"
SEED = 13
BUCKETS = 2**16  # keeps the shipped file under 1 MB


class TrainingError(Exception):
    """The training data cannot be read."""


@dataclass(frozen=True)
class Settings:
    """Hyper-parameters; those in GRID are chosen on the held-out rows."""

    hidden: int = 256
    dropout: float = 0.2
    weight_decay: float = 1e-4
    ngram_decay: float = 1e-4
    sst2_weight: float = 0.5
    max_epochs: int = 12
    patience: int = 2
    lr: float = 2e-3
    batch: int = 512


GRID: dict[str, tuple[Any, ...]] = {"sst2_weight": (0.3, 1.0), "ngram_decay": (1e-4, 1e-3)}


@dataclass(frozen=True)
class Corpus:
    """Training rows: texts, embeddings, targets, n-gram ids, cue flags and where they came from."""

    texts: np.ndarray  # (n,) str
    vectors: np.ndarray  # (n, dim) float32
    targets: np.ndarray  # (n,) int64 in {NEGATIVE, NEUTRAL, POSITIVE}
    binary: np.ndarray  # (n,) bool: neutral is not an option (SST-2)
    ngrams: np.ndarray  # (n,) object: an int64 array of hashed ids per row
    plain_cues: np.ndarray  # (n, 1 + len(LEARNED_CUES)) float32
    intensifiers: np.ndarray  # (n, len(INTENSIFIERS)) float32
    source: np.ndarray  # (n,) str

    def take(self, rows: np.ndarray) -> Corpus:
        """The rows at the given indices."""
        return Corpus(*(getattr(self, name)[rows] for name in Corpus.__dataclass_fields__))


def cache_key(encoder_name: str, texts: Sequence[str]) -> str:
    """A key naming one encoder's embeddings of one list of texts."""
    return hashlib.sha256((encoder_name + "\n" + "\n".join(texts)).encode()).hexdigest()[:20]


def embed_cached(texts: Sequence[str], encoder: Encoder, cache: Path) -> np.ndarray:
    """Embeddings of `texts`, read from or written to the cache directory."""
    path = cache / f"{cache_key(encoder.name, texts)}.npy"
    if path.is_file():
        return np.load(path)
    vectors = embed(texts, encoder, batch=128)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def cue_flags(texts: Sequence[str], lexicon: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per text: cue flags plus lexicon valence, and the intensifiers that fired."""
    found = [find_cues(text) for text in texts]
    plain = [
        [*(float(name in f) for name in (SHOUTING, *LEARNED_CUES)), *valence(text, lexicon)]
        for text, f in zip(texts, found, strict=True)
    ]
    loud = [[float(name in f) for name in INTENSIFIERS] for f in found]
    return np.asarray(plain, dtype=np.float32), np.asarray(loud, dtype=np.float32)


def read_lexicon() -> dict[str, float]:
    """VADER's word-valence lexicon (MIT licence, C.J. Hutto), from the vaderSentiment package."""
    try:
        import vaderSentiment.vaderSentiment as vader
    except ImportError as exc:
        raise TrainingError("training needs the vaderSentiment package for its lexicon") from exc
    path = Path(vader.__file__).parent / "vader_lexicon.txt"
    rows = (line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines())
    return {row[0]: float(row[1]) for row in rows if len(row) >= 2}


def load_corpus(
    data: Path, encoder: Encoder, cache: Path, lexicon: dict[str, float], buckets: int = BUCKETS
) -> Corpus:
    """Read, embed and featurise the training files."""
    parts = []
    for source, filename in SOURCES.items():
        path = data / filename
        if not path.is_file():
            raise TrainingError(f"missing training file {path}")
        examples = [e for e in read_examples(path) if e.label in LABELS]
        texts = [e.text for e in examples]
        targets = np.asarray([LABELS[e.label] for e in examples], dtype=np.int64)
        vectors = embed_cached(texts, encoder, cache)
        parts.append(featurise(texts, targets, np.full(len(texts), source), vectors, lexicon, buckets))
    fields = Corpus.__dataclass_fields__
    return Corpus(*(np.concatenate([getattr(part, f) for part in parts]) for f in fields))


def featurise(
    texts: Sequence[str],
    targets: np.ndarray,
    source: np.ndarray,
    vectors: np.ndarray,
    lexicon: dict[str, float],
    buckets: int = BUCKETS,
) -> Corpus:
    """The head's inputs for labelled texts and their vectors (SST-2 rows are binary)."""
    ngrams = np.empty(len(texts), dtype=object)
    ngrams[:] = [ngram_ids(text, buckets) for text in texts]
    plain, loud = cue_flags(texts, lexicon)
    return Corpus(
        texts=np.asarray(texts, dtype=object),
        vectors=vectors,
        targets=targets,
        binary=source == "sst2",
        ngrams=ngrams,
        plain_cues=plain,
        intensifiers=loud,
        source=source,
    )


def split(corpus: Corpus, held_out: float = HELD_OUT, seed: int = SEED) -> tuple[Corpus, Corpus]:
    """A seeded split of every source into fitting rows and held-out rows."""
    rng = np.random.default_rng(seed)
    fit, hold = [], []
    for source in sorted(set(corpus.source)):
        rows = rng.permutation(np.flatnonzero(corpus.source == source))
        cut = int(len(rows) * held_out)
        hold.append(rows[:cut])
        fit.append(rows[cut:])
    return corpus.take(np.concatenate(fit)), corpus.take(np.concatenate(hold))


class Network:
    """The torch twin of `Head`, used only while training."""

    def __init__(self, dim: int, buckets: int, cues: int, settings: Settings) -> None:
        import torch

        nn = torch.nn
        self.first, self.last = nn.Linear(dim, settings.hidden), nn.Linear(settings.hidden, 3)
        drop = settings.dropout
        self.mlp = nn.Sequential(nn.Dropout(drop), self.first, nn.ReLU(), nn.Dropout(drop), self.last)
        self.bag = nn.EmbeddingBag(buckets, 3, mode="sum")
        self.cues = nn.Linear(cues, 3, bias=False)
        nn.init.zeros_(self.bag.weight)
        nn.init.zeros_(self.cues.weight)
        self.torch = torch

    def modules(self) -> list[Any]:
        """The trainable parts."""
        return [self.mlp, self.bag, self.cues]

    def logits(self, batch: dict[str, Any]) -> Any:
        """Final logits: embedding and n-gram parts, then cues given their lean."""
        torch = self.torch
        base = self.mlp(batch["x"]) + self.bag(
            batch["ids"], batch["offsets"], per_sample_weights=batch["weights"]
        )
        probs = torch.softmax(base, dim=-1).detach()
        lean = (probs[:, POSITIVE] - probs[:, NEGATIVE]).unsqueeze(1)
        return base + self.cues(torch.cat([batch["plain"], batch["loud"] * lean], dim=1))

    def head(self, lexicon: dict[str, float]) -> Head:
        """The numpy head with these weights (thresholds unset)."""

        def array(tensor: Any) -> np.ndarray:
            return np.asarray(tensor.detach().numpy(), dtype=np.float32).copy()

        return Head(
            w1=array(self.first.weight).T.copy(),
            b1=array(self.first.bias),
            w2=array(self.last.weight).T.copy(),
            b2=array(self.last.bias),
            ngram_weights=array(self.bag.weight),
            cue_weights=array(self.cues.weight).T.copy(),
            negative_threshold=0.0,
            positive_threshold=0.0,
            lexicon=lexicon,
        )


def batch_of(corpus: Corpus, rows: np.ndarray, settings: Settings) -> dict[str, Any]:
    """Torch tensors for some rows: inputs, targets, masks and loss weights."""
    import torch

    bags = corpus.ngrams[rows]
    lengths = np.asarray([len(bag) for bag in bags], dtype=np.int64)
    weights = np.repeat(1.0 / np.sqrt(np.maximum(lengths, 1)), lengths).astype(np.float32)
    row_weight = np.where(corpus.source[rows] == "sst2", settings.sst2_weight, 1.0)
    arrays = {
        "x": corpus.vectors[rows],
        "ids": np.concatenate([*bags, np.zeros(0, dtype=np.int64)]),
        "offsets": np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        "weights": weights,
        "plain": corpus.plain_cues[rows],
        "loud": corpus.intensifiers[rows],
        "y": corpus.targets[rows],
        "binary": corpus.binary[rows],
        "row_weight": row_weight.astype(np.float32),
    }
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()}


def batches(corpus: Corpus, settings: Settings, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled row indices, one array per mini-batch."""
    order = rng.permutation(len(corpus.targets))
    yield from (order[i : i + settings.batch] for i in range(0, len(order), settings.batch))


def loss_of(net: Network, batch: dict[str, Any]) -> Any:
    """Weighted cross-entropy; SST-2 rows choose between negative and positive only."""
    torch = net.torch
    logits = net.logits(batch)
    mask = torch.zeros_like(logits)
    mask[:, NEUTRAL] = torch.where(batch["binary"], -1e4, 0.0)
    losses = torch.nn.functional.cross_entropy(logits + mask, batch["y"], reduction="none")
    return (losses * batch["row_weight"]).sum() / batch["row_weight"].sum()


def held_out_scores(net: Network, held: Corpus, settings: Settings) -> np.ndarray:
    """Scores (P(pos) - P(neg)) of the held-out rows, in evaluation mode."""
    torch = net.torch
    for module in net.modules():
        module.eval()
    with torch.inference_mode():
        logits = net.logits(batch_of(held, np.arange(len(held.targets)), settings))
        probs = torch.softmax(logits, dim=-1).numpy()
    return np.asarray(probs[:, POSITIVE] - probs[:, NEGATIVE])


def fit(
    fitting: Corpus, held: Corpus, settings: Settings, lexicon: dict[str, float], seed: int = SEED
) -> tuple[Head, int]:
    """Train until the held-out negative F1 stops improving; the best epoch's head and number."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cues = fitting.plain_cues.shape[1] + fitting.intensifiers.shape[1]
    net = Network(fitting.vectors.shape[1], BUCKETS, cues, settings)
    groups: list[dict[str, Any]] = [
        {"params": [*net.mlp.parameters(), *net.cues.parameters()]},
        {"params": list(net.bag.parameters()), "weight_decay": settings.ngram_decay},
    ]
    optimiser = torch.optim.AdamW(
        groups,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
    )
    best: tuple[float, int, Head] = (-1.0, 0, net.head(lexicon))
    for epoch in range(1, settings.max_epochs + 1):
        for module in net.modules():
            module.train()
        for rows in batches(fitting, settings, rng):
            optimiser.zero_grad()
            loss_of(net, batch_of(fitting, rows, settings)).backward()
            optimiser.step()
        _, f1 = choose_threshold(held_out_scores(net, held, settings), held, NEGATIVE)
        print(json.dumps({"epoch": epoch, "held_out_negative_f1": round(f1, 4)}), flush=True)
        if f1 > best[0]:
            best = (f1, epoch, net.head(lexicon))
        elif epoch - best[1] >= settings.patience:
            break
    return best[2], best[1]


def f1_at(values: np.ndarray, gold: np.ndarray, threshold: float, below: bool) -> float:
    """F1 of flagging rows whose value is <= (or >=) the threshold."""
    flagged = values <= threshold if below else values >= threshold
    true_pos = float(np.sum(flagged & gold))
    denominator = float(np.sum(flagged) + np.sum(gold))
    return 2 * true_pos / denominator if denominator else 0.0


def choose_threshold(values: np.ndarray, held: Corpus, polarity: int) -> tuple[float, float]:
    """The threshold with the best held-out GoEmotions F1, and that F1.

    Only GoEmotions has a neutral class, as chat has; SST-2's best cut-off would sit near 0.
    """
    below = polarity == NEGATIVE
    mask = held.source == THRESHOLD_SOURCE
    gold = held.targets[mask] == polarity
    grid = np.round(np.arange(-0.9, 0.91, 0.02), 2)
    f1s = [f1_at(values[mask], gold, float(t), below) for t in grid]
    best = int(np.argmax(f1s))
    return float(grid[best]), f1s[best]


def runtime_report(head: Head, values: np.ndarray, held: Corpus) -> dict[str, float]:
    """Held-out negative F1 per source at the head's threshold, from run-time scores."""
    return {
        f"{source}_negative_f1": round(
            f1_at(
                values[held.source == source],
                held.targets[held.source == source] == NEGATIVE,
                head.negative_threshold,
                below=True,
            ),
            4,
        )
        for source in sorted(set(held.source))
    }


def search(
    fitting: Corpus, held: Corpus, lexicon: dict[str, float]
) -> tuple[Settings, Head, int, list[dict[str, Any]]]:
    """Fit each combination of GRID; keep the one with the best held-out negative F1."""
    trials: list[tuple[float, Settings, Head, int]] = []
    for values in itertools.product(*GRID.values()):
        settings = replace(Settings(), **dict(zip(GRID, values, strict=True)))
        print(json.dumps({"trying": asdict(settings)}), flush=True)
        head, epoch = fit(fitting, held, settings, lexicon)
        _, f1 = choose_threshold(held_out_values(head, held), held, NEGATIVE)
        trials.append((f1, settings, head, epoch))
    f1, settings, head, epoch = max(trials, key=lambda trial: trial[0])
    log = [{**asdict(s), "epochs": e, "held_out_negative_f1": round(v, 4)} for v, s, _, e in trials]
    return settings, head, epoch, log


def held_out_values(head: Head, held: Corpus) -> np.ndarray:
    """Scores of the held-out rows exactly as at run time (numpy, cues and priors included)."""
    rows = zip(held.texts, held.vectors, strict=True)
    return np.asarray([score(text, vector, head).score for text, vector in rows])


def train(data: Path, cache: Path, tune: bool = False) -> Head:
    """The full recipe: embed, split, choose settings, fit, set thresholds, describe."""
    started = time.perf_counter()
    encoder = TransformerEncoder(default_model_dir())
    lexicon = read_lexicon()
    corpus = load_corpus(data, encoder, cache, lexicon)
    fitting, held = split(corpus)
    if tune:
        settings, head, epochs, trials = search(fitting, held, lexicon)
    else:
        settings, trials = Settings(), []
        head, epochs = fit(fitting, held, settings, lexicon)
    values = held_out_values(head, held)
    negative, _ = choose_threshold(values, held, NEGATIVE)
    positive, _ = choose_threshold(values, held, POSITIVE)
    head = replace(
        head,
        negative_threshold=negative,
        positive_threshold=max(positive, negative + 0.02),
        lexicon=lexicon,
        encoder=encoder.name,
    )
    metadata = {
        "trained_on": sorted(SOURCES.values()),
        "rows": {"fit": len(fitting.targets), "held_out": len(held.targets)},
        "settings": {**asdict(settings), "epochs": epochs, "buckets": BUCKETS},
        "held_out": runtime_report(head, values, held),
        "trials": trials,
        "seed": SEED,
    }
    print(json.dumps({**metadata, "seconds": round(time.perf_counter() - started)}), flush=True)
    return replace(head, metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    """Train the head and write it."""
    parser = argparse.ArgumentParser(prog="python -m models.sentiment_training")
    parser.add_argument("--data", type=Path, required=True, help="folder of the training CSVs")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .npz")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/baton-sentiment/cache"))
    parser.add_argument("--tune", action="store_true", help="search GRID first (4x longer)")
    args = parser.parse_args(argv)
    save_head(train(args.data, args.cache, tune=args.tune), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
