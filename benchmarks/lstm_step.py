"""One training step of a recurrent layer: textpredict's cells against Keras and PyTorch.

A step is what training does to the layer: forward over ``(batch, time, features)``,
a scalar loss, backward to every weight and the input, and an SGD update. Every
contender runs the same shapes, interleaved round by round in one process, so that
the ratios between them survive a shared, noisy machine; the report gives the median
over rounds.

    pip install torch==2.13.0      # the PyTorch peer (optional; benchmark only)
    python benchmarks/lstm_step.py [--rounds 7] [--json results.json]
    python benchmarks/lstm_step.py --precision mixed_float16   # for a GPU

With ``--precision`` the TensorFlow contenders compute in Keras's mixed precision
(float32 weights, 16-bit products); PyTorch stays in float32, and the peak is
float32's.

Contenders: ``textpredict.LSTM`` and every variant (as ``textpredict train`` runs
them: hand-derived BPTT, the time loop compiled with XLA), ``keras.layers.LSTM`` (with
and without XLA; the faster is the Keras figure), and ``torch.nn.LSTM``.

FLOPs count the matrix products only, multiply and add as two: the forward pass of a
cell with ``g`` gate blocks does ``2·B·T·g·U·(D + U)``, and the backward pass twice
that (the gradients of the inputs and of the weights), so a step is
``6·B·T·g·U·(D + U)``. The peak is the best rate of one large square matrix product
on this machine, by TensorFlow or PyTorch, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# What textpredict sets before TensorFlow loads, here before the peers import it too:
# every contender runs on the same TensorFlow kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras
import numpy as np
import tensorflow as tf

import textpredict
from textpredict.model import PRECISIONS

SHAPES = {  # name: (batch, time steps, input features, units)
    "small": (20, 35, 200, 200),
    "medium": (64, 35, 650, 650),
}
CELLS = {
    "lstm": (textpredict.LSTM, 4),
    "peephole": (textpredict.PeepholeLSTM, 4),
    "cifg": (textpredict.CIFG, 3),
    "gru": (textpredict.GRU, 3),
    "rnn": (textpredict.SimpleRNN, 1),
}
LEARNING_RATE = 1e-3


@dataclass
class Result:
    contender: str
    shape: str
    ms_per_step: float
    tokens_per_s: float
    gflop_per_s: float
    peak_fraction: float


def step_flops(batch: int, steps: int, features: int, units: int, gates: int) -> float:
    return 6.0 * batch * steps * gates * units * (features + units)


# --- contenders: each returns a function that runs one training step -----------------


def keras_step(layer: keras.layers.Layer, x: tf.Tensor, jit: bool) -> Callable[[], None]:
    """A training step of a Keras layer: loss = mean of outputs · a fixed projection
    (in float32, whatever the layer's compute dtype)."""
    layer(x[:1])  # build
    projection = tf.constant(np.random.default_rng(1).normal(size=(layer.units,)), tf.float32)
    optimizer = keras.optimizers.SGD(LEARNING_RATE)

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, training=True)
            loss = tf.reduce_mean(tf.tensordot(tf.cast(outputs, tf.float32), projection, 1))
        grads = tape.gradient(loss, [x, *layer.trainable_variables])
        optimizer.apply(grads[1:], layer.trainable_variables)
        return grads[0]

    return lambda: step().numpy()  # .numpy() waits for the step to finish


def torch_step(batch: int, steps: int, features: int, units: int) -> Callable[[], None]:
    import torch

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(features, units, batch_first=True)
    x = torch.randn(batch, steps, features, requires_grad=True)
    projection = torch.randn(units)
    optimizer = torch.optim.SGD(lstm.parameters(), lr=LEARNING_RATE)

    def step():
        optimizer.zero_grad(set_to_none=True)
        x.grad = None
        outputs, _ = lstm(x)
        loss = (outputs @ projection).mean()
        loss.backward()
        optimizer.step()

    return step


def contenders(
    shape: tuple[int, int, int, int], with_torch: bool, precision: str = "float32"
) -> dict[str, tuple]:
    """``name: (step function, gate blocks)`` for one shape; the Keras layers in the
    dtype policy ``precision``."""
    batch, steps, features, units = shape
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, steps, features)), tf.float32)
    found = {}
    for name, (cls, gates) in CELLS.items():
        layer = cls(units, return_sequences=True, dtype=precision)
        found[f"textpredict.{name}"] = (keras_step(layer, x, jit=False), gates)
    for jit in (False, True):
        layer = keras.layers.LSTM(units, return_sequences=True, dtype=precision)
        found[f"keras.LSTM{' xla' if jit else ''}"] = (keras_step(layer, x, jit), 4)
    if with_torch:
        found["torch.nn.LSTM"] = (torch_step(*shape), 4)
    return found


# --- measuring ----------------------------------------------------------------------


def matmul_peak(size: int = 2048, repeats: int = 10, with_torch: bool = False) -> float:
    """The best GFLOP/s of a ``size``² matrix product, by TensorFlow (and PyTorch)."""
    a = tf.random.normal((size, size))
    product = tf.function(lambda: tf.matmul(a, a))
    rates = []
    runners = [lambda: product().numpy()]
    if with_torch:
        import torch

        t = torch.randn(size, size)
        runners.append(lambda: t @ t)
    for run in runners:
        run()
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            rates.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
    return max(rates)


def time_steps(step: Callable[[], None], count: int) -> float:
    """Seconds per step over ``count`` consecutive steps."""
    started = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - started) / count


def interleaved_medians(steps: dict, rounds: int, seconds: float) -> dict:
    """Median seconds per step of each of ``steps`` (key: step function, already
    traced) over ``rounds`` rounds, each step timed for about ``seconds`` once a
    round, so that a busy spell of the machine falls on all of them alike."""
    counts = {key: max(2, round(seconds / time_steps(step, 2))) for key, step in steps.items()}
    samples = {key: [] for key in steps}
    for _ in range(rounds):
        for key, step in steps.items():
            samples[key].append(time_steps(step, counts[key]))
    return {key: statistics.median(times) for key, times in samples.items()}


def measure(
    shape_name: str,
    rounds: int,
    seconds: float,
    with_torch: bool,
    peak: float,
    precision: str = "float32",
):
    shape = SHAPES[shape_name]
    batch, steps, features, units = shape
    runners = contenders(shape, with_torch, precision)
    for step, _ in runners.values():  # warm up: tracing, XLA
        for _ in range(3):
            step()
    medians = interleaved_medians(
        {name: step for name, (step, _) in runners.items()}, rounds, seconds
    )
    results = []
    for name, (_, gates) in runners.items():
        per_step = medians[name]
        rate = step_flops(batch, steps, features, units, gates) / per_step / 1e9
        results.append(
            Result(name, shape_name, 1e3 * per_step, batch * steps / per_step, rate, rate / peak)
        )
    return results


def report(results: list[Result], peak: float) -> str:
    lines = [f"matrix-product peak: {peak:.0f} GFLOP/s", ""]
    for shape_name in dict.fromkeys(r.shape for r in results):
        batch, steps, features, units = SHAPES[shape_name]
        rows = [r for r in results if r.shape == shape_name]
        by_name = {r.contender: r for r in rows}
        keras_ms = min(r.ms_per_step for r in rows if r.contender.startswith("keras."))
        torch_ms = by_name["torch.nn.LSTM"].ms_per_step if "torch.nn.LSTM" in by_name else None
        lines.append(
            f"{shape_name}: batch {batch}, {steps} steps, {features} inputs, {units} units"
        )
        header = f"  {'contender':<22}{'ms/step':>9}{'tokens/s':>10}{'GFLOP/s':>9}{'of peak':>9}"
        header += f"{'vs keras':>10}" + (f"{'vs torch':>10}" if torch_ms else "")
        lines.append(header)
        for r in rows:
            line = f"  {r.contender:<22}{r.ms_per_step:>9.2f}{r.tokens_per_s:>10.0f}"
            line += f"{r.gflop_per_s:>9.1f}{r.peak_fraction:>9.0%}"
            line += f"{keras_ms / r.ms_per_step:>9.2f}x"
            if torch_ms:
                line += f"{torch_ms / r.ms_per_step:>9.2f}x"
            lines.append(line)
        lines.append("")
    lines.append("vs keras, vs torch: the peer's time over this contender's (above 1: faster);")
    lines.append("keras: the faster of keras.LSTM with and without XLA.")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    versions = f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    versions += f", TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}"
    return f"{cpu}, {os.cpu_count()} logical CPUs; {versions}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=SHAPES, action="append", help="default: all")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=0.5, help="per contender per round")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="dtype policy of the TensorFlow contenders",
    )
    args = parser.parse_args(argv)

    with_torch = not args.no_torch
    if with_torch:
        try:
            import torch

            torch_version = torch.__version__
        except ImportError:
            print("PyTorch is not installed (pip install torch==2.13.0); leaving it out")
            with_torch, torch_version = False, None
    else:
        torch_version = None
    print(machine() + (f", PyTorch {torch_version}" if with_torch else ""))
    if args.precision != "float32":
        print(f"TensorFlow contenders in {args.precision}; PyTorch and the peak in float32")
    peak = matmul_peak(with_torch=with_torch)
    results = []
    for shape_name in args.shape or list(SHAPES):
        results += measure(shape_name, args.rounds, args.seconds, with_torch, peak, args.precision)
    print(report(results, peak))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            summary = {"peak_gflop_per_s": peak, "precision": args.precision}
            json.dump({**summary, "results": [asdict(r) for r in results]}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
