"""Perplexity and top-k accuracy, with the definitions papers use.

Perplexity is ``exp(mean cross-entropy per target token)`` over a whole held-out
text, ``<eos>`` counted as a token (Mikolov 2012; Zaremba et al. 2014). A model trained
on a continuous stream is scored on the stream, laid out in rows whose state is carried
from each window to the next: one row as in the papers, or several side by side, each
from a fresh state (``evaluate_stream``). A model trained line by line is scored line
by line, each line read from a fresh state after ``<eos>``, as ``complete`` reads a
prompt.

Top-k accuracy (a keyboard's "recall"): the share of target tokens among the k words
the model ranks highest *of those it may offer* — padding and ``[UNK]`` are never
suggested, so an ``[UNK]`` target always counts as a miss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from textpredict.errors import CorpusError
from textpredict.text import PAD_ID, SPECIAL_IDS

TOP_K = (1, 3, 5)
#: The name of ``TokenMeanCrossEntropy`` in Keras's logs.
TOKEN_MEAN_LOSS = "token_mean_loss"


@keras.saving.register_keras_serializable(package="textpredict")
class TokenMeanCrossEntropy(keras.metrics.Mean):
    """Mean cross-entropy per real target token over all batches so far:

        H = Σ_batches Σ_tokens −log p(target) / Σ_batches (number of real targets),

    padding (id 0) left out. Keras averages the loss over an epoch per *batch* (each
    weighted by its rows), so a batch of short lines counts as much as one of long
    lines; this is the per-token mean that perplexity is defined on. It is Keras's
    weighted ``Mean`` of every token's cross-entropy, weight 0 for padding; the
    tokens are flattened first, since ``Mean`` would average each row over its
    (batch-dependent) width before weighting it.
    """

    def __init__(self, name=TOKEN_MEAN_LOSS, dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.reshape(keras.ops.cast(y_true, "int32"), [-1])
        logits = keras.ops.cast(y_pred, "float32")
        logits = keras.ops.reshape(logits, [-1, keras.ops.shape(logits)[-1]])
        nll = keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
        real = keras.ops.cast(keras.ops.not_equal(y_true, PAD_ID), "float32")
        super().update_state(nll, sample_weight=real)


class PerplexityLogger(keras.callbacks.Callback):
    """Makes each epoch's ``loss`` (and ``val_loss``) the mean per token, and adds
    ``perplexity = exp(loss)`` (and its validation twin).

    A network trained on lines is compiled with ``TokenMeanCrossEntropy`` as a
    metric; its result replaces Keras's per-batch average as the epoch's loss, so the
    validation loss that picks the best epoch, the progress bar, the history and
    TensorBoard all show the per-token mean that the final evaluation reports. Batch
    by batch, the progress bar keeps Keras's running loss. Put it before the
    callbacks that read the logs.
    """

    def on_train_batch_end(self, batch, logs=None):
        (logs or {}).pop(TOKEN_MEAN_LOSS, None)  # the same number as the loss shown

    def on_test_batch_end(self, batch, logs=None):
        (logs or {}).pop(TOKEN_MEAN_LOSS, None)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix in ("", "val_"):
            if prefix + TOKEN_MEAN_LOSS in logs:
                logs[prefix + "loss"] = logs.pop(prefix + TOKEN_MEAN_LOSS)
            if prefix + "loss" in logs:
                logs[prefix + "perplexity"] = epoch_perplexity(logs[prefix + "loss"])


#: The largest float32: TensorBoard stores scalars as float32 and refuses larger ones.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def epoch_perplexity(loss: float) -> float:
    """``exp(loss)``, capped at the largest float32 (reached by a loss of about 88.7
    nats, where a run has all but diverged) so that logging it cannot fail."""
    return min(math.exp(min(loss, 700.0)), FLOAT32_MAX)


@dataclass
class Evaluation:
    """What ``evaluate_stream`` measured."""

    tokens: int  # target tokens scored
    cross_entropy: float  # mean, in nats per token
    top_k_accuracy: dict[int, float] = field(default_factory=dict)

    @property
    def perplexity(self) -> float:
        return math.exp(self.cross_entropy)

    def as_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "cross_entropy": self.cross_entropy,
            "perplexity": self.perplexity,
            **{f"top{k}_accuracy": v for k, v in self.top_k_accuracy.items()},
        }


def score_batch(logits, labels, ks=TOP_K):
    """Summed cross-entropy and top-k hits of one batch; padding targets left out.

    Top-k ranks only the words a user may be offered (see the module docstring).
    """
    logits = tf.cast(logits, tf.float32)  # (batch, time, vocab)
    vocabulary = tf.shape(logits)[-1]
    weight = tf.reshape(tf.cast(tf.not_equal(labels, PAD_ID), tf.float32), [-1])
    labels = tf.reshape(labels, [-1])
    logits = tf.reshape(logits, [-1, vocabulary])
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    banned = tf.reduce_sum(tf.one_hot(SPECIAL_IDS, vocabulary), axis=0)
    offerable = logits - 1e9 * banned
    hits = [
        tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, offerable, k), tf.float32) * weight)
        for k in ks
    ]
    return tf.reduce_sum(nll * weight), tf.stack(hits), tf.reduce_sum(weight)


class _Totals:
    """Running sums of ``score_batch`` results."""

    def __init__(self, ks):
        self.ks, self.nll, self.hits, self.tokens = ks, 0.0, np.zeros(len(ks)), 0

    def add(self, nll, hits, tokens):
        self.nll += float(nll)
        self.hits += hits.numpy()
        self.tokens += int(tokens)

    def result(self) -> Evaluation:
        if self.tokens < 1:
            raise CorpusError("the evaluation text has no words")
        return Evaluation(
            tokens=self.tokens,
            cross_entropy=self.nll / self.tokens,
            top_k_accuracy={k: h / self.tokens for k, h in zip(self.ks, self.hits, strict=True)},
        )


def evaluate_lines(network: keras.Model, batches: tf.data.Dataset, ks=TOP_K) -> Evaluation:
    """Scores every target of ``(inputs, targets)`` batches, each row from a fresh state."""
    score = tf.function(
        lambda x, y: score_batch(network(x, training=False), y, ks), reduce_retracing=True
    )
    totals = _Totals(ks)
    for inputs, targets in batches:
        totals.add(*score(inputs, targets))
    return totals.result()


def evaluate_stream(
    stateful_network: keras.Model, ids: np.ndarray, seq_len: int, ks=TOP_K
) -> Evaluation:
    """Scores every next-token prediction of an id stream.

    The stream is laid out as ``batch`` contiguous rows (the batch size the stateful
    network was built with), the last row padded; windows of ``seq_len`` columns are
    fed in order so each row's state flows through the whole row.

    Args:
        stateful_network: ids → logits, built with ``stateful=True``, states zero.
        ids: the stream, shape ``(n,)``; its ``n - 1`` next-token predictions are scored.
        seq_len: columns a call.
        ks: the k of each top-k accuracy.
    """
    batch = stateful_network.inputs[0].shape[0]
    ids = np.asarray(ids, np.int32)
    targets = len(ids) - 1
    if targets < 1:
        raise ValueError("the evaluation text needs at least two tokens")
    row = -(-targets // batch)
    inputs = np.full(batch * row, PAD_ID, np.int32)
    labels = np.full(batch * row, PAD_ID, np.int32)
    inputs[:targets], labels[:targets] = ids[:-1], ids[1:]
    inputs, labels = inputs.reshape(batch, row), labels.reshape(batch, row)

    score = tf.function(
        lambda x, y: score_batch(stateful_network(x, training=False), y, ks),
        reduce_retracing=True,
    )
    totals = _Totals(ks)
    for start in range(0, row, seq_len):
        totals.add(*score(inputs[:, start : start + seq_len], labels[:, start : start + seq_len]))
    return totals.result()
