"""Perplexity and top-k accuracy, with the definitions papers use.

Perplexity is ``exp(mean cross-entropy per target token)`` over a whole held-out
stream, ``<eos>`` counted as a token, the recurrent state carried from each window
to the next (Mikolov 2012; Zaremba et al. 2014), so numbers compare with papers.

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

from textpredict.text import PAD_ID, SPECIAL_IDS

TOP_K = (1, 3, 5)


@keras.saving.register_keras_serializable(package="textpredict")
class Perplexity(keras.metrics.Mean):
    """``exp`` of the mean cross-entropy per target token, for ``model.fit`` logs."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=True
        )
        super().update_state(cross_entropy, sample_weight=sample_weight)

    def result(self):
        return keras.ops.exp(super().result())


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

    @tf.function(reduce_retracing=True)
    def score(x, y):
        logits = tf.cast(stateful_network(x, training=False), tf.float32)  # (batch, time, vocab)
        weight = tf.cast(tf.not_equal(y, PAD_ID), tf.float32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        # Rank only the words a user may be offered (see module docstring).
        banned = tf.reduce_sum(tf.one_hot(SPECIAL_IDS, tf.shape(logits)[-1]), axis=0)
        offerable = tf.reshape(logits - 1e9 * banned, [-1, tf.shape(logits)[-1]])
        hits = [
            tf.reduce_sum(
                tf.cast(tf.math.in_top_k(tf.reshape(y, [-1]), offerable, k), tf.float32)
                * tf.reshape(weight, [-1])
            )
            for k in ks
        ]
        return tf.reduce_sum(nll * weight), tf.stack(hits)

    total_nll, total_hits = 0.0, np.zeros(len(ks))
    for start in range(0, row, seq_len):
        nll, hits = score(inputs[:, start : start + seq_len], labels[:, start : start + seq_len])
        total_nll += float(nll)
        total_hits += hits.numpy()
    return Evaluation(
        tokens=targets,
        cross_entropy=total_nll / targets,
        top_k_accuracy={k: float(h) / targets for k, h in zip(ks, total_hits, strict=True)},
    )
