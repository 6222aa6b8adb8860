"""Evaluating a model on held-out text: perplexity and top-k accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from textpredict.data import DataSplit
from textpredict.errors import CorpusError
from textpredict.metrics import Evaluation, evaluate_lines, evaluate_stream
from textpredict.model import ModelConfig, SavedModel, build_language_model
from textpredict.text import (
    Tokenizer,
    batch_rows,
    corpus_files,
    id_array,
    line_rows,
    read_lines,
)

EVALUATION_BATCH = 16


def stateful_copy(
    network: keras.Model, config: ModelConfig, tokenizer: Tokenizer, batch_size: int
) -> keras.Model:
    """The same network with its state carried from call to call, for long streams."""
    copy = build_language_model(
        config, tokenizer.vocabulary_size, stateful=True, batch_size=batch_size
    )
    copy.set_weights(network.get_weights())
    return copy


def evaluate_text(
    network: keras.Model,
    config: ModelConfig,
    tokenizer: Tokenizer,
    lines: tf.data.Dataset,
    sequences: str,
    seq_len: int,
) -> Evaluation:
    """Scores text the way the model was trained to read it.

    ``sequences="lines"``: each line from a fresh state after ``<eos>``, every token a
    target; ``"stream"``: the text as one stream, state carried across windows.
    """
    if sequences == "lines":  # streamed, not held: held-out text may be large
        rows = line_rows(tokenizer, lines, seq_len)
        batches = batch_rows(rows, seq_len, EVALUATION_BATCH).prefetch(tf.data.AUTOTUNE)
        return evaluate_lines(network, batches)
    ids = id_array(tokenizer, lines)
    if len(ids) < 2:
        raise CorpusError("the evaluation text has fewer than two tokens")
    rows = min(EVALUATION_BATCH, len(ids) - 1)
    return evaluate_stream(stateful_copy(network, config, tokenizer, rows), ids, seq_len)


def evaluate(
    model: SavedModel,
    files: Sequence[str | Path] | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
) -> dict[str, Evaluation]:
    """Scores a model on given files, or on its own validation and test text.

    ``encoding`` and ``errors`` say how to read the given files (see ``split_data``);
    the model's own text is read as it was for training.

    Returns:
        ``{"file": ...}`` for given files, else ``{"valid": ..., "test": ...}``.
    """
    training = model.info.get("training", {})
    if files:
        checked = corpus_files(files, encoding, errors)
        parts = {"file": read_lines(checked, encoding=encoding, errors=errors)}
    else:
        split = DataSplit.from_description(model.info.get("data") or {})
        parts = {"valid": split.lines("valid"), "test": split.lines("test")}
    return {
        name: evaluate_text(
            model.network,
            model.config,
            model.tokenizer,
            lines,
            training.get("sequences", "stream"),
            training.get("seq_len", 64),
        )
        for name, lines in parts.items()
    }
