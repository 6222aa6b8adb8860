"""The long-range benchmark: how far back can each cell carry a cue?

Every example is one line with a cue word and, a controlled number of tokens
later, the word the cue determines, with neutral filler sentences between:

    country_language  i grew up in france . <filler> now i speak fluent french .
    number_verb       the dogs , <filler> , are hungry .
    gender_pronoun    my aunt came home . <filler> later she called me .

Each cell is trained from scratch on the same lines, with the same parameter
budget (units chosen per cell so the recurrent layers have about as many weights
as the LSTM's) and the same number of updates. Held-out examples are then scored
per distance bucket: top-1 accuracy on the determined word, beside chance (one
over the number of possible answers) and a unigram baseline (always the answer
most frequent in training).
"""

import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from textpredict.default_corpus import COUNTRY_LANGUAGE, PRONOUNS, neutral_filler
from textpredict.layers import Recurrent
from textpredict.model import ModelConfig, build_language_model
from textpredict.text import PAD_ID, SPECIAL_IDS, Tokenizer, line_windows

KINDS = ("country_language", "number_verb", "gender_pronoun")

# Eight countries with eight different languages: enough to rule out guessing, few
# enough that every pairing is seen often within the update budget.
COUNTRIES = ("france", "germany", "italy", "spain", "japan", "russia", "greece", "turkey")
_NOUNS = (("dog", "dogs"), ("cat", "cats"), ("child", "children"), ("teacher", "teachers"))
_NOUNS += (("bird", "birds"), ("farmer", "farmers"), ("horse", "horses"), ("doctor", "doctors"))
# One verb pair, so the number alone decides the word (chance is one half).
_VERBS = (("is", "are"),)
_VERB_ENDINGS = ("hungry .", "tired today .", "very happy .", "asleep .", "a good friend .")
_PEOPLE = {
    "female": ("my aunt", "my sister", "anna", "maria", "my mother", "my grandmother"),
    "male": ("my uncle", "my brother", "peter", "tom", "my father", "my grandfather"),
}
_GENDER_LEADS = ("later", "then", "at night", "after that")
_GENDER_ENDINGS = ("called me .", "was very happy .", "went to sleep .", "read a book .")


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run (the defaults fit 20 minutes on a 2-core CPU)."""

    buckets: tuple[tuple[int, int], ...] = ((6, 9), (10, 19), (20, 39), (40, 79), (80, 119))
    train_examples: int = 6000  # training lines, all kinds and buckets mixed
    # Share of the training lines in each bucket: short gaps teach the associations,
    # long ones that they must be held. Test lines are spread evenly.
    train_mix: tuple[float, ...] = (0.4, 0.25, 0.15, 0.1, 0.1)
    test_examples: int = 60  # per kind and bucket
    lstm_units: int = 128  # the parameter budget: an LSTM of this size
    embedding_dim: int = 64
    batch_size: int = 32
    updates: int = 4000  # training steps, the same for every cell
    learning_rate: float = 5e-3
    seed: int = 0


QUICK = Settings(
    buckets=((6, 9), (10, 19)),
    train_mix=(0.5, 0.5),
    train_examples=120,
    test_examples=6,
    lstm_units=8,
    embedding_dim=8,
    batch_size=8,
    updates=6,
)


@dataclass(frozen=True)
class Example:
    kind: str
    tokens: tuple[str, ...]
    target: int  # index of the determined word
    distance: int  # target index minus cue index

    @property
    def answer(self) -> str:
        return self.tokens[self.target]


def make_example(rng: random.Random, kind: str, distance: int) -> Example:
    """One line of `kind` whose cue → target distance is `distance` or up to 2 less."""
    if kind == "country_language":
        country = rng.choice(COUNTRIES)
        head = ["i", "grew", "up", "in", country, "."]
        middle = neutral_filler(rng, max(0, distance - 6))
        tokens = [*head, *middle, "now", "i", "speak", "fluent", COUNTRY_LANGUAGE[country], "."]
        cue, target = 4, len(tokens) - 2
    elif kind == "number_verb":
        noun, verb = rng.choice(_NOUNS), rng.choice(_VERBS)
        plural = rng.random() < 0.5
        # Sentence ends would close the subject's clause; commas keep it open.
        middle = [w if w != "." else "," for w in neutral_filler(rng, max(0, distance - 3))]
        tokens = ["the", noun[plural], ",", *middle, ",", verb[plural]]
        tokens += rng.choice(_VERB_ENDINGS).split()
        cue, target = 1, len(middle) + 4
    elif kind == "gender_pronoun":
        gender = rng.choice(tuple(_PEOPLE))
        person = rng.choice(_PEOPLE[gender]).split()
        lead = rng.choice(_GENDER_LEADS).split()
        head = [*person, "came", "home", "."]
        middle = neutral_filler(rng, max(0, distance - 4 - len(lead)))
        tokens = [*head, *middle, *lead, PRONOUNS[gender][0], *rng.choice(_GENDER_ENDINGS).split()]
        cue, target = len(person) - 1, len(head) + len(middle) + len(lead)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return Example(kind, tuple(tokens), target, target - cue)


def answers(kind: str) -> tuple[str, ...]:
    """Every word an example of `kind` can have as its answer."""
    if kind == "country_language":
        return tuple(COUNTRY_LANGUAGE[country] for country in COUNTRIES)
    if kind == "number_verb":
        return tuple(w for pair in _VERBS for w in pair)
    return tuple(p for p, _ in PRONOUNS.values())


def make_examples(
    settings: Settings, counts: tuple[int, ...], seed: int
) -> list[tuple[int, Example]]:
    """`(bucket index, example)` pairs: `counts[b]` for every kind in bucket `b`, the
    distance drawn uniformly from the bucket's range."""
    rng = random.Random(seed)
    return [
        (bucket, make_example(rng, kind, rng.randint(low, high)))
        for kind in KINDS
        for bucket, (low, high) in enumerate(settings.buckets)
        for _ in range(counts[bucket])
    ]


def units_for_budget(cell: str, budget: int, input_dim: int) -> int:
    """The units at which `cell` has about `budget` recurrent-layer weights.

    Weights of a cell with g gate blocks: g · (units · (input_dim + units) + units)
    (plus 3 · units for peepholes, or g · units for the GRU's recurrent bias).
    """
    gates = {"lstm": 4, "peephole": 4, "cifg": 3, "gru": 3, "rnn": 1}[cell]
    extra = {"peephole": 3, "gru": gates}.get(cell, 0)
    # g·u² + (g·(input_dim + 1) + extra)·u − budget = 0
    b = gates * (input_dim + 1) + extra
    return max(1, round((-b + math.sqrt(b * b + 4 * gates * budget)) / (2 * gates)))


def recurrent_weights(network: keras.Model) -> int:
    """Number of weights in the network's recurrent layers."""
    return sum(
        int(np.prod(w.shape))
        for layer in network.layers
        if isinstance(layer, Recurrent)
        for w in layer.weights
    )


@dataclass(frozen=True)
class CellResult:
    cell: str
    units: int
    weights: int
    seconds: float
    accuracy: dict[str, list[float]]  # kind → top-1 accuracy per bucket


def train_and_score(
    cell: str,
    settings: Settings,
    tokenizer: Tokenizer,
    train_lines: list[str],
    tests: list[tuple[int, Example]],
) -> CellResult:
    """Trains one cell for `settings.updates` steps and scores it on `tests`."""
    lstm_weights = 4 * (settings.lstm_units * (settings.embedding_dim + settings.lstm_units + 1))
    units = units_for_budget(cell, lstm_weights, settings.embedding_dim)
    config = ModelConfig(
        cell=cell,
        units=units,
        embedding_dim=settings.embedding_dim,
        vocabulary_size=tokenizer.vocabulary_size,
        dropout=0.0,
    )
    keras.utils.set_random_seed(settings.seed)
    network = build_language_model(config, tokenizer.vocabulary_size, seed=settings.seed)
    network.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate, clipnorm=1.0),
        # Keras's masked loss, not `train`'s TokenCrossEntropy: the two agree only to
        # rounding on padded lines, and over these runs' Adam updates that is enough to
        # end elsewhere; results/long_range.txt was recorded with this one.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
    )
    lines = tf.data.Dataset.from_tensor_slices(train_lines)
    seq_len = max(len(line.split()) for line in train_lines) + 1
    batches = line_windows(tokenizer, lines, seq_len, settings.batch_size, settings.seed)
    started = time.perf_counter()
    network.fit(
        batches.repeat(), steps_per_epoch=settings.updates, epochs=1, shuffle=False, verbose=0
    )
    seconds = time.perf_counter() - started
    correct = _top1_correct(network, tokenizer, [ex for _, ex in tests])
    hits: dict[tuple[str, int], list[bool]] = {}
    for ok, (bucket, ex) in zip(correct, tests, strict=True):
        hits.setdefault((ex.kind, bucket), []).append(ok)
    accuracy = {
        kind: [float(np.mean(hits[kind, b])) for b in range(len(settings.buckets))]
        for kind in KINDS
    }
    return CellResult(cell, units, recurrent_weights(network), seconds, accuracy)


def _top1_correct(network, tokenizer: Tokenizer, tests: list[Example]) -> list[bool]:
    """Whether the top-ranked word after each test prompt is the example's answer."""
    prompts = [
        [tokenizer.eos_id, *tokenizer.tokenize(" ".join(ex.tokens[: ex.target]))] for ex in tests
    ]
    width = max(len(p) for p in prompts)
    ids = np.full((len(prompts), width), PAD_ID, np.int32)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = prompt
    # One trace for every batch shape (Keras's predict would retrace per shape).
    forward = tf.function(
        lambda x: network(x, training=False),
        input_signature=[tf.TensorSpec((None, None), tf.int32)],
    )
    ends = np.array([len(p) - 1 for p in prompts])
    last = np.concatenate(
        [
            forward(ids[i : i + 64]).numpy()[np.arange(len(ids[i : i + 64])), ends[i : i + 64]]
            for i in range(0, len(ids), 64)
        ]
    )
    last[:, list(SPECIAL_IDS)] = -np.inf
    vocabulary = tokenizer.vocabulary
    return [vocabulary[i] == ex.answer for i, ex in zip(last.argmax(-1), tests, strict=True)]


@dataclass(frozen=True)
class Report:
    settings: Settings
    chance: dict[str, float]
    unigram: dict[str, float]
    cells: list[CellResult]

    def as_dict(self) -> dict:
        return {
            "settings": asdict(self.settings),
            "chance": self.chance,
            "unigram": self.unigram,
            "cells": [asdict(result) for result in self.cells],
        }


def run(cells: list[str], settings: Settings, on_cell=None) -> Report:
    """The whole benchmark: data, one training per cell, scores and baselines."""
    per_kind = settings.train_examples / len(KINDS)
    train_counts = tuple(math.ceil(per_kind * share) for share in settings.train_mix)
    train = make_examples(settings, train_counts, seed=settings.seed)
    test_counts = (settings.test_examples,) * len(settings.buckets)
    tests = make_examples(settings, test_counts, seed=settings.seed + 1)
    train_lines = [" ".join(ex.tokens) for _, ex in train]
    tokenizer = Tokenizer.adapt(tf.data.Dataset.from_tensor_slices(train_lines), 10_000)
    results = []
    for cell in cells:
        result = train_and_score(cell, settings, tokenizer, train_lines, tests)
        results.append(result)
        if on_cell is not None:
            on_cell(result)
    chance = {kind: 1 / len(answers(kind)) for kind in KINDS}
    unigram = {}
    for kind in KINDS:
        counts = Counter(ex.answer for _, ex in train if ex.kind == kind)
        most_common = counts.most_common(1)[0][0]
        unigram[kind] = float(
            np.mean([ex.answer == most_common for _, ex in tests if ex.kind == kind])
        )
    return Report(settings, chance, unigram, results)
