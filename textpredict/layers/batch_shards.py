"""Splitting a training batch into shards whose compiled passes can run side by side.

The rows of a batch are independent sequences: the time loop of an LSTM over
rows 0…9 and its loop over rows 10…19 share only the weights. The loop itself
cannot be spread over cores (step t needs step t-1), and on a CPU XLA runs
each step's small recurrent product `h_{t-1} @ U` on one core, so one loop
over the whole batch leaves the other cores mostly idle. Split into shards,
each shard's forward and backward pass is an XLA program of its own
(`time_loop.hand_gradient_loop`); the programs of different shards do not
depend on each other, so TensorFlow's executor is free to run them on
different cores at once. The shards' outputs are concatenated and their
weight gradients summed. Only a batch whose size is fixed when the training
step is traced is split (see `shard_count`), as in the Penn Treebank presets'
streams; a GPU batch never is.

Sharding changes no result beyond floating-point rounding: the dropout masks
are drawn for the whole batch before it is split, and every row meets the same
weights and the same equations.

It pays only while a step's product is small enough, and where that limit lies
depends on the machine (`benchmarks/batch_shards.py`, `results/batch_shards.txt`,
an LSTM training step with 2 shards against the whole batch, on 2 cores):

* on an AVX-512 machine, faster from batch 20 × 200 units to 64 × 650 (1.6 M
  to 54 M multiply-adds a shard and step: 1.07× to 1.23× in two runs, 20 × 650
  about even at 1.01× and 1.02×), and slower at 20 × 1500 (90 M: 0.81× in both);
* on an AVX2 machine, faster up to 64 × 200 (5.1 M: 1.05× to 1.18×), even at
  20 × 400 (6.4 M) and slower above (0.74× to 0.89× at 500 and 650 units).

AVX-512 doubles a core's product speed, so the element-wise work of each step,
which the shards spread over the cores and a whole batch leaves on one, is a
larger share of the step. That is a plausible reason for the difference, not
one checked on more machines; the rule keys the limit on AVX-512
(`max_shard_product`).
"""

import contextlib
import functools
import os

import tensorflow as tf

#: Largest per-shard, per-step recurrent product, `rows · units · gates·units`
#: multiply-adds, for which a shard is worth its own programs, on a CPU with AVX-512:
#: between an LSTM's 32 × 650 (54 M a shard, faster) and 10 × 1500 (90 M, slower).
MAX_SHARD_PRODUCT_AVX512 = 60_000_000
#: The same on other CPUs: between 64 × 200 (5.1 M, faster) and 20 × 400 (6.4 M, even).
MAX_SHARD_PRODUCT = 6_000_000
#: Fewest rows a shard gets: below that, a program's fixed cost outweighs its work.
MIN_SHARD_ROWS = 4
#: Most shards a batch is split into: more have been measured on no machine yet.
MAX_SHARDS = 2


def available_cores():
    """CPU cores this process may run on, and TensorFlow may run ops on at once."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    inter_op = tf.config.threading.get_inter_op_parallelism_threads()
    return min(cores, inter_op) if inter_op > 0 else cores


#: Set by `forced_shards`: a shard count that overrides the rule.
_forced = None


@contextlib.contextmanager
def forced_shards(count):
    """Within the block, layers traced for training split every batch into
    `count` shards whatever its size (1: never split); for benchmarks and tests."""
    global _forced
    previous, _forced = _forced, int(count)
    try:
        yield
    finally:
        _forced = previous


@functools.cache
def has_avx512(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU has AVX-512 (read from Linux's `cpuinfo`; False elsewhere)."""
    try:
        with open(cpuinfo, encoding="utf-8") as info:
            return any(line.startswith("flags") and "avx512f" in line.split() for line in info)
    except OSError:
        return False


def max_shard_product(avx512=None):
    """The largest per-shard product worth a shard on this CPU (see the module docstring)."""
    avx512 = has_avx512() if avx512 is None else avx512
    return MAX_SHARD_PRODUCT_AVX512 if avx512 else MAX_SHARD_PRODUCT


def shard_count(batch, units, gates, cores=None, avx512=None):
    """How many shards a batch of `batch` rows is split into (1: not split).

    Args:
        batch: The static batch size, or None when it is known only at run
            time. Then the batch is not split: such a batch (lines of varying
            length, in buckets) changes shape from step to step, and XLA compiles
            each shard's programs anew for every shape, which costs more than
            the shards save in a short run (a 2-epoch run on 150 lines: 45 s
            against 31 s).
        units: The layer's units, the width of `h`.
        gates: The number of `units`-wide blocks in `U`.
        cores: Cores to spread over; `available_cores()` by default.
        avx512: Whether the CPU has AVX-512; read from the CPU by default.
    """
    if _forced is not None:
        return _forced
    cores = available_cores() if cores is None else cores
    if batch is None or cores < 2 or tf.config.list_logical_devices("GPU"):
        return 1  # a GPU runs the whole product at once
    count = min(cores, MAX_SHARDS, batch // MIN_SHARD_ROWS)
    if count < 2:
        return 1
    rows = -(-batch // count)  # the largest shard's (see `split_rows`)
    return count if rows * units * gates * units <= max_shard_product(avx512) else 1


def split_rows(tensor, count):
    """`tensor` split along its first axis into `count` nearly equal parts.

    Part i starts at row `i · batch // count`, so the later parts have a row
    more when `count` does not divide the batch. The sizes are static when the
    first dimension is, computed at run time otherwise. None passes through as
    `count` Nones.
    """
    if tensor is None:
        return [None] * count
    batch = tensor.shape[0]
    static = batch is not None
    if not static:
        batch = tf.shape(tensor)[0]
    bounds = [(i * batch) // count for i in range(count + 1)]
    sizes = [bounds[i + 1] - bounds[i] for i in range(count)]
    return tf.split(tensor, sizes if static else tf.stack(sizes), axis=0, num=count)
