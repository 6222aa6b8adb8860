"""Training throughput on Penn Treebank: ``textpredict train --preset`` against PyTorch.

Both sides train the same network the same way: Zaremba et al.'s configuration from
``textpredict.presets`` (2 LSTM layers, embedding, a softmax over 10,002 words,
truncated BPTT with the state carried across batches, SGD with global-norm clipping)
on the same PTB windows. textpredict runs Keras's own training step, as ``textpredict
train`` does (op determinism on, as ``--seed`` promises); PyTorch runs the usual
hand-written loop with ``nn.LSTM``. Blocks of steps alternate between the two.

The output layer is timed on its own too (a dense layer to the vocabulary, the
cross-entropy, backward, update), since at 200 units it is most of a step.
``--keras-loss`` adds textpredict's step with Keras's
``SparseCategoricalCrossentropy(ignore_class=0)`` in place of its own loss
(``model.TokenCrossEntropy``, the same loss and gradients up to rounding).

    pip install torch==2.13.0
    python benchmarks/ptb_throughput.py [--preset zaremba-small] [--ptb ../shared/corpora/ptb]
    python benchmarks/ptb_throughput.py --keras-loss
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# What textpredict sets before TensorFlow loads, here before the peers import it too:
# every contender runs on the same TensorFlow kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras
import numpy as np
import tensorflow as tf

from textpredict.batches import EpochBatches
from textpredict.data import split_data
from textpredict.model import TokenCrossEntropy
from textpredict.presets import PRESETS
from textpredict.text import PAD_ID, Tokenizer, fit_input
from textpredict.training import compiled_network, reset_states

DEFAULT_PTB = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "ptb"
KERAS_LOSS = "textpredict, Keras's masked loss"


def ptb_windows(ptb: Path, preset) -> tuple[np.ndarray, np.ndarray, int]:
    """The preset's first training windows: inputs and targets ``(n, batch, T)``."""
    lines = split_data([ptb]).lines("train")
    tokenizer = Tokenizer.adapt(lines, preset.model.vocabulary_size, preset.model.tokenization)
    with tempfile.TemporaryDirectory() as cache:  # the first epoch, as train cuts it
        epoch = EpochBatches(tokenizer, lines, preset.training, Path(cache)).epoch(0)
        windows = list(epoch.take(400).as_numpy_iterator())
    return (
        np.stack([x for x, _ in windows]),
        np.stack([y for _, y in windows]),
        tokenizer.vocabulary_size,
    )


def textpredict_trainer(preset, vocabulary: int, inputs, targets, loss=None):
    """Runs ``n`` training steps of the preset's network with Keras's ``fit``
    (with ``loss`` in place of ``train``'s, when given)."""
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    network = compiled_network(preset.model, preset.training, vocabulary)
    if loss is not None:
        network.compile(optimizer=network.optimizer, loss=loss)
    # Read as `train` reads its epochs (see text.fit_input).
    dataset = fit_input(tf.data.Dataset.from_tensor_slices((inputs, targets)).repeat())

    def run(steps: int) -> float:
        reset_states(network)
        history = network.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        return history.history["loss"][-1]

    return run


def torch_trainer(preset, vocabulary: int, inputs, targets):
    """The same configuration as a plain PyTorch training loop."""
    import torch

    torch.manual_seed(0)
    m, t = preset.model, preset.training
    scale = m.init_scale

    class LanguageModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocabulary, m.embedding_dim)
            self.lstm = torch.nn.LSTM(
                m.embedding_dim, m.units, m.num_layers, batch_first=True, dropout=m.dropout
            )
            self.dropout = torch.nn.Dropout(m.dropout)
            self.logits = torch.nn.Linear(m.units, vocabulary)
            for weight in self.parameters():
                torch.nn.init.uniform_(weight, -scale, scale)
            if m.tie_embeddings:  # one matrix for both, as --tie-embeddings does
                self.logits.weight = self.embedding.weight

        def forward(self, ids, state):
            x = self.dropout(self.embedding(ids))
            x, state = self.lstm(x, state)
            return self.logits(self.dropout(x)), state

    model = LanguageModel()
    # Zaremba's loss: summed over the window, averaged over the batch; lr 1, clip 5.
    optimizer = torch.optim.SGD(model.parameters(), lr=t.learning_rate / t.seq_len)
    clip = t.global_clipnorm * t.seq_len
    x_all, y_all = torch.from_numpy(inputs).long(), torch.from_numpy(targets).long()

    def run(steps: int) -> float:
        state = None
        for i in range(steps):
            x, y = x_all[i % len(x_all)], y_all[i % len(y_all)]
            if state is not None:  # truncated BPTT: keep the values, drop the history
                state = tuple(s.detach() for s in state)
            logits, state = model(x, state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocabulary), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            (loss * t.seq_len).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        return float(loss.detach())

    return run


def output_layer_steps(preset, vocabulary: int, targets):
    """One training step of the output layer alone, for TensorFlow and PyTorch."""
    batch, steps, units = preset.training.batch_size, preset.training.seq_len, preset.model.units
    h = np.random.default_rng(0).normal(size=(batch, steps, units)).astype(np.float32)
    y = targets[0]
    dense = keras.layers.Dense(vocabulary)
    dense.build((None, units))
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = TokenCrossEntropy()  # the loss `textpredict train` minimises
    h_tf, y_tf = tf.constant(h), tf.constant(y)

    @tf.function
    def tf_step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y_tf, dense(h_tf))
        optimizer.apply(tape.gradient(loss, dense.trainable_variables), dense.trainable_variables)
        return loss

    runners = {"textpredict (Keras Dense + loss)": lambda: tf_step().numpy()}
    try:
        import torch
    except ImportError:
        return runners
    linear = torch.nn.Linear(units, vocabulary)
    torch_optimizer = torch.optim.SGD(linear.parameters(), lr=0.1)
    h_t, y_t = torch.from_numpy(h), torch.from_numpy(y).long()

    def torch_step():
        loss = torch.nn.functional.cross_entropy(linear(h_t).reshape(-1, vocabulary), y_t.ravel())
        torch_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch_optimizer.step()

    runners["PyTorch (Linear + cross_entropy)"] = torch_step
    return runners


def alternate(runners: dict, steps: int, rounds: int) -> dict[str, float]:
    """Median seconds per step of each runner, over ``rounds`` alternating blocks."""
    samples = {name: [] for name in runners}
    for run in runners.values():  # warm-up: tracing, XLA compilation
        run(min(steps, 5))
    for _ in range(rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run(steps)
            samples[name].append((time.perf_counter() - started) / steps)
    return {name: statistics.median(s) for name, s in samples.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=PRESETS, default="zaremba-small")
    parser.add_argument("--ptb", type=Path, default=DEFAULT_PTB, help="folder of PTB files")
    parser.add_argument("--steps", type=int, default=50, help="steps per block")
    parser.add_argument("--rounds", type=int, default=5, help="alternating blocks of each")
    parser.add_argument(
        "--keras-loss",
        action="store_true",
        help="also time textpredict's step with Keras's masked loss in place of its own",
    )
    args = parser.parse_args(argv)

    preset = PRESETS[args.preset]
    inputs, targets, vocabulary = ptb_windows(args.ptb, preset)
    tokens = preset.training.batch_size * preset.training.seq_len
    runners = {"textpredict train": textpredict_trainer(preset, vocabulary, inputs, targets)}
    try:
        runners["PyTorch nn.LSTM loop"] = torch_trainer(preset, vocabulary, inputs, targets)
    except ImportError:
        print("PyTorch is not installed (pip install torch==2.13.0); leaving it out")
    if args.keras_loss:  # the loss `train` used before TokenCrossEntropy
        masked = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
        runners[KERAS_LOSS] = textpredict_trainer(preset, vocabulary, inputs, targets, masked)
    print(f"{args.preset}: batch {preset.training.batch_size} x {preset.training.seq_len} steps")
    whole = alternate(runners, args.steps, args.rounds)
    for name, seconds in whole.items():
        print(f"  {name:<34}{1e3 * seconds:8.1f} ms/step {tokens / seconds:9.0f} tokens/s")
    mine = whole["textpredict train"]
    if "PyTorch nn.LSTM loop" in whole:
        print(f"  textpredict / PyTorch tokens/s: {whole['PyTorch nn.LSTM loop'] / mine:.2f}")
    if KERAS_LOSS in whole:
        print(f"  textpredict / with Keras's masked loss tokens/s: {whole[KERAS_LOSS] / mine:.3f}")

    layer = output_layer_steps(preset, vocabulary, targets)
    blocks = {
        name: (lambda n, step=step: [step() for _ in range(n)]) for name, step in layer.items()
    }
    alone = alternate(blocks, args.steps, args.rounds)
    print("output layer alone (dense to the vocabulary, loss, backward, update):")
    for (name, seconds), step in zip(alone.items(), whole.values(), strict=False):
        print(f"  {name:<34}{1e3 * seconds:8.1f} ms/step  ({seconds / step:.0%} of its whole step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
