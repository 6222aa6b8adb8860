"""How long a completion takes: inside the REPL, and as a one-shot command.

* In the REPL the model is loaded once; each line typed is one ``complete``. This runs
  ``textpredict.repl.run_repl`` with the command line's own completion function over a
  list of prompts and times each one (the first, which traces the graph, apart).
* The one-shot ``textpredict complete "TEXT"`` starts Python, imports TensorFlow,
  loads the model and answers. Its cost beyond ``python -c "import tensorflow"`` is
  what textpredict adds; both are timed alternately, as the median of several runs.

    textpredict train                                   # the default model
    python benchmarks/latency.py [--model default] [--prompts 200] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROMPTS = [
    "the clouds are in the",
    "i grew up in france and moved away when i was young . now i speak fluent",
    "my sister lives near the old harbour . these days",
    "the keys near the old cabinet by the door",
    "we",
]


def repl_latencies(model: str, count: int) -> tuple[float, list[float]]:
    """Seconds of the first completion and of each of ``count`` later ones."""
    from textpredict.cli import _complete, _format, _load_predictor
    from textpredict.repl import ReplSettings, run_repl

    predictor = _load_predictor(model)
    times: list[float] = []

    def complete(text, settings):
        started = time.perf_counter()
        answer = _format(_complete(predictor, text, settings))
        times.append(time.perf_counter() - started)
        return answer

    lines = iter([PROMPTS[i % len(PROMPTS)] for i in range(count + 1)])

    def read_line(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    run_repl(complete, read_line, lambda message: None, ReplSettings())
    return times[0], times[1:]


def command_seconds(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - started


def one_shot(model: str, runs: int) -> tuple[float, float]:
    """Median seconds of ``import tensorflow`` and of ``textpredict complete``."""
    import_only = [sys.executable, "-c", "import tensorflow"]
    script = Path(sys.executable).with_name("textpredict")  # the console script, as installed
    complete = [str(script), "complete", PROMPTS[0], "--model", model]
    command_seconds(import_only)  # warm the file cache for both
    command_seconds(complete)
    imports, completes = [], []
    for _ in range(runs):  # alternated, so both see the same machine
        imports.append(command_seconds(import_only))
        completes.append(command_seconds(complete))
    return statistics.median(imports), statistics.median(completes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--prompts", type=int, default=200, help="REPL completions to time")
    parser.add_argument("--runs", type=int, default=7, help="one-shot runs of each command")
    args = parser.parse_args(argv)

    first, times = repl_latencies(args.model, args.prompts)
    ms = sorted(1e3 * t for t in times)
    p50, p95 = statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]
    print(f"repl complete ({len(ms)} prompts, model {args.model}):")
    print(f"  p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms; first {1e3 * first:.0f} ms")
    tensorflow, complete = one_shot(args.model, args.runs)
    print(f"one-shot (median of {args.runs}):")
    rows = {
        'python -c "import tensorflow"': f"{tensorflow:.2f} s",
        f'textpredict complete "{PROMPTS[0]}"': f"{complete:.2f} s",
        "added by textpredict": f"{complete - tensorflow:+.2f} s",
    }
    width = max(map(len, rows))
    for label, value in rows.items():
        print(f"  {label:<{width}}  {value:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
