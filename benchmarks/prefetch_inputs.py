"""Whether a cell's compiled time loop should read its input projection a step ahead.

``Recurrent.prefetch_inputs`` has the XLA-compiled forward loop hand each step its
input projection as loop state, read at the end of the step before, instead of
letting the step read it itself (``time_loop._forward`` says why that changes XLA's
code). This measures, for every cell with a hand-derived gradient, a training step
(as ``lstm_step.py`` times it) traced with the prefetch off and on, interleaved
round by round in one process; the ratio is the time without over the time with
(above 1: the prefetch is faster). ``class`` is the cell's setting.

    python benchmarks/prefetch_inputs.py [--shape small|medium] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_step import CELLS, SHAPES, interleaved_medians, keras_step, machine


def traced_step(cls, shape, prefetch):
    """A training step of a `cls` layer, traced with `prefetch_inputs` set so."""
    batch, steps, features, units = shape
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, steps, features)), tf.float32)
    layer = cls(units, return_sequences=True)
    layer.prefetch_inputs = prefetch  # read when the step is traced, below
    step = keras_step(layer, x, jit=False)
    for _ in range(2):  # the first call traces and compiles
        step()
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), help="default: all")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=0.5, help="per variant per round")
    args = parser.parse_args(argv)
    print(machine())
    for shape_name in [args.shape] if args.shape else list(SHAPES):
        shape = SHAPES[shape_name]
        batch, steps, features, units = shape
        print(f"\n{shape_name}: batch {batch}, {steps} steps, {features} inputs, {units} units")
        print(f"  {'cell':<24}{'without ms':>11}{'with ms':>9}{'ratio':>8}{'class':>7}")
        for name, (cls, _) in CELLS.items():
            variants = {p: traced_step(cls, shape, p) for p in (False, True)}
            medians = interleaved_medians(variants, args.rounds, args.seconds)
            without, with_ = (1e3 * medians[p] for p in (False, True))
            print(
                f"  {'textpredict.' + name:<24}{without:>11.2f}{with_:>9.2f}"
                f"{without / with_:>7.2f}x{'on' if cls.prefetch_inputs else 'off':>7}"
            )
    print("\nratio: ms without the prefetch over ms with it (above 1: the prefetch is faster);")
    print("class: the cell's prefetch_inputs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
