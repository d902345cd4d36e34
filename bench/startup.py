"""Start-up: the plain-torch BERT (`models.bert`) against transformers, each in fresh processes.

Each figure is measured for both loaders in the same run, alternating inside every round:
- `encoder_ready_s`: process start to a loaded encoder that has encoded one sentence
  (`TransformerEncoder(default_model_dir(), threads=1)`, in `python -c`);
- `serve_ready_s`: `baton serve` spawned against the local Slack emulator to `/healthz` ok, with a
  fresh database (a first start: the sample FAQ is encoded), then `serve_restart_ready_s`: the
  same database again (a restart: the embeddings come from the SQLite cache);
- `demo_ready_s`: `baton demo`'s own "ready in" figure (process start to the page being served;
  its FAQ cache is made by an untimed first run);
- `one_question_ms`: then both encoders in this process, one question at a time (the sample
  questions of `bench.faq`, one thread), so the faster start costs nothing per question.
The transformers runs pass `plain=False` to the encoder (the bench patches it; `baton` has no
knob). Prints one JSON object with medians, every run, and transformers / plain ratios.

    python -m bench.startup [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.faq import QUICK, Variant, _latencies, _rounds, _warm_then_time, machine, ratio, sample_questions
from bench.load import child_env, free_port, spawn, stop, wait_ready
from bot.localslack import LocalSlack, World
from bot.runner import EVENTS_PATH

LOADERS = ("plain", "transformers")
# argv[1] picks the loader; the rest is `baton`'s command line (or nothing: just the encoder)
LAUNCHER = """
import functools, sys
from models.encoder import TransformerEncoder, default_model_dir
if sys.argv.pop(1) == "transformers":
    TransformerEncoder.__init__ = functools.partialmethod(TransformerEncoder.__init__, plain=False)
if len(sys.argv) == 1:
    TransformerEncoder(default_model_dir(), threads=1).encode(["How do I reset my password?"])
    print("transformers" in sys.modules, flush=True)
else:
    from bot.cli import main
    sys.exit(main(sys.argv[1:]))
"""


async def encoder_ready(loader: str) -> tuple[float, bool]:
    """Seconds from spawning `python` to its encoder having encoded a sentence; transformers imported?"""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCHER, loader, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await process.stdout.readline()
    elapsed = time.perf_counter() - started
    if await process.wait() != 0:
        raise RuntimeError(f"the {loader} encoder did not load")
    return elapsed, line.strip() == b"True"


async def serve_ready(loader: str, db: Path, cwd: Path) -> float:
    """Seconds from spawning `baton serve` to /healthz answering ok."""
    async with LocalSlack(World()) as slack:
        port = free_port()
        slack.app_url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        argv = [sys.executable, "-c", LAUNCHER, loader, "serve", "--host", "127.0.0.1", "--port", str(port)]
        child = await spawn(argv, child_env(slack, db), cwd)
        try:
            return await wait_ready(child, f"http://127.0.0.1:{port}/healthz")
        finally:
            await stop(child)


async def demo_ready(loader: str, cwd: Path) -> float:
    """`baton demo`'s "ready in" seconds (it counts from its process start), then stop it."""
    argv = [sys.executable, "-c", LAUNCHER, loader, "demo", "--port", "0"]
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        async for line in process.stdout:
            if found := re.search(rb"ready in ([\d.]+) s", line):
                return float(found[1])
        raise RuntimeError(f"the {loader} demo stopped before it was ready")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await process.wait()


def one_question(rounds: int) -> dict[str, Any]:
    """Per-question encode latency of both loaders, in one process, rounds alternating."""
    from bot.runner import model_threads
    from models.encoder import TransformerEncoder, default_model_dir
    from models.kb import load_file, sample_path

    questions = sample_questions(load_file(sample_path()), QUICK.questions)
    encoders = {
        loader: TransformerEncoder(default_model_dir(), plain=loader == "plain") for loader in LOADERS
    }
    variants = {loader: Variant(_asker(encoder), model_threads()) for loader, encoder in encoders.items()}
    runs = _rounds(variants, lambda call: _warm_then_time(call, questions), rounds)
    figures = {loader: _latencies(samples) for loader, samples in runs.items()}
    return figures | {
        "ratio_transformers_over_plain_p50": ratio(
            figures["transformers"]["p50_ms"], figures["plain"]["p50_ms"]
        )
    }


def _asker(encoder: Any) -> Callable[[str], object]:
    """Encode one question."""
    return lambda question: encoder.encode([question])


def summary(runs: dict[str, list[float]]) -> dict[str, Any]:
    """Median and every run of each loader, and the transformers / plain ratio of the medians."""
    medians = {loader: statistics.median(seconds) for loader, seconds in runs.items()}
    return {
        **{
            loader: {"median": round(medians[loader], 2), "runs": [round(s, 2) for s in runs[loader]]}
            for loader in runs
        },
        "ratio_transformers_over_plain": ratio(medians["transformers"], medians["plain"]),
    }


async def main(rounds: int) -> dict[str, Any]:
    """Every round runs each figure once per loader, the loader order flipping from round to round."""
    figures: dict[str, dict[str, list[float]]] = {
        name: {loader: [] for loader in LOADERS} for name in ("encoder", "serve", "restart", "demo")
    }
    imported: dict[str, set[bool]] = {loader: set() for loader in LOADERS}
    report: dict[str, Any] = {"machine": machine(), "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="baton-startup-") as tmp:
        await demo_ready("plain", Path(tmp))  # makes the demo's FAQ cache in tmp/.baton
        for round_ in range(rounds):
            for loader in LOADERS if round_ % 2 == 0 else LOADERS[::-1]:
                seconds, with_transformers = await encoder_ready(loader)
                figures["encoder"][loader].append(seconds)
                imported[loader].add(with_transformers)
                db = Path(tmp) / f"{loader}-{round_}.db"
                figures["serve"][loader].append(await serve_ready(loader, db, Path(tmp)))
                figures["restart"][loader].append(await serve_ready(loader, db, Path(tmp)))
                figures["demo"][loader].append(await demo_ready(loader, Path(tmp)))
    report["machine"]["load_average_1m_at_end"] = machine()["load_average_1m"]
    return report | {
        "encoder_ready_s": summary(figures["encoder"]),
        "serve_ready_s": summary(figures["serve"]),
        "serve_restart_ready_s": summary(figures["restart"]),
        "demo_ready_s": summary(figures["demo"]),
        "one_question_ms": one_question(rounds),
        "imports_transformers": {loader: sorted(seen) for loader, seen in imported.items()},
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each figure per loader (5)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse().rounds)), indent=2))
