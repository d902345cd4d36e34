"""FAQ speed benchmark: one JSON object, every figure beside a baseline measured in the same run.

    python -m bench.faq             # full run (a few minutes on two cores)
    python -m bench.faq --quick     # one round, fewer questions
    python -m bench.faq --options   # also the encoder variants we measured and did not adopt
    python -m bench.faq --quick --tuned   # also the decision with the KB-tuned encoder (BATON_TUNE=1)
    python -m bench.faq --quick --real ../shared/data/intent/clinc150/train.csv \
        ../shared/data/intent/clinc150/val.csv   # also the shortlist on real embeddings

Figures: start-up; one question's decision (encode + retrieve) for a single caller, ours against
one sentence-transformers `encode` per question; throughput with 64 concurrent callers through
the micro-batcher, against 64 callers each running that naive encode in a thread; retrieval
alone over 100,000 synthetic example vectors, exhaustive against the index's shortlist; the cost
of sentiment scoring inside a full turn. Latencies are per question (p50/p99 in ms) pooled over
rounds; throughputs are the median over rounds. Variants alternate within each round, so a
noisy neighbour slows all of them alike. `qps_per_cpu_second` divides by the process's CPU time
instead of wall time: it moves less when other work shares the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.runner import model_threads  # the intra-op threads `baton serve` gives the model
from models.faq import PRIOR_CALIBRATOR, FaqIndex
from models.kb import Entry, load_file, read_labelled, read_text, sample_path

CALLERS = 64
LATENCY_TARGET_MS = 10.0
THROUGHPUT_TARGET = 300.0
RETRIEVAL_TARGET_MS = 5.0
RECALL_TARGET = 0.99
SENTIMENT_TARGET_MS = 3.0


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    questions: int
    rounds: int
    throughput_questions: int
    retrieval_queries: int


FULL = Plan(questions=240, rounds=3, throughput_questions=640, retrieval_queries=300)
QUICK = Plan(questions=200, rounds=1, throughput_questions=256, retrieval_queries=120)


# --- questions ----------------------------------------------------------------------------------

OPENERS = ("", "", "", "hi, ", "hey team, ", "Hello! ", "quick question: ", "sorry to bother you, ")
CLOSERS = ("", "", "", "?", " thanks", " please", " :pray:", "??", " thx!", " asap")
CONTEXT = (
    "We're onboarding a new client this week and I'm setting things up. ",
    "My manager asked me to sort this out before Friday. ",
    "I've been going through the docs for an hour and I'm still stuck. ",
    "Our finance team flagged this in the month-end review. ",
    "Just moved over from another invoicing tool. ",
)
# Turns no FAQ entry answers: chit-chat, requests for a person, off-topic asks, a pasted error.
STRAYS = (
    "can I talk to a human please",
    "this is the third time I'm asking, I want a refund NOW",
    "what's the weather like in Frankfurt today",
    "thanks, that worked!",
    "I think someone accessed our account without permission",
    "ok",
    "lol",
    "can you write me a poem about invoices",
    "Error: TypeError: cannot read properties of undefined (reading 'amount') at line 42",
    "do you have a discount for nonprofits in Brazil",
    "agent please",
    "is there an on-premise version we can install",
    "¿cómo cambio mi contraseña?",
    "our lawyer wants to talk to your legal team about the contract",
    "the app feels slow today, is it just me",
    "great bot 👍",
)


def sample_questions(entries: list[Entry], count: int, seed: int = 0) -> list[str]:
    """`count` varied turns: FAQ phrasings dressed as chat messages, with strays mixed in."""
    rng = random.Random(seed)
    phrasings = [text for entry in entries for text in (entry.question, *entry.alternates)]
    turns = [_dress(rng.choice(phrasings), rng) for _ in range(count - count // 10)]
    turns += [rng.choice(STRAYS) for _ in range(count // 10)]
    rng.shuffle(turns)
    return turns


def _dress(text: str, rng: random.Random) -> str:
    """One phrasing as someone might type it in Slack."""
    text = text.rstrip("?") if rng.random() < 0.5 else text
    text = text.lower() if rng.random() < 0.3 else text
    context = rng.choice(CONTEXT) if rng.random() < 0.15 else ""
    return f"{context}{rng.choice(OPENERS)}{text}{rng.choice(CLOSERS)}"


# --- measuring ----------------------------------------------------------------------------------


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of per-call times."""
    return {
        "p50_ms": round(float(np.percentile(samples_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(samples_ms, 99)), 2),
    }


def time_each(call: Callable[[Any], object], items: Sequence[Any]) -> list[float]:
    """Milliseconds per call, one call per item."""
    samples = []
    for item in items:
        started = time.perf_counter()
        call(item)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def ratio(a: float, b: float) -> float:
    """a / b, rounded."""
    return round(a / b, 2) if b else float("nan")


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` intra-op threads.

    Torch fixes a thread's count at that thread's first operation, from the process-wide setting:
    this changes the calling thread and threads that have not run torch yet, not warm workers.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def split_batches(split: bool) -> Iterator[None]:
    """Run the block with batches split by length (ours) or padded whole (as before)."""
    import models.encoder

    before = models.encoder.PASS_COST_TOKENS
    models.encoder.PASS_COST_TOKENS = before if split else 10**9  # one pass per MAX_ROWS turns
    try:
        yield
    finally:
        models.encoder.PASS_COST_TOKENS = before


# --- start-up -----------------------------------------------------------------------------------


@dataclass
class Models:
    """What the benchmarks share."""

    encoder: Any
    index: FaqIndex
    entries: list[Entry]
    default_threads: int
    torch_layers: Any  # the same model with every layer in torch (no ONNX Runtime): the old path


def start_up() -> tuple[Models, dict[str, Any]]:
    """Load the encoder and build the sample FAQ's index, timing each step."""
    started = time.perf_counter()
    import torch

    from models.encoder import TransformerEncoder, default_model_dir

    default_threads = torch.get_num_threads()
    encoder = TransformerEncoder(default_model_dir(), threads=model_threads())
    loaded = time.perf_counter()
    entries = load_file(sample_path())
    texts = [text for entry in entries for text in (entry.question, *entry.alternates)]
    labels = [entry.id for entry in entries for _ in (entry.question, *entry.alternates)]
    vectors = encoder.encode(texts)
    encoded = time.perf_counter()
    index = FaqIndex.build(vectors, labels)
    built = time.perf_counter()
    torch_layers = TransformerEncoder(default_model_dir(), threads=model_threads(), onnx=False)
    figures = {
        "load_encoder_ms": round((loaded - started) * 1000),
        "encode_examples_ms": round((encoded - loaded) * 1000),
        "build_index_ms": round((built - encoded) * 1000),
        "total_ms": round((built - started) * 1000),
        "entries": len(entries),
        "examples": len(texts),
        "note": "load includes importing torch (the bundled BERT loads without transformers); "
        "a restart with the SQLite embedding cache skips encode_examples",
    }
    return Models(encoder, index, entries, default_threads, torch_layers), figures


# --- single caller ------------------------------------------------------------------------------


def naive_model() -> Any:
    """The naive approach: sentence-transformers on the same weights."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from models.encoder import default_model_dir

    hf_logging.disable_progress_bar()  # our encoder no longer loads transformers, which did this
    return SentenceTransformer(str(default_model_dir()), device="cpu")


def decision_latency(models: Models, naive: Any, questions: list[str], rounds: int) -> dict[str, Any]:
    """Encode + retrieve one question at a time: ours against torch layers and naive, both thread settings."""
    index, encoder, torch_layers = models.index, models.encoder, models.torch_layers
    ours = lambda q: index.search(encoder.encode([q]))  # noqa: E731
    old = lambda q: index.search(torch_layers.encode([q]))  # noqa: E731
    theirs = lambda q: index.search(naive.encode(q)[None, :])  # noqa: E731
    variants = {
        "ours": Variant(ours, model_threads()),
        "ours_torch_layers": Variant(old, model_threads()),
        f"ours_torch_layers_{models.default_threads}_threads": Variant(old, models.default_threads),
        "naive": Variant(theirs, models.default_threads),
        f"naive_{model_threads()}_thread": Variant(theirs, model_threads()),
    }
    samples = _rounds(variants, lambda call: _warm_then_time(call, questions), rounds)
    figures = {name: _latencies(runs) for name, runs in samples.items()}
    p50 = figures["ours"]["p50_ms"]
    return {
        "questions": len(questions),
        "rounds": rounds,
        "threads": {"ours": model_threads(), "naive": models.default_threads},
        **figures,
        "ratio_ours_over_naive_p50": ratio(p50, figures["naive"]["p50_ms"]),
        "ratio_ours_over_torch_layers_p50": ratio(p50, figures["ours_torch_layers"]["p50_ms"]),
        "target_p50_ms": LATENCY_TARGET_MS,
        "pass": p50 <= LATENCY_TARGET_MS,
    }


@dataclass(frozen=True)
class Variant:
    """One way of doing the work: the call, the torch threads, whether batches split by length."""

    call: Callable[..., Any]
    threads: int
    split: bool = True


def _rounds(variants: dict[str, Variant], measure: Callable[[Any], Any], rounds: int) -> dict[str, list[Any]]:
    """Measure every variant once per round, alternating their order between rounds."""
    results: dict[str, list[Any]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            variant = variants[name]
            with torch_threads(variant.threads), split_batches(variant.split):
                results[name].append(measure(variant.call))
    return results


def _warm_then_time(call: Callable[[str], object], questions: list[str]) -> tuple[list[float], float]:
    """Per-question wall times and mean CPU time, after an untimed call that pays for first use."""
    call(questions[0])
    cpu = time.process_time()
    samples = time_each(call, questions)
    return samples, round((time.process_time() - cpu) * 1000 / len(questions), 2)


def _latencies(runs: list[tuple[list[float], float]]) -> dict[str, float]:
    """Wall p50/p99 over every question of every round, and the median round's CPU time per call."""
    return {
        **percentiles([ms for samples, _ in runs for ms in samples]),
        "cpu_ms_per_question": statistics.median(cpu for _, cpu in runs),
    }


# --- many callers -------------------------------------------------------------------------------


def run_callers(submit: Callable[[str], Awaitable[object]], questions: list[str]) -> dict[str, float]:
    """CALLERS concurrent asyncio callers, each asking its share of the questions in turn."""

    async def caller(share: list[str]) -> None:
        for question in share:
            await submit(question)

    async def everyone() -> None:
        await asyncio.gather(*(caller(questions[i::CALLERS]) for i in range(CALLERS)))

    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(everyone())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"qps": len(questions) / wall, "qps_per_cpu_second": len(questions) / cpu}


def naive_submit(models: Models, naive: Any) -> Callable[[str], Awaitable[object]]:
    """The naive path: every caller runs its own encode in a worker thread."""
    index = models.index

    async def submit(question: str) -> object:
        return await asyncio.to_thread(lambda: index.search(naive.encode(question)[None, :]))

    return submit


Serving = tuple[Callable[[str], Awaitable[object]], Callable[[], None]]  # submit, close


def throughput(models: Models, naive: Any, questions: list[str], rounds: int) -> dict[str, Any]:
    """Questions per second with CALLERS concurrent callers, ours against naive and variants."""
    from models.batcher import MicroBatcher
    from models.encoder import TransformerEncoder, default_model_dir

    index = models.index
    one_worker = TransformerEncoder(default_model_dir(), workers=1)

    def serving(encoder: Any) -> Callable[[], Serving]:
        def start() -> Serving:
            # A new batcher per run: torch fixes a thread's intra-op threads at its first operation.
            batcher: MicroBatcher[str, object] = MicroBatcher(
                lambda texts: index.search(encoder.encode(texts))
            )
            return batcher.submit, batcher.close

        return start

    ours, single, old = serving(models.encoder), serving(one_worker), serving(models.torch_layers)

    def theirs() -> Serving:
        return naive_submit(models, naive), lambda: None

    variants = {
        "ours": Variant(ours, model_threads()),
        "ours_1_worker": Variant(single, model_threads()),
        # the old path: each micro-batch padded to its longest turn in one forward pass
        "ours_unsorted_single_batch": Variant(single, model_threads(), split=False),
        "ours_torch_layers": Variant(old, model_threads()),
        "naive": Variant(theirs, models.default_threads),
        f"naive_{model_threads()}_thread": Variant(theirs, model_threads()),
    }
    runs = _rounds(variants, lambda serving: _serve(serving, questions), rounds)
    figures = {name: _median_rates(results) for name, results in runs.items()}
    qps = figures["ours"]["qps"]
    return {
        "callers": CALLERS,
        "questions": len(questions),
        "rounds": rounds,
        "workers": models.encoder.workers,
        **figures,
        "ratio_ours_over_naive": ratio(qps, figures["naive"]["qps"]),
        "ratio_length_split_over_single_batch": ratio(
            figures["ours_1_worker"]["qps"], figures["ours_unsorted_single_batch"]["qps"]
        ),
        "ratio_workers_over_1_worker": ratio(qps, figures["ours_1_worker"]["qps"]),
        "ratio_ours_over_torch_layers": ratio(qps, figures["ours_torch_layers"]["qps"]),
        "target_qps": THROUGHPUT_TARGET,
        "pass": qps >= THROUGHPUT_TARGET,
    }


def _serve(serving: Callable[[], Serving], questions: list[str]) -> dict[str, float]:
    """Start a server, warm it up with one question per caller, then time all the questions."""
    submit, close = serving()
    try:
        run_callers(submit, questions[:CALLERS])
        return run_callers(submit, questions)
    finally:
        close()


def _median_rates(results: list[dict[str, float]]) -> dict[str, float]:
    """Median over rounds of each rate."""
    return {key: round(statistics.median(r[key] for r in results), 1) for key in results[0]}


# --- retrieval over a large index ---------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticKb:
    """Random unit vectors shaped like a FAQ's embeddings, and questions to ask it."""

    vectors: np.ndarray
    labels: list[str]
    in_scope: np.ndarray  # fresh paraphrases of known entries
    out_of_scope: np.ndarray  # same region of the space, no entry
    isotropic: np.ndarray  # uniformly random: a stress test with no structure at all


def synthetic_kb(queries: int, entries: int = 1000, per_entry: int = 100, seed: int = 0) -> SyntheticKb:
    """Entries grouped in topics, each with a few phrasing modes, plus a shared direction.

    Parameters match MiniLM on CLINC150 roughly: example-to-entry-centroid cosine about 0.7,
    centroid-to-centroid median 0.15, a question's nearest example about 0.8.
    """
    rng = np.random.default_rng(seed)
    dim, modes = 384, 10
    common = _unit(rng.normal(size=dim))
    topics = _unit(rng.normal(size=(entries // 10, dim)))
    centres = _unit(
        0.45 * common
        + 0.9 * topics[rng.integers(len(topics), size=entries)]
        + 0.5 * _unit(rng.normal(size=(entries, dim)))
    )
    phrasings = _unit(np.repeat(centres, modes, axis=0) + 0.04 * rng.normal(size=(entries * modes, dim)))
    owner = np.repeat(np.arange(entries), per_entry)
    mode = owner * modes + rng.integers(modes, size=len(owner))
    vectors = _unit(phrasings[mode] + 0.025 * rng.normal(size=(len(owner), dim)))
    asked = rng.integers(len(phrasings), size=queries)
    return SyntheticKb(
        vectors=vectors,
        labels=[f"entry-{i}" for i in owner],
        in_scope=_unit(phrasings[asked] + 0.025 * rng.normal(size=(queries, dim))),
        out_of_scope=_unit(0.45 * common + 0.9 * _unit(rng.normal(size=(queries // 2, dim)))),
        isotropic=_unit(rng.normal(size=(queries // 2, dim))),
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def large_retrieval(queries: int) -> dict[str, Any]:
    """Per-query retrieval over 100,000 examples: exhaustive matrix product against `search`."""
    kb = synthetic_kb(queries)
    started = time.perf_counter()
    index = FaqIndex(kb.vectors, kb.labels, PRIOR_CALIBRATOR)  # calibration is not timed here
    built = time.perf_counter()
    asked = {"in_scope": kb.in_scope, "out_of_scope": kb.out_of_scope, "isotropic": kb.isotropic}
    everything = np.concatenate(list(asked.values()))
    exhaustive = time_each(lambda q: index.entry_scores(q[None, :]), everything)
    ours = time_each(lambda q: index.search(q[None, :]), everything)
    p50 = percentiles(ours)["p50_ms"]
    agreement = {name: _agreement(index, vectors) for name, vectors in asked.items()}
    return {
        "examples": len(kb.vectors),
        "entries": len(index.entries),
        "queries": len(everything),
        "index_construction_ms": round((built - started) * 1000),
        "exhaustive_float32": percentiles(exhaustive),
        "ours": percentiles(ours),
        "speedup_p50": ratio(percentiles(exhaustive)["p50_ms"], p50),
        "agreement_with_exhaustive": agreement,
        "target_p50_ms": RETRIEVAL_TARGET_MS,
        "target_recall_at_1": RECALL_TARGET,
        "pass": p50 <= RETRIEVAL_TARGET_MS and agreement["in_scope"]["recall_at_1"] >= RECALL_TARGET,
    }


def real_shortlist(models: Models, kb_csv: Path, test_csv: Path) -> dict[str, Any]:
    """The shortlist against exhaustive search on real embeddings: a labelled intent set as the KB.

    The shortlist is forced on at its 2% share whatever the size, the hardest setting it meets.
    """
    import models.faq as faq  # `as`: a plain import would rebind the `models` argument

    kb = read_labelled(read_text(kb_csv), str(kb_csv))
    test = read_labelled(read_text(test_csv), str(test_csv))
    vectors, queries = (_encode_all(models.encoder, [text for text, _ in rows]) for rows in (kb, test))
    saved = faq.SHORTLIST_MIN_EXAMPLES, faq.SHORTLIST_MIN
    faq.SHORTLIST_MIN_EXAMPLES, faq.SHORTLIST_MIN = 0, 0
    try:
        index = FaqIndex(vectors, [label for _, label in kb], PRIOR_CALIBRATOR)
    finally:
        faq.SHORTLIST_MIN_EXAMPLES, faq.SHORTLIST_MIN = saved
    entries = set(index.entries.tolist())
    known = np.array([label in entries for _, label in test])
    return {
        "kb": str(kb_csv),
        "test": str(test_csv),
        "examples": len(kb),
        "shortlisted_per_query": int(len(kb) * faq.SHORTLIST_SHARE),
        "in_scope": _agreement(index, queries[known]),
        "out_of_scope": _agreement(index, queries[~known]) if (~known).any() else None,
    }


def _encode_all(encoder: Any, texts: list[str], batch: int = 256) -> np.ndarray:
    return np.concatenate([encoder.encode(texts[i : i + batch]) for i in range(0, len(texts), batch)])


def _entry_id(candidate: Any) -> str:
    return candidate.entry_id if candidate is not None else ""


def _agreement(index: FaqIndex, queries: np.ndarray) -> dict[str, float]:
    """How often `search` gives the exhaustive search's best entry, runner-up and confidence."""
    exact = index.entry_scores(queries)
    top = np.argsort(-exact, axis=1)[:, :2]
    rows = np.arange(len(queries))
    best, second = exact[rows, top[:, 0]], exact[rows, top[:, 1]]
    confidence = index.calibrator.confidence(best, second)
    found = index.search(queries)
    picked = [(_entry_id(r.best), _entry_id(r.runner_up), r.confidence) for r in found]
    same_best = [p[0] == index.entries[i] for p, i in zip(picked, top[:, 0], strict=True)]
    same_second = [p[1] == index.entries[i] for p, i in zip(picked, top[:, 1], strict=True)]
    gap = np.abs(np.array([p[2] for p in picked]) - confidence)
    same_decision = [(p[2] >= 0.5) == (c >= 0.5) for p, c in zip(picked, confidence, strict=True)]
    return {
        "recall_at_1": round(float(np.mean(same_best)), 4),
        "runner_up_agrees": round(float(np.mean(same_second)), 4),
        "answer_or_hand_off_agrees": round(float(np.mean(same_decision)), 4),
        "max_confidence_difference": round(float(gap.max()), 4),
    }


# --- sentiment inside a turn --------------------------------------------------------------------


class NoSentiment:
    """The turn without sentiment scoring: every turn neutral, at no cost."""

    def score(self, text: str, vector: np.ndarray | None = None) -> Any:
        from models.sentiment import Polarity, Sentiment

        return Sentiment(0.0, Polarity.NEUTRAL)

    def score_batch(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Any]:
        return [self.score(text) for text in texts]


def sentiment_scorer(encoder: Any = None) -> tuple[Any | None, str]:
    """The bundled scorer (sharing `encoder`); until trained, an untrained head of the largest size."""
    from models.sentiment import HeadSentiment, default_head_path, learned_cue_names, load_scorer

    if default_head_path().exists():
        return load_scorer(encoder=encoder), f"trained head {default_head_path().name}"
    missing = f"{default_head_path().name} not trained yet"
    try:  # the training module is being written as this runs: its Network may change shape
        from models.sentiment_training import BUCKETS, Network, Settings

        settings = Settings(hidden=512)
        head = Network(384, BUCKETS, len(learned_cue_names()), settings).head()
    except (ImportError, TypeError, AttributeError) as exc:
        return None, f"SKIPPED: {missing} and no stand-in could be built ({exc})"
    note = "an untrained head of the same code and shape (hidden 512, the largest training tries)"
    return HeadSentiment(head), f"PROVISIONAL: {missing}; {note}"


def sentiment_cost(models: Models, questions: list[str], rounds: int) -> dict[str, Any]:
    """A full turn (Brain.read: encode, retrieval, sentiment, request check) with and without sentiment."""
    from sqlite_utils import Database

    from bot.brain import Brain
    from handoff.knowledge import KnowledgeBase
    from models.requests import HumanRequestDetector

    scorer, which = sentiment_scorer(models.encoder)
    if scorer is None:
        return {"scorer": which, "pass": None}
    knowledge = KnowledgeBase(Database(memory=True), models.encoder)
    requests = HumanRequestDetector(models.encoder)
    with_it = Brain(models.encoder, knowledge, scorer, requests)
    without = Brain(models.encoder, knowledge, NoSentiment(), requests)
    index = models.index
    variants = {
        "with_sentiment": Variant(lambda q: with_it.read([q], index), model_threads()),
        "without_sentiment": Variant(lambda q: without.read([q], index), model_threads()),
    }
    runs = _rounds(variants, lambda call: _warm_then_time(call, questions), rounds)
    turn = {name: _latencies(r) for name, r in runs.items()}
    vectors = models.encoder.encode(questions)
    alone = time_each(lambda i: scorer.score_batch([questions[i]], vectors[i : i + 1]), range(len(questions)))
    added = round(turn["with_sentiment"]["p50_ms"] - turn["without_sentiment"]["p50_ms"], 2)
    with_it.close()
    without.close()
    return {
        "scorer": which,
        "questions": len(questions),
        **turn,
        "added_to_turn_p50_ms": added,
        "median_added_per_question_ms": _median_difference(runs["with_sentiment"], runs["without_sentiment"]),
        "scoring_alone": percentiles(alone),
        "target_added_ms": SENTIMENT_TARGET_MS,
        "pass": added <= SENTIMENT_TARGET_MS and percentiles(alone)["p50_ms"] <= SENTIMENT_TARGET_MS,
    }


def tuned_cost(models: Models, questions: list[str], rounds: int) -> dict[str, Any]:
    """One question's decision with the KB-tuned encoder against the frozen one, same run.

    Tuned: the shared lower layers once, then the base top layers (the vector sentiment and the
    request check read) and the tuned top layers (the vector retrieval reads), as `baton serve`
    runs with BATON_TUNE=1. The tuning of the sample FAQ is cached in .baton/tuned.
    """
    from models.tuned import load_or_tune

    texts = [text for entry in models.entries for text in entry.examples]
    labels = [entry.id for entry in models.entries for _ in entry.examples]
    started = time.perf_counter()
    tuned = load_or_tune(
        models.encoder, texts, labels, Path(".baton/tuned"), lambda line: print(line, file=sys.stderr)
    )
    ready = time.perf_counter() - started
    index = FaqIndex.build(tuned.encode(texts), labels, calibrator=tuned.calibrator)
    variants = {
        "frozen": Variant(lambda q: models.index.search(models.encoder.encode([q])), model_threads()),
        "tuned": Variant(lambda q: index.search(tuned.encode_pair([q])[1]), model_threads()),
    }
    runs = _rounds(variants, lambda call: _warm_then_time(call, questions), rounds)
    figures = {name: _latencies(r) for name, r in runs.items()}
    return {
        "questions": len(questions),
        "tuned_layers": tuned.info.tuned_layers,
        "tuning_seconds": tuned.info.seconds,
        "load_or_tune_seconds": round(ready, 1),
        **figures,
        "added_p50_ms": round(figures["tuned"]["p50_ms"] - figures["frozen"]["p50_ms"], 2),
        "median_added_per_question_ms": _median_difference(runs["tuned"], runs["frozen"]),
    }


def _median_difference(a: list[tuple[list[float], float]], b: list[tuple[list[float], float]]) -> float:
    """Median per-question difference between two variants timed on the same questions."""
    pairs = zip((ms for run in a for ms in run[0]), (ms for run in b for ms in run[0]), strict=True)
    return round(statistics.median(x - y for x, y in pairs), 2)


# --- encoder fidelity and options ---------------------------------------------------------------


def fidelity(models: Models, questions: list[str]) -> dict[str, Any]:
    """Length-sorted sub-batches against one padded batch (the old path): same embeddings?"""
    texts = [t for e in models.entries for t in (e.question, *e.alternates)] + questions
    batches = [texts[i : i + CALLERS] for i in range(0, len(texts), CALLERS)]
    new = np.concatenate([models.encoder.encode(b) for b in batches])
    with split_batches(False):
        old = np.concatenate([models.encoder.encode(b) for b in batches])
    return {
        "texts": len(texts),
        "min_cosine_vs_single_padded_batch": round(float((new * old).sum(1).min()), 6),
    }


def encoder_options(models: Models, questions: list[str]) -> dict[str, Any]:
    """Encoder variants we measured and did not adopt: speed, and how far embeddings move."""
    import torch

    from models.encoder import TransformerEncoder, default_model_dir

    alternates = [(e.id, a) for e in models.entries for a in e.alternates]
    canonical = FaqIndex.build(
        models.encoder.encode([e.question for e in models.entries]), [e.id for e in models.entries]
    )
    batches = [questions[i : i + CALLERS] for i in range(0, len(questions), CALLERS)]
    texts = [a for _, a in alternates] + questions
    reference = models.encoder.encode(texts)
    results: dict[str, Any] = {}
    for name, prepare in _variants(torch).items():
        variant = TransformerEncoder(default_model_dir())
        variant._model = prepare(variant._model)  # the bench swaps the module; the API has no knob
        results[name] = _compare(models.encoder, variant, reference, texts, batches, canonical, alternates)
    results["tokenizer_share"] = _tokenizer_share(models.encoder, batches)
    results["max_tokens_64"] = _max_tokens_64(models.encoder)
    return results


def _variants(torch: Any) -> dict[str, Callable[[Any], Any]]:
    """Ways to make the model cheaper, each a function of the loaded float32 model."""

    class Float32Out(torch.nn.Module):  # type: ignore[misc]
        """Runs a lower-precision model and hands back float32 hidden states."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, **inputs: Any) -> Any:
            return _Hidden(self.inner(**inputs).last_hidden_state.float())

    def int8(model: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eager-mode quantization is deprecated in torch 2.13
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    return {
        "bfloat16_weights": lambda model: Float32Out(model.to(torch.bfloat16)),
        "int8_dynamic_linear": int8,
    }


@dataclass(frozen=True)
class _Hidden:
    last_hidden_state: Any


def _compare(
    ours: Any,
    variant: Any,
    reference: np.ndarray,
    texts: list[str],
    batches: list[list[str]],
    canonical: FaqIndex,
    alternates: list[tuple[str, str]],
) -> dict[str, Any]:
    """Cosine to our embeddings, FAQ top-1 agreement on the alternates, and batch throughput."""
    with torch_threads(model_threads()):
        vectors = np.concatenate(
            [variant.encode(texts[i : i + CALLERS]) for i in range(0, len(texts), CALLERS)]
        )
        cosine = (vectors * reference).sum(1)
        picks = [r.best.entry_id if r.best else "" for r in canonical.search(vectors[: len(alternates)])]
        ours_picks = [
            r.best.entry_id if r.best else "" for r in canonical.search(reference[: len(alternates)])
        ]
        rates = {}
        for name, encoder in (("ours", ours), ("variant", variant)):
            started = time.perf_counter()
            for batch in batches:
                encoder.encode(batch)
            rates[name] = sum(map(len, batches)) / (time.perf_counter() - started)
    return {
        "min_cosine": round(float(cosine.min()), 4),
        "median_cosine": round(float(np.median(cosine)), 4),
        "faq_top1_agrees_on_alternates": round(
            float(np.mean([a == b for a, b in zip(picks, ours_picks, strict=True)])), 4
        ),
        "qps_batches_of_64": round(rates["variant"], 1),
        "qps_ours_same_run": round(rates["ours"], 1),
    }


def _tokenizer_share(encoder: Any, batches: list[list[str]]) -> dict[str, float]:
    """How much of encoding a 64-turn batch is tokenising (the fast Rust tokenizer)."""
    from models.encoder import MAX_TOKENS

    tokenize = time_each(lambda b: encoder._tokenizer(b, truncation=True, max_length=MAX_TOKENS), batches)
    encode = time_each(encoder.encode, batches)
    return {
        "tokenize_ms_per_batch": round(statistics.median(tokenize), 2),
        "share": ratio(sum(tokenize), sum(encode)),
    }


def _max_tokens_64(encoder: Any) -> dict[str, Any]:
    """Truncating at 64 tokens: no change for chat turns, but long messages move."""
    import models.encoder

    long_texts = [" ".join(q for q in STRAYS) * k for k in (1, 2, 4)] + [
        e.answer for e in load_file(sample_path())
    ]
    full = encoder.encode(long_texts)
    before = models.encoder.MAX_TOKENS
    models.encoder.MAX_TOKENS = 64
    try:
        short = encoder.encode(long_texts)
    finally:
        models.encoder.MAX_TOKENS = before
    cosine = (full * short).sum(1)
    return {"texts_over_64_tokens": len(long_texts), "min_cosine": round(float(cosine.min()), 4)}


# --- main ---------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "note": "shared 2-core machine: compare figures within one run, not across runs",
    }


def run(plan: Plan, options: bool, real: list[Path] | None = None, tuned: bool = False) -> dict[str, Any]:
    """Every benchmark, in an order that keeps start-up cold."""
    models, startup = start_up()
    report: dict[str, Any] = {"machine": machine(), "startup": startup}
    questions = sample_questions(models.entries, plan.questions)
    many = sample_questions(models.entries, plan.throughput_questions, seed=1)
    naive = naive_model()
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "decision_latency": lambda: decision_latency(models, naive, questions, plan.rounds),
        "throughput": lambda: throughput(models, naive, many, plan.rounds),
        "retrieval_100k": lambda: large_retrieval(plan.retrieval_queries),
        "sentiment": lambda: sentiment_cost(models, questions, plan.rounds),
        "encoder_fidelity": lambda: fidelity(models, questions),
    }
    if tuned:
        steps["tuned_latency"] = lambda: tuned_cost(models, questions, plan.rounds)
    if options:
        steps["encoder_options"] = lambda: encoder_options(models, many)
    if real:
        steps["shortlist_on_real_embeddings"] = lambda: real_shortlist(models, real[0], real[1])
    for name, step in steps.items():
        started = time.perf_counter()
        report[name] = step()
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    report["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return report


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.faq", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer questions")
    parser.add_argument("--options", action="store_true", help="also measure encoder variants not adopted")
    parser.add_argument(
        "--real",
        nargs=2,
        type=Path,
        metavar=("KB.csv", "TEST.csv"),
        help="also check the shortlist on real embeddings of a labelled `text,label` intent set",
    )
    parser.add_argument(
        "--tuned",
        action="store_true",
        help="also one question's decision with the KB-tuned encoder (BATON_TUNE=1)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(json.dumps(run(QUICK if args.quick else FULL, args.options, args.real, args.tuned), indent=2))


if __name__ == "__main__":
    main()
