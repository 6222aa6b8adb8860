"""What training reads: the batches of every epoch, and the held-out batches.

Every batch is a pure function of the corpus, the configuration and the epoch, so
that a resumed run (``train(..., resume=True)``) reads exactly the batches an
uninterrupted one would.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import tensorflow as tf

from textpredict.distribute import split_each_batch
from textpredict.text import (
    Tokenizer,
    batch_rows,
    fit_input,
    id_array,
    line_rows,
    stream_windows,
    with_known_length,
)

if TYPE_CHECKING:
    from textpredict.training import TrainingConfig

SHUFFLE_BUFFER = 10_000  # rows: shuffling is local to this window of the corpus


def window_tokens(config: TrainingConfig) -> int:
    """The fewest tokens that make one training batch."""
    if config.sequences == "stream":
        return config.batch_size * (config.seq_len + 1)
    return config.seq_len + 1


class EpochBatches:
    """The training batches of every epoch, each a pure function of the seed and the
    epoch, so that a resumed run reads exactly the batches an uninterrupted one would.

    ``"lines"``: the rows of ``text.line_rows``, shuffled with the seed and bucketed by
    ``text.batch_rows``; ``"stream"``: the windows of ``text.stream_windows``, in order.

    * By default an epoch is one pass over the corpus, shuffled with the seed ``seed ·
      1000 + epoch``. The rows are cached in a file under ``cache`` (memory does not
      grow with the corpus) and counted once: every shuffle gives as many batches.
    * With ``config.steps_per_epoch`` (``S``) the corpus repeats endlessly, reshuffled
      on every pass, and epoch ``e`` is batches ``[e·S, (e+1)·S)`` of that stream, as
      Keras's ``steps_per_epoch`` means on a repeated dataset. Nothing is counted or
      cached, so a run on a large corpus starts at once.

    ``count`` is the number of batches an epoch (0: the corpus has not one batch).
    """

    def __init__(
        self, tokenizer: Tokenizer, lines: tf.data.Dataset, config: TrainingConfig, cache: Path
    ):
        self.config = config
        if config.sequences == "stream":
            ids = id_array(tokenizer, lines)
            self.windows = stream_windows(ids, config.seq_len, config.batch_size)
            self.count = int(self.windows.cardinality())
        elif config.steps_per_epoch:
            self.rows = line_rows(tokenizer, lines, config.seq_len)
            self.count = int(any(True for _ in self.one_pass(0).take(1)))  # any batch?
        else:
            self.rows = line_rows(tokenizer, lines, config.seq_len).cache(str(cache / "train"))
            # One pass, which also fills the cache.
            self.count = int(with_known_length(self.one_pass(0)).cardinality())
        if self.count and config.steps_per_epoch:
            self.count = config.steps_per_epoch

    def one_pass(self, number: int) -> tf.data.Dataset:
        """The batches of pass ``number`` (from 0) over the corpus."""
        if self.config.sequences == "stream":
            return self.windows
        rows = self.rows.shuffle(SHUFFLE_BUFFER, seed=self.config.seed * 1000 + number)
        return self._batches(rows)

    def endless(self) -> tf.data.Dataset:
        """Pass after pass over the corpus, each reshuffled (for ``steps_per_epoch``)."""
        if self.config.sequences == "stream":
            return self.windows.repeat()
        rows = self.rows.shuffle(SHUFFLE_BUFFER, seed=self.config.seed * 1000)
        return self._batches(rows.repeat())  # a new iterator replays the same passes

    def _batches(self, rows: tf.data.Dataset) -> tf.data.Dataset:
        return batch_rows(rows, self.config.seq_len, self.config.batch_size)

    def epoch(self, epoch: int, skip: int = 0) -> tf.data.Dataset:
        """The batches of ``epoch`` (from 0), without its first ``skip``."""
        if self.config.steps_per_epoch:
            batches = self.endless().skip(epoch * self.count + skip).take(self.count - skip)
        else:
            batches = self.one_pass(epoch).skip(skip)
        batches = batches.apply(tf.data.experimental.assert_cardinality(self.count - skip))
        return split_each_batch(fit_input(batches))


def held_out_batches(
    tokenizer: Tokenizer, lines: tf.data.Dataset, config: TrainingConfig, cache: Path
) -> tf.data.Dataset:
    """The validation batches, in order: read as the training text is, from a file cache."""
    if config.sequences == "lines":
        rows = line_rows(tokenizer, lines, config.seq_len).cache(str(cache))
        batches = with_known_length(batch_rows(rows, config.seq_len, config.batch_size))
    else:
        ids = id_array(tokenizer, lines)
        batches = stream_windows(ids, config.seq_len, config.batch_size)
    return split_each_batch(fit_input(batches))
