"""A loaded model, ready to rank the next word of a text or to continue it.

A prompt is read as if it began a sentence: its ids are preceded by ``<eos>``, the
token that precedes every sentence in training. That gives the model a defined
first input even for a one-word prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from textpredict.errors import TextpredictError
from textpredict.model import SavedModel
from textpredict.sampling import Sampler, top_k_words
from textpredict.text import EOS, SPECIAL_IDS


class Predictor:
    """Next-word probabilities from a saved model.

    Example:
        >>> predictor = Predictor(load_model("default"))
        >>> predictor.rank("the clouds are in the", k=3)
        [('sky', 0.97), ...]
    """

    #: Eagerly, the time loop runs step by step in Python (some milliseconds a token),
    #: so an input longer than this is read by the traced graph even when ``traced``
    #: is off: tracing costs about 0.3 s, a 10,000-word prompt eagerly half a minute.
    EAGER_TOKENS = 256

    def __init__(self, model: SavedModel, traced: bool = True):
        """``traced``: run the network as one graph, traced on the first call (about
        0.3 s), which makes every later call several times faster; a one-shot
        completion of a short prompt is quicker without it."""
        self.model = model
        self.tokenizer = model.tokenizer
        self.traced = traced
        network = model.network

        def last_logits(ids):
            return tf.cast(network(ids, training=False)[:, -1, :], tf.float32)  # (1, vocab)

        # One trace serves every prompt length: the graph is built once per process,
        # so each completion in the REPL is a single graph call.
        signature = [tf.TensorSpec([1, None], tf.int32)]
        self._eager_logits = last_logits
        self._traced_logits = tf.function(last_logits, input_signature=signature)

    def encode(self, text: str) -> list[int]:
        """The ids the model reads for a prompt; an error if it has no words."""
        try:  # a shell passes bytes that are not UTF-8 on as lone surrogates
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise TextpredictError("the prompt is not UTF-8 text") from None
        ids = self.tokenizer.tokenize(text)
        if not ids:
            raise TextpredictError("the prompt has no words")
        return [self.tokenizer.eos_id, *ids]

    def next_probabilities(self, ids: Sequence[int]) -> np.ndarray:
        """p(next word | ids) over the whole vocabulary, float64, summing to 1."""
        eager = not self.traced and len(ids) <= self.EAGER_TOKENS
        last_logits = self._eager_logits if eager else self._traced_logits
        logits = last_logits(tf.constant([list(ids)], tf.int32))[0].numpy().astype(np.float64)
        logits -= logits.max()
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum()

    def rank(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The k most likely next words with the model's probabilities, best first."""
        probabilities = self.next_probabilities(self.encode(text))
        return [
            (self.tokenizer.id_to_token(i), p)
            for i, p in top_k_words(probabilities, k, banned_ids=SPECIAL_IDS)
        ]

    def continue_text(
        self, text: str, num_words: int, sampler: Sampler, seed: int | None = None
    ) -> list[str]:
        """The next ``num_words`` tokens chosen by ``sampler`` (``<eos>`` included)."""
        generated = sampler.generate(
            self.next_probabilities,
            self.encode(text),
            num_words,
            np.random.default_rng(seed),
            banned_ids=SPECIAL_IDS,
        )
        return [self.tokenizer.id_to_token(i) for i in generated]


def render(words: Sequence[str]) -> str:
    """Generated tokens as text: ``<eos>`` shown as the period it stands for."""
    return " ".join("." if w == EOS else w for w in words)
