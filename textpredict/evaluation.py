"""Evaluating a saved model on held-out text: perplexity and top-k accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras

from textpredict.data import DataSplit
from textpredict.errors import CorpusError
from textpredict.metrics import Evaluation, evaluate_stream
from textpredict.model import ModelConfig, SavedModel, build_language_model
from textpredict.text import Tokenizer, corpus_files, id_array, read_lines


def stateful_copy(
    network: keras.Model, config: ModelConfig, tokenizer: Tokenizer, batch_size: int = 16
) -> keras.Model:
    """The same network with its state carried from call to call, for long streams."""
    copy = build_language_model(
        config, tokenizer.vocabulary_size, stateful=True, batch_size=batch_size
    )
    copy.set_weights(network.get_weights())
    return copy


def evaluate(model: SavedModel, files: Sequence[str | Path] | None = None) -> dict[str, Evaluation]:
    """Scores a model on given files, or on its own validation and test text.

    Returns:
        ``{"file": ...}`` for given files, else ``{"valid": ..., "test": ...}``.
    """
    seq_len = model.info.get("training", {}).get("seq_len", 64)
    if files:
        parts = {"file": read_lines(corpus_files(files))}
    else:
        split = DataSplit.from_description(model.info.get("data") or {})
        parts = {"valid": split.lines("valid"), "test": split.lines("test")}
    results = {}
    for name, lines in parts.items():
        ids = id_array(model.tokenizer, lines)
        if len(ids) < 2:
            raise CorpusError(f"the {name} text has fewer than two tokens")
        network = stateful_copy(model.network, model.config, model.tokenizer)
        results[name] = evaluate_stream(network, ids, seq_len)
    return results
