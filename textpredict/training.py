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
from textpredict.errors import CorpusError, TextpredictError
from textpredict.evaluation import evaluate_text
from textpredict.metrics import PerplexityLogger
from textpredict.model import (
    DEFAULT_MODEL,
    ModelConfig,
    SavedModel,
    build_language_model,
    check_choice,
    check_positive_int,
    load_model,
    resolve_model_path,
    staging_directory,
    write_json,
)
from textpredict.text import PAD_ID, Tokenizer, line_windows, token_ids, training_windows

SEQUENCES = ("lines", "stream")


@dataclass
class TrainingConfig:
    """How a model is trained (stored in its config.json beside the ModelConfig)."""

    epochs: int = 8  # passes over the training text
    batch_size: int = 16  # sequences per update: small, because updates teach long cues
    seq_len: int = 64  # tokens per sequence at most: the span of backpropagation through time
    sequences: str = "lines"  # "lines": each line from a fresh state; "stream": one text
    learning_rate: float = 5e-3  # Adam step size

    clipnorm: float = 1.0  # global gradient norm clip (Pascanu et al. 2013)
    seed: int = 0  # seeds initialisation, dropout and shuffling: same seed, same model

    def __post_init__(self):
        for name in ("epochs", "batch_size", "seq_len"):
            check_positive_int(name, getattr(self, name))
        check_choice("sequences", self.sequences, SEQUENCES)
        if not self.learning_rate > 0 or not self.clipnorm > 0:
            raise TextpredictError("learning_rate and clipnorm must be positive")


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
        The trained model, as ``load_model`` would return it.
    """
    model_config = model_config or ModelConfig()
    config = training_config or TrainingConfig()
    target = resolve_model_path(model)
    if target.exists() and not overwrite:  # fail before minutes of training, not after
        raise TextpredictError(
            f"{target} already exists; choose another --model or pass --overwrite"
        )
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    data = split_data(corpus, valid, test)
    tokenizer = Tokenizer.adapt(data.lines("train"), model_config.vocabulary_size)
    train_batches = batches(tokenizer, data.lines("train"), config, shuffle=True)
    if train_batches.cardinality() == 0:
        raise CorpusError(
            f"the corpus is shorter than one training window ({config.seq_len + 1} tokens); "
            "pass a larger corpus or a smaller --seq-len"
        )
    valid_batches = batches(tokenizer, data.lines("valid"), config, shuffle=False)
    if valid_batches.cardinality() == 0:
        raise CorpusError(
            f"the validation text is shorter than one window ({config.seq_len + 1} tokens)"
        )
    network = build_language_model(model_config, tokenizer.vocabulary_size, seed=config.seed)
    network.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
    )
    started = time.perf_counter()
    with staging_directory(target, overwrite) as staging:
        history = network.fit(
            train_batches,
            validation_data=valid_batches,
            epochs=config.epochs,
            shuffle=False,  # tf.data shuffles, with the seed
            verbose=verbose,
            callbacks=[
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
    return load_model(target)


def batches(
    tokenizer: Tokenizer, lines: tf.data.Dataset, config: TrainingConfig, shuffle: bool
) -> tf.data.Dataset:
    """The ``(inputs, targets)`` batches of a text, cut as ``config.sequences`` says."""
    seed = config.seed if shuffle else None
    if config.sequences == "lines":
        return line_windows(tokenizer, lines, config.seq_len, config.batch_size, seed)
    ids = token_ids(tokenizer, lines)
    return training_windows(ids, config.seq_len, config.batch_size, seed)
