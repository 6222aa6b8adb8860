"""Evaluating a model on held-out text: perplexity and top-k accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from textpredict.data import DataSplit
from textpredict.errors import CorpusError, TextpredictError
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

#: Lines scored at once; also the rows a stream is read as by default. A stream's
#: rows each start from a fresh state, so 16 rows score 15 tokens without the text
#: before them, for a few times the speed of one row (`stream_rows=1`; the README's
#: Penn Treebank section measures both).
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
    stream_rows: int = EVALUATION_BATCH,
) -> Evaluation:
    """Scores text the way the model was trained to read it.

    ``sequences="lines"``: each line from a fresh state after ``<eos>``, every token a
    target; ``"stream"``: the text as one stream, state carried across windows, laid
    out as ``stream_rows`` contiguous rows, each from a fresh state (1: every token
    but the first is predicted from all the text before it, as Zaremba et al. score
    Penn Treebank).
    """
    if sequences == "lines":  # streamed, not held: held-out text may be large
        rows = line_rows(tokenizer, lines, seq_len)
        batches = batch_rows(rows, seq_len, EVALUATION_BATCH).prefetch(tf.data.AUTOTUNE)
        return evaluate_lines(network, batches)
    ids = id_array(tokenizer, lines)
    if len(ids) < 2:
        raise CorpusError("the evaluation text has fewer than two tokens")
    rows = min(stream_rows, len(ids) - 1)
    return evaluate_stream(stateful_copy(network, config, tokenizer, rows), ids, seq_len)


def evaluate(
    model: SavedModel,
    files: Sequence[str | Path] | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
    stream_rows: int | None = None,
) -> dict[str, Evaluation]:
    """Scores a model on given files, or on its own validation and test text.

    ``encoding`` and ``errors`` say how to read the given files (see ``split_data``);
    the model's own text is read as it was for training. ``stream_rows`` (for a model
    trained on a stream only) is the number of rows the text is read as; see
    ``evaluate_text``.

    Returns:
        ``{"file": ...}`` for given files, else ``{"valid": ..., "test": ...}``.
    """
    training = model.info.get("training", {})
    sequences = training.get("sequences", "stream")
    if stream_rows is not None and stream_rows < 1:
        raise ValueError(f"stream_rows must be at least 1. Received: {stream_rows}")
    if stream_rows is not None and sequences != "stream":
        raise TextpredictError(
            "--stream-rows applies to a model trained on a stream (--sequences stream); "
            f"{model.path} was trained on lines, which are each read from a fresh state"
        )
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
            sequences,
            training.get("seq_len", 64),
            EVALUATION_BATCH if stream_rows is None else stream_rows,
        )
        for name, lines in parts.items()
    }
