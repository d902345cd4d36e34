"""The `baton` command line: ask, eval, faq, eval-sentiment (and the Slack app's run modes)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.brain import TurnCheck
from bot.commands import MAX_CSAT_DAYS
from bot.runner import run_serve, run_socket
from bot.settings import ConfigError, Settings
from handoff.knowledge import KnowledgeBase
from handoff.store import StoreError, open_database
from handoff.triggers import History
from handoff.tuning import load_settings
from models.encoder import Encoder, EncoderError, TransformerEncoder, default_model_dir
from models.evaluation import OOS, decide_labels, score, sweep
from models.faq import DEFAULT_THRESHOLD, FaqError, FaqIndex
from models.kb import KbError, dump_yaml, load_file, read_labelled, read_text
from models.sentiment import SentimentError
from models.tuned import TuningError, load_or_tune, worth_tuning

Handler = Callable[[argparse.Namespace], int]
USER_ERRORS = (ConfigError, KbError, FaqError, EncoderError, SentimentError, StoreError, TuningError, OSError)
_NUMBER = re.compile(r"[0-9]{1,10}")  # ASCII digits: str.isdigit() is true for '²', which int() refuses
MAX_SEED = 2**32 - 1  # numpy's legacy seeding and most tools take 32-bit seeds


def _whole(text: str, low: int, high: int, what: str) -> int:
    """A whole number from `low` to `high` for argparse, or a message saying what is allowed."""
    if not _NUMBER.fullmatch(text.strip()) or not low <= int(text) <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} from {low} to {high}")
    return int(text)


def _port(text: str) -> int:
    """A TCP port from 1 to 65535 (`baton serve`)."""
    return _whole(text, 1, 65535, "a port")


def _demo_port(text: str) -> int:
    """A TCP port from 1 to 65535, or 0 for any free one (`baton demo`)."""
    return _whole(text, 0, 65535, "a port")  # 0: the demo picks a free one


def _seed(text: str) -> int:
    """A tuning seed from 0 to 2**32 - 1."""
    return _whole(text, 0, MAX_SEED, "a seed")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `baton` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except USER_ERRORS as exc:
        print(f"baton: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="baton", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    ask = sub.add_parser("ask", help="run every check on one question and print the decision")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(handler=run_ask)
    _add_eval(sub)
    _add_faq(sub)
    _add_csat(sub)
    _add_eval_sentiment(sub)
    serve = sub.add_parser("serve", help="run the Slack app over HTTP (events, commands, interactivity)")
    serve.add_argument("--port", type=_port, help="port to listen on, 1-65535 (default: PORT, else 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    serve.set_defaults(handler=run_serve)
    socket = sub.add_parser("socket", help="run the Slack app over Socket Mode (needs SLACK_APP_TOKEN)")
    socket.set_defaults(handler=run_socket)
    _add_demo(sub)
    return parser


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="Baton in a local Slack in your browser: no Slack app, no tokens")
    demo.add_argument(
        "--port", type=_demo_port, default=3000, help="port of the page (default 3000; 0: any free)"
    )
    demo.add_argument("--host", default="127.0.0.1", help="address of the page (default 127.0.0.1)")
    demo.add_argument("--tour", action="store_true", help="play a scripted conversation once the page opens")
    demo.add_argument("--db", type=Path, help="keep conversations in this database (default: fresh each run)")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """`baton demo`: the local Slack, Baton and the page (aiohttp and Slack load only for it)."""
    from bot.demo import run_demo as run

    return run(args)


def _add_eval_sentiment(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ev = sub.add_parser("eval-sentiment", help="measure negative-sentiment detection on a labelled CSV")
    ev.add_argument("--test", type=Path, required=True, help="CSV text,label; label 'negative' is the class")
    ev.add_argument("--backend", default="default", help="default | vader | PATH (head .npz, checkpoint)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=run_eval_sentiment)


def run_eval_sentiment(args: argparse.Namespace) -> int:
    """`baton eval-sentiment`: negative precision, recall, F1 and accuracy for one backend."""
    from models import sentiment_eval

    try:
        result = sentiment_eval.run(args.test, args.backend)
    except sentiment_eval.EvalError as exc:
        print(f"baton: {exc}", file=sys.stderr)
        return 2
    print(sentiment_eval.render(result, as_json=args.json))
    return 0


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ev = sub.add_parser("eval", help="measure FAQ retrieval on labelled CSV files")
    ev.add_argument("--kb", type=Path, required=True, help="CSV text,label: the knowledge base")
    ev.add_argument("--test", type=Path, required=True, help="CSV text,label; unknown labels mean hand off")
    ev.add_argument("--threshold", type=float, help=f"confidence threshold (default {DEFAULT_THRESHOLD})")
    ev.add_argument(
        "--no-tune",
        action="store_true",
        help="frozen encoder only (default: fine-tune when the KB is large enough)",
    )
    ev.add_argument(
        "--seed", type=_seed, default=0, help=f"seed of the fine-tuning, 0-{MAX_SEED} (default 0)"
    )
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=run_eval)


def _add_faq(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    faq = sub.add_parser("faq", help="manage the FAQ knowledge base").add_subparsers(
        required=True, metavar="ACTION"
    )
    imp = faq.add_parser("import", help="import a YAML FAQ or a CSV of labelled questions")
    imp.add_argument("file", type=Path)
    imp.add_argument("--answers", type=Path, help="for CSV: answers by label (CSV label,answer or YAML)")
    imp.add_argument("--keep", action="store_true", help="keep entries from this file that it no longer has")
    imp.set_defaults(handler=run_faq_import)
    lst = faq.add_parser("list", help="list the entries")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=run_faq_list)
    exp = faq.add_parser("export", help="write every entry as YAML")
    exp.add_argument("--out", type=Path, help="file to write (default: standard output)")
    exp.set_defaults(handler=run_faq_export)


# -- ask -------------------------------------------------------------------------------------
def run_ask(args: argparse.Namespace) -> int:
    """`baton ask`: one turn through every check."""
    from bot.services import build_services

    started = time.perf_counter()
    services = build_services(Settings.from_env(os.environ))
    ready_ms = (time.perf_counter() - started) * 1000
    try:
        check = services.brain.check_now(args.question, History(), load_settings(services.db))
    finally:
        services.close()
    report = ask_report(check, ready_ms)
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else render_ask(report))
    return 0


def ask_report(check: TurnCheck, ready_ms: float) -> dict[str, object]:
    """The checks on one turn as plain values."""
    r = check.reading.retrieval
    decision = check.decision
    return {
        "question": check.text,
        "decision": decision.action.name.lower(),
        "reasons": [reason.detail for reason in decision.reasons],
        "entry": r.best.entry_id if r.best else None,
        "confidence": round(r.confidence, 4),
        "similarity": round(r.best.similarity, 4) if r.best else None,
        "runner_up": r.runner_up.entry_id if r.runner_up else None,
        "runner_up_similarity": round(r.runner_up.similarity, 4) if r.runner_up else None,
        "sentiment": {
            "score": round(check.reading.sentiment.score, 4),
            "label": check.reading.sentiment.label.value,
            "signals": list(check.reading.sentiment.signals),
        },
        "human_request": round(check.reading.human_request, 4),
        "choices": [e.id for e in check.choices],
        "answer": check.answer.answer if check.answer and decision.action.name == "ANSWER" else None,
        "turn_ms": round(check.elapsed_ms, 2),
        "startup_ms": round(ready_ms, 1),
    }


def render_ask(report: dict[str, object]) -> str:
    """The report for people."""
    sentiment = report["sentiment"]
    assert isinstance(sentiment, dict)
    lines = [
        f"decision:    {str(report['decision']).upper()}",
        f"entry:       {report['entry']}  (confidence {report['confidence']:.2f}, "
        f"similarity {report['similarity']})",
        f"runner-up:   {report['runner_up']}  (similarity {report['runner_up_similarity']})",
        f"sentiment:   {sentiment['score']:+.2f} {sentiment['label']}  {', '.join(sentiment['signals'])}",
        f"human ask:   {report['human_request']:.2f}",
    ]
    reasons = report["reasons"]
    assert isinstance(reasons, list)
    lines += [f"reason:      {reason}" for reason in reasons]
    choices = report["choices"]
    if isinstance(choices, list) and choices:
        lines.append(f"choices:     {', '.join(map(str, choices))}")
    if report["answer"]:
        lines += ["answer:", *(f"  {line}" for line in str(report["answer"]).splitlines())]
    lines.append(f"time:        {report['turn_ms']} ms for the turn ({report['startup_ms']} ms to load)")
    return "\n".join(lines)


# -- eval ------------------------------------------------------------------------------------
def run_eval(args: argparse.Namespace) -> int:
    """`baton eval`: retrieval quality on a labelled test set (progress on stderr)."""
    kb_rows = read_labelled(read_text(args.kb), str(args.kb))  # each refuses a file with no rows
    test_rows = read_labelled(read_text(args.test), str(args.test))
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise FaqError(f"--threshold must be between 0 and 1, not {args.threshold}")
    settings = Settings.from_env(os.environ)
    started = time.perf_counter()
    # One intra-op thread per worker (a worker per core): on a busy machine, threads that wait for
    # each other made encoding and tuning many times slower (models/tuned.py).
    base = TransformerEncoder(settings.model_dir or default_model_dir(), threads=1)
    texts, labels = [t for t, _ in kb_rows], [label for _, label in kb_rows]
    encoder: Encoder = base
    calibrator = None
    if not args.no_tune and worth_tuning(labels):
        tuned = load_or_tune(base, texts, labels, settings.tuned_root, _progress, args.seed)
        encoder, calibrator = tuned, tuned.calibrator
    _progress(f"encoding {len(texts)} knowledge-base and {len(test_rows)} test questions")
    index = FaqIndex.build(encode_all(encoder, texts), labels, calibrator=calibrator)
    known = set(index.entries.tolist())
    gold = [label if label in known else OOS for _, label in test_rows]
    retrievals = index.search(encode_all(encoder, [t for t, _ in test_rows]))
    best = [r.best.entry_id if r.best else OOS for r in retrievals]
    confidence = np.array([r.confidence for r in retrievals])
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    result = {**score(gold, decide_labels(best, confidence, threshold), threshold).as_dict()}
    result["tuned"] = calibrator is not None
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({**result, "seconds": round(seconds, 1)}))
        return 0
    print(render_eval(result, sweep(gold, best, confidence), seconds))
    return 0


def _progress(message: str) -> None:
    """One line of progress on standard error."""
    print(f"baton: {message}", file=sys.stderr, flush=True)


def encode_all(encoder: Encoder, texts: list[str], batch: int = 128) -> np.ndarray:
    """Encode many texts, shortest first so batches carry little padding."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    for start in range(0, len(texts), batch):
        chunk = order[start : start + batch]
        out[chunk] = encoder.encode([texts[i] for i in chunk])
    return out


def render_eval(result: dict[str, float | int | bool], rows: list, seconds: float) -> str:
    """The evaluation report with a threshold sweep."""
    lines = [
        f"{key:>18}: {value:.4f}" if isinstance(value, float) else f"{key:>18}: {value}"
        for key, value in result.items()
    ]
    lines.append(f"{'seconds':>18}: {seconds:.1f}")
    lines += ["", "threshold sweep (for reading only; the threshold above was not chosen from it):"]
    lines.append("  threshold  in-scope acc  oos recall  oos precision  accuracy    mcc")
    for s in rows:
        lines.append(
            f"  {s.threshold:9.2f}  {s.in_scope_accuracy:12.3f}  {s.oos_recall:10.3f}  "
            f"{s.oos_precision:13.3f}  {s.accuracy:8.3f}  {s.mcc:6.3f}"
        )
    return "\n".join(lines)


# -- faq -------------------------------------------------------------------------------------
def _knowledge(with_model: bool) -> KnowledgeBase:
    """The configured database's knowledge base (no FAQ file sync); the model only if asked for."""
    settings = Settings.from_env(os.environ)
    encoder = TransformerEncoder(settings.model_dir or default_model_dir()) if with_model else _NoEncoder()
    return KnowledgeBase(open_database(settings.db_path), encoder)


def run_faq_import(args: argparse.Namespace) -> int:
    """`baton faq import FILE`."""
    entries = load_file(args.file, args.answers)
    report = _knowledge(with_model=True).import_entries(
        entries, f"file:{args.file.resolve()}", replace=not args.keep
    )
    print(f"{args.file}: {report.summary()}")
    return 0


def run_faq_list(args: argparse.Namespace) -> int:
    """`baton faq list`."""
    entries = _knowledge(with_model=False).entries()
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
    else:
        for entry in entries:
            print(f"{entry.id:32} {entry.question}  (+{len(entry.alternates)} paraphrases)")
        print(f"{len(entries)} entries")
    return 0


def run_faq_export(args: argparse.Namespace) -> int:
    """`baton faq export`."""
    text = dump_yaml(_knowledge(with_model=False).entries())
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


class _NoEncoder:
    """Stands in for the model where a command only reads entries (listing never encodes)."""

    name = "none"
    dim = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        raise EncoderError("this command does not load the model")


# -- csat ------------------------------------------------------------------------------------
def _add_csat(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    csat = sub.add_parser("csat", help="customer satisfaction from 👍/👎 and the bot resolution rate")
    csat.add_argument("--days", type=_days, default=7, help="how many days back to count (default 7)")
    csat.add_argument("--json", action="store_true", help="print one JSON object")
    csat.set_defaults(handler=run_csat)


def _days(text: str) -> int:
    """A number of days from 1 to the most `/baton csat` takes, for argparse."""
    return _whole(text, 1, MAX_CSAT_DAYS, "a number of days")


def run_csat(args: argparse.Namespace) -> int:
    """`baton csat [--days N] [--json]`."""
    from datetime import UTC, datetime, timedelta

    from handoff.csat import csat_report, render_report, report_json

    settings = Settings.from_env(os.environ)
    db = open_database(settings.db_path)
    report = csat_report(db, datetime.now(UTC) - timedelta(days=args.days))
    print(
        json.dumps(report_json(report), ensure_ascii=False) if args.json else render_report(report, args.days)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
