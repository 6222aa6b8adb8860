"""Where the time loop should stop being XLA-compiled: one training step of
``textpredict.LSTM`` with its loop compiled by XLA and run as TensorFlow operations.

`textpredict.layers.time_loop.xla_runs_faster` compiles the loop while one step's
recurrent product has at most ``XLA_MAX_STEP_PRODUCT`` multiply-adds; this measures
both ways on both sides of that bound, interleaved in one process.

    python benchmarks/loop_compile.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# What textpredict sets before TensorFlow loads, here before the peers import it too:
# every contender runs on the same TensorFlow kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np
import tensorflow as tf
from lstm_step import keras_step, machine, time_steps

import textpredict
from textpredict.layers import time_loop

SHAPES = [(20, 200), (64, 200), (32, 400), (20, 650), (64, 650)]  # (batch, units)
STEPS = 35


def traced_step(batch: int, units: int, xla: bool):
    """A training step whose loop was traced with XLA on or off."""
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, STEPS, units)), tf.float32)
    step = keras_step(textpredict.LSTM(units, return_sequences=True), x, jit=False)
    bound = time_loop.XLA_MAX_STEP_PRODUCT
    time_loop.XLA_MAX_STEP_PRODUCT = float("inf") if xla else 0
    try:
        step()  # traces with this setting
    finally:
        time_loop.XLA_MAX_STEP_PRODUCT = bound
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=0.5, help="per contender per round")
    args = parser.parse_args(argv)
    print(machine())
    print(f"XLA_MAX_STEP_PRODUCT = {time_loop.XLA_MAX_STEP_PRODUCT:,}")
    print(f"{'batch':>6}{'units':>6}{'product':>12}{'XLA ms':>9}{'TF ms':>9}  faster  chosen")
    for batch, units in SHAPES:
        steps = {xla: traced_step(batch, units, xla) for xla in (True, False)}
        counts = {}
        for xla, step in steps.items():
            step()
            counts[xla] = max(2, round(args.seconds / time_steps(step, 2)))
        samples = {xla: [] for xla in steps}
        for _ in range(args.rounds):
            for xla, step in steps.items():
                samples[xla].append(time_steps(step, counts[xla]))
        ms = {xla: 1e3 * statistics.median(samples[xla]) for xla in steps}
        product = batch * units * 4 * units
        faster = "XLA" if ms[True] < ms[False] else "TF"
        chosen = "XLA" if time_loop.xla_runs_faster(batch, (units, 4 * units)) else "TF"
        print(
            f"{batch:>6}{units:>6}{product:>12,}{ms[True]:>9.1f}{ms[False]:>9.1f}"
            f"  {faster:<6}  {chosen}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
