"""Peak memory of `textpredict train` against the corpus size, and the cost of the
vocabulary against one pass over the corpus.

    python benchmarks/memory.py                      # 10 MB and 500 MB, 100 steps
    python benchmarks/memory.py --sizes 10 50 --steps 20

For each size it writes a corpus of generated stories (``default_corpus.generate``;
a block of about 10 MB of distinct stories, repeated up to the size), then runs
``textpredict train --epochs 1 --steps-per-epoch STEPS`` on it in a child process and
reads the child's peak resident set size from ``wait4``. The run includes everything
that reads the whole corpus: the UTF-8 check, the vocabulary, and the validation and
test passes over the held-out 10 %. The ratio of the peak RSS of the largest corpus to
the smallest's is what must stay near 1.

Then, on the largest corpus, it times building the vocabulary (``Tokenizer.adapt``)
against one pass that only reads and standardises every line, the work any reader
of the corpus does.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BLOCK_BYTES = 10_000_000


def write_corpus(path: Path, megabytes: float) -> int:
    """Generated stories up to ``megabytes`` (whole lines); returns the bytes written."""
    from textpredict.default_corpus import generate

    block, seed = [], 0
    while sum(len(b) for b in block) < min(BLOCK_BYTES, megabytes * 1e6):
        block.append("\n".join(generate(2000, seed=seed)) + "\n")
        seed += 1
    text = "".join(block).encode("utf-8")
    target, written = int(megabytes * 1e6), 0
    with open(path, "wb") as handle:
        while written < target:
            piece = text[: target - written]
            piece = piece[: piece.rfind(b"\n") + 1] or text
            handle.write(piece)
            written += len(piece)
    return written


def peak_rss_of_training(corpus: Path, models: Path, steps: int) -> tuple[int, float]:
    """Peak RSS (bytes) and wall seconds of one `textpredict train` child process."""
    command = [sys.executable, "-m", "textpredict", "train", "-c", str(corpus)]
    command += ["--model", str(models / corpus.stem), "--epochs", "1", "--seed", "0"]
    command += ["--steps-per-epoch", str(steps), "--overwrite"]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"training on {corpus} failed:\n{output[-2000:]}")
    return usage.ru_maxrss * 1024, time.perf_counter() - started  # ru_maxrss is in KiB


def vocabulary_against_one_pass(corpus: Path) -> tuple[float, float]:
    """Seconds to build the vocabulary, and to read and standardise every line once."""
    import tensorflow as tf

    from textpredict.text import Tokenizer, end_sentence, read_lines, standardize

    lines = read_lines([corpus])
    started = time.perf_counter()
    Tokenizer.adapt(lines, 10_000)
    vocabulary = time.perf_counter() - started
    started = time.perf_counter()
    texts = lines.map(end_sentence).batch(4096).map(standardize).prefetch(tf.data.AUTOTUNE)
    for _ in texts:
        pass
    return vocabulary, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[10, 500], help="MB")
    parser.add_argument("--steps", type=int, default=100, help="training steps of the epoch")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        scratch = Path(scratch)
        print(
            f"# python benchmarks/memory.py --sizes {' '.join(map(str, args.sizes))} "
            f"--steps {args.steps}"
        )
        print(
            f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}"
        )
        print(f"{'corpus':>10} {'peak RSS':>10} {'ratio':>6} {'wall':>8}")
        peaks, corpora = [], []
        for megabytes in sorted(args.sizes):
            corpus = scratch / f"corpus-{megabytes:g}MB.txt"
            size = write_corpus(corpus, megabytes)
            rss, seconds = peak_rss_of_training(corpus, scratch / "models", args.steps)
            peaks.append(rss)
            corpora.append(corpus)
            print(
                f"{size / 1e6:>8.1f}MB {rss / 2**20:>8.0f}MiB {rss / peaks[0]:>6.3f} "
                f"{seconds:>7.0f}s",
                flush=True,
            )
        vocabulary, one_pass = vocabulary_against_one_pass(corpora[-1])
        print(
            f"vocabulary of {corpora[-1].name}: {vocabulary:.0f} s; one pass reading and "
            f"standardising it: {one_pass:.0f} s; ratio {vocabulary / one_pass:.2f}"
        )


if __name__ == "__main__":
    main()
