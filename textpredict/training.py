"""Training a language model and writing its model directory.

``train()`` is the whole pipeline: corpus files → vocabulary → windows → ``model.fit``
→ the best epoch by validation loss → held-out evaluation → model directory. The
directory is staged beside its target and renamed into place only at the end, so an
error or Ctrl-C never leaves a half-written model or damages an existing one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textpredict import __version__
from textpredict.data import split_data
from textpredict.distribute import (
    build_from_spec,
    check_strategy,
    clip_after_summing,
    is_chief,
    make_strategy,
    output_directory,
    parse_devices,
    split_each_batch,
)
from textpredict.errors import CorpusError, TextpredictError
from textpredict.evaluation import evaluate_text
from textpredict.metrics import PerplexityLogger
from textpredict.model import (
    DEFAULT_MODEL,
    ModelConfig,
    SavedModel,
    TokenCrossEntropy,
    build_language_model,
    check_choice,
    check_positive_int,
    load_model,
    resolve_model_path,
    write_json,
)
from textpredict.text import PAD_ID, Tokenizer, id_array, line_windows, stream_windows

SEQUENCES = ("lines", "stream")
OPTIMIZERS = ("adam", "sgd")


@dataclass
class TrainingConfig:
    """How a model is trained (stored in its config.json beside the ModelConfig)."""

    epochs: int = 8  # passes over the training text
    batch_size: int = 16  # sequences per update: small, because updates teach long cues
    seq_len: int = 64  # tokens per sequence at most: the span of backpropagation through time
    # "lines": each line from a fresh state, shuffled; "stream": the corpus as one text in
    # batch_size rows, the state carried from window to window (truncated BPTT)
    sequences: str = "lines"
    optimizer: str = "adam"  # "adam", or plain "sgd" as in Zaremba et al. 2014
    learning_rate: float = 5e-3  # step size of the first epochs
    lr_decay: float = 1.0  # the step size is multiplied by this every epoch ...
    constant_epochs: int = 0  # ... after this many epochs at the initial step size
    clipnorm: float | None = 1.0  # clip each weight's gradient to this norm (Keras's clipnorm)
    global_clipnorm: float | None = None  # or clip all gradients jointly (Pascanu et al. 2013)
    seed: int = 0  # seeds initialisation, dropout and shuffling: same seed, same model
    # "default": one device; "mirrored": this machine's GPUs (or `devices`); "multi-worker":
    # the cluster in TF_CONFIG. batch_size stays the global batch (textpredict.distribute).
    strategy: str = "default"
    devices: tuple[str, ...] | None = None  # for "mirrored": e.g. ("/gpu:0", "/gpu:1")

    def __post_init__(self):
        for name in ("epochs", "batch_size", "seq_len"):
            check_positive_int(name, getattr(self, name))
        check_choice("sequences", self.sequences, SEQUENCES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not isinstance(self.constant_epochs, int) or self.constant_epochs < 0:
            raise TextpredictError(
                f"constant_epochs must be a non-negative integer, got {self.constant_epochs!r}"
            )
        if not self.learning_rate > 0 or not 0 < self.lr_decay <= 1:
            raise TextpredictError("learning_rate must be positive and lr_decay in (0, 1]")
        clips = [c for c in (self.clipnorm, self.global_clipnorm) if c is not None]
        if len(clips) > 1 or not all(c > 0 for c in clips):
            raise TextpredictError("give one positive clipnorm or global_clipnorm, not both")
        self.devices = parse_devices(self.devices)
        check_strategy(self.strategy, self.devices)
        if self.strategy != "default" and self.sequences == "stream":
            raise TextpredictError(
                f"the {self.strategy} strategy trains lines, not a stream: a stream's state "
                "is carried per row, which replicas would split (use --sequences lines)"
            )

    def learning_rate_at(self, epoch: int) -> float:
        """The step size of an epoch (counted from 0): ``lr · decay^max(0, epoch + 1 − n)``."""
        return self.learning_rate * self.lr_decay ** max(0, epoch + 1 - self.constant_epochs)

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        kind = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[self.optimizer]
        return kind(
            self.learning_rate, clipnorm=self.clipnorm, global_clipnorm=self.global_clipnorm
        )


def train(
    corpus: Sequence[str | Path] | None = None,
    *,
    valid: Sequence[str | Path] | None = None,
    test: Sequence[str | Path] | None = None,
    model: str | Path = DEFAULT_MODEL,
    model_config: ModelConfig | None = None,
    training_config: TrainingConfig | None = None,
    overwrite: bool = False,
    verbose: int | str = "auto",
) -> SavedModel:
    """Trains a language model and writes its model directory.

    Args:
        corpus: text files or folders; the embedded default corpus when empty.
        valid, test: held-out files; without them a part of the corpus is held out.
        model: a name under ``saved_models/`` or a path.
        model_config, training_config: architecture and training settings.
        overwrite: replace an existing model of that name (only once training succeeded).
        verbose: Keras's ``fit`` verbosity (progress bar, one line an epoch, silent).

    Returns:
        The trained model, as ``load_model`` would return it; None on a multi-worker
        cluster's workers other than the chief, which write no model directory.
    """
    model_config = model_config or ModelConfig()
    config = training_config or TrainingConfig()
    target = resolve_model_path(model)
    chief = is_chief(config.strategy)
    if chief and target.exists() and not overwrite:  # fail before minutes of training
        raise TextpredictError(
            f"{target} already exists; choose another --model or pass --overwrite"
        )
    strategy = make_strategy(config.strategy, config.devices)  # before any other TF op
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    data = split_data(corpus, valid, test)
    tokenizer = Tokenizer.adapt(
        data.lines("train"), model_config.vocabulary_size, model_config.tokenization
    )
    train_batches = batches(tokenizer, data.lines("train"), config, shuffle=True)
    if train_batches.cardinality() == 0:
        raise CorpusError(
            f"the corpus is shorter than one training window ({window_tokens(config)} tokens); "
            "pass a larger corpus or a smaller --seq-len or --batch-size"
        )
    valid_batches = batches(tokenizer, data.lines("valid"), config, shuffle=False)
    if valid_batches.cardinality() == 0:
        raise CorpusError(
            f"the validation text is shorter than one window ({window_tokens(config)} tokens)"
        )
    with strategy.scope():  # the weights are mirrored on every replica
        network = compiled_network(model_config, config, tokenizer.vocabulary_size)
    build_from_spec(network, train_batches)
    stateful = config.sequences == "stream"
    schedule = []
    if config.lr_decay != 1:
        schedule = [keras.callbacks.LearningRateScheduler(lambda e, _: config.learning_rate_at(e))]
    started = time.perf_counter()
    with output_directory(target, overwrite, chief) as staging:
        history = network.fit(
            train_batches,
            validation_data=valid_batches,
            epochs=config.epochs,
            shuffle=False,  # tf.data shuffles, with the seed
            verbose=verbose,
            callbacks=[
                *([ResetStates()] if stateful else []),
                *schedule,
                EpochTimer(),
                PerplexityLogger(),
                keras.callbacks.ModelCheckpoint(
                    staging / "model.keras", monitor="val_loss", save_best_only=True
                ),
                keras.callbacks.TensorBoard(staging / "logs", profile_batch=0),
                keras.callbacks.TerminateOnNaN(),
            ],
        )
        seconds = time.perf_counter() - started
        losses = history.history.get("val_loss", [])
        if not (staging / "model.keras").is_file():  # TerminateOnNaN stopped the first epoch
            raise TextpredictError(
                "training diverged (the loss became NaN); try a lower --learning-rate"
            )
        best = keras.saving.load_model(staging / "model.keras", compile=False)
        if stateful:  # the saved model reads prompts of any batch size from a fresh state
            best = stateless_copy(best, model_config, tokenizer.vocabulary_size)
            best.save(staging / "model.keras")
        evaluation = {
            part: evaluate_text(
                best, model_config, tokenizer, data.lines(part), config.sequences, config.seq_len
            ).as_dict()
            for part in ("valid", "test")
        }
        tokenizer.save(staging / "vocabulary.txt")
        write_json(
            staging / "config.json",
            {
                "textpredict_version": __version__,
                "model": asdict(model_config),
                "training": asdict(config),
                "vocabulary_size": tokenizer.vocabulary_size,
                "data": data.describe(),
            },
        )
        write_json(
            staging / "metrics.json",
            {
                "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
                "best_epoch": int(np.argmin(losses)) + 1,
                "train_seconds": seconds,
                **evaluation,
            },
        )
    return load_model(target) if chief else None


def compiled_network(
    model_config: ModelConfig, config: TrainingConfig, vocabulary_size: int
) -> keras.Model:
    """The network ``train`` fits, compiled with its optimiser and the masked loss.

    For a stream it is stateful (truncated BPTT carries the state from batch to
    batch), so it is built for ``config.batch_size`` rows.
    """
    stateful = config.sequences == "stream"
    network = build_language_model(
        model_config,
        vocabulary_size,
        stateful=stateful,
        batch_size=config.batch_size if stateful else None,
        seed=config.seed,
    )
    # On one device Keras's own masked loss, which TokenCrossEntropy equals there.
    replicated = tf.distribute.get_strategy().num_replicas_in_sync > 1
    network.compile(
        optimizer=clip_after_summing(config.make_optimizer()),
        loss=TokenCrossEntropy()
        if replicated
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
    )
    return network


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds``, the wall time of the epoch with its validation, to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.started


class ResetStates(keras.callbacks.Callback):
    """Zeroes a stateful network's carried state wherever its text starts over: at the
    start of every epoch and of every validation pass."""

    def on_epoch_begin(self, epoch, logs=None):
        reset_states(self.model)

    def on_test_begin(self, logs=None):
        reset_states(self.model)


def reset_states(network: keras.Model) -> None:
    for layer in network.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def stateless_copy(network: keras.Model, config: ModelConfig, vocabulary_size: int):
    """The same weights in a network that starts every call from a zero state."""
    copy = build_language_model(config, vocabulary_size)
    copy.set_weights(network.get_weights())
    return copy


def window_tokens(config: TrainingConfig) -> int:
    """The fewest tokens that make one training batch."""
    if config.sequences == "stream":
        return config.batch_size * (config.seq_len + 1)
    return config.seq_len + 1


def batches(
    tokenizer: Tokenizer, lines: tf.data.Dataset, config: TrainingConfig, shuffle: bool
) -> tf.data.Dataset:
    """The ``(inputs, targets)`` batches of a text, cut as ``config.sequences`` says.

    On a cluster each worker takes its rows of every batch (``split_each_batch``).
    """
    if config.sequences == "lines":
        seed = config.seed if shuffle else None
        windows = line_windows(tokenizer, lines, config.seq_len, config.batch_size, seed)
        return split_each_batch(windows)
    ids = id_array(tokenizer, lines)
    windows = stream_windows(ids, config.seq_len, config.batch_size)
    return windows.prefetch(tf.data.AUTOTUNE)
