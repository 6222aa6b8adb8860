"""When splitting a batch into shards pays: one LSTM training step, whole batch against shards.

``textpredict.layers.batch_shards`` splits a training batch into shards whose
compiled programs can run on different cores. This measures, at several batch sizes
and widths, a training step of ``textpredict.LSTM`` (as ``lstm_step.py`` times it)
traced with the batch whole and traced split into 2 shards, interleaved round by
round in one process; the ratio is the whole batch's time over the shards' time
(above 1: the shards are faster). The per-shard product is what the rule in
``batch_shards.shard_count`` compares with ``MAX_SHARD_PRODUCT``.

    python benchmarks/batch_shards.py [--rounds 7]     # results/batch_shards.txt
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np
import tensorflow as tf

import textpredict
from textpredict.layers import batch_shards

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_step import interleaved_medians, keras_step, machine

SHAPES = [  # (batch, units); 35 steps, as many input features as units
    (8, 200),
    (20, 200),
    (64, 200),
    (20, 400),
    (20, 500),
    (20, 650),
    (64, 650),
    (20, 1500),
]
STEPS = 35


def traced_step(batch, units, shards):
    """A training step of the LSTM, traced with the batch split into `shards`."""
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, STEPS, units)), tf.float32)
    step = keras_step(textpredict.LSTM(units, return_sequences=True), x, jit=False)
    with batch_shards.forced_shards(shards):
        for _ in range(2):  # the first call traces and compiles
            step()
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=0.5, help="per variant per round")
    args = parser.parse_args(argv)
    print(machine())
    print(
        f"  {'batch':>5}{'units':>6}{'shard product':>15}{'whole ms':>10}{'2 shards ms':>13}"
        f"{'ratio':>8}{'rule':>7}"
    )
    for batch, units in SHAPES:
        variants = {shards: traced_step(batch, units, shards) for shards in (1, 2)}
        medians = interleaved_medians(variants, args.rounds, args.seconds)
        whole, split = (1e3 * medians[s] for s in (1, 2))
        product = -(-batch // 2) * units * 4 * units
        rule = batch_shards.shard_count(batch, units, 4, cores=2)
        print(
            f"  {batch:>5}{units:>6}{product:>15,}{whole:>10.2f}{split:>13.2f}"
            f"{whole / split:>7.2f}x{rule:>7}"
        )
    print("ratio: whole batch's ms over 2 shards' ms (above 1: shards faster);")
    print("rule: the shard count batch_shards.shard_count picks on 2 cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
