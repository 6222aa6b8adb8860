"""Tests for textpredict.sampling, with hand-made probability vectors."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from textpredict.sampling import (
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    SAMPLER_NAMES,
    GreedySampler,
    RandomSampler,
    Sampler,
    TopKSampler,
    TopPSampler,
    make_sampler,
    top_k_words,
)

V = 10


def one_hot(i: int, size: int = V, scale: float = 100.0) -> np.ndarray:
    """A softmax of a one-hot logit vector times ``scale``: almost all mass on ``i``."""
    logits = np.zeros(size)
    logits[i] = scale
    e = np.exp(logits - logits.max())
    return e / e.sum()


def constant(probs) -> Callable:
    """A callback ignoring the context and always returning ``probs``."""
    vector = np.asarray(probs, dtype=float)
    return lambda ids: vector


def draws(sampler: Sampler, probs, n: int, seed: int = 0, **kwargs) -> Counter:
    """Counts of ``n`` one-step generations from a fixed distribution."""
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    for _ in range(n):
        counts.update(sampler.generate(constant(probs), [0], 1, rng, **kwargs))
    return counts


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- #
# top_k_words
# --------------------------------------------------------------------------- #


class TestTopKWords:
    def test_order_highest_first_with_model_probabilities(self):
        probs = np.array([0.05, 0.4, 0.1, 0.3, 0.15])
        assert top_k_words(probs, 3) == [(1, 0.4), (3, 0.3), (4, 0.15)]

    def test_ties_broken_by_lower_id(self):
        probs = np.array([0.1, 0.2, 0.1, 0.2, 0.1, 0.3])
        assert [i for i, _ in top_k_words(probs, 6)] == [5, 1, 3, 0, 2, 4]

    def test_ties_broken_by_lower_id_in_a_large_vocabulary(self):
        probs = np.full(1000, 0.001)
        probs[500] = 0.002
        assert [i for i, _ in top_k_words(probs, 5)] == [500, 0, 1, 2, 3]

    def test_banned_ids_excluded_and_not_renormalised(self):
        probs = np.array([0.5, 0.3, 0.1, 0.1])
        result = top_k_words(probs, 2, banned_ids=[0, 1])
        assert result == [(2, 0.1), (3, 0.1)]

    def test_k_larger_than_vocabulary_returns_all_allowed(self):
        probs = np.array([0.2, 0.5, 0.3])
        assert top_k_words(probs, 10, banned_ids={1}) == [(2, 0.3), (0, 0.2)]

    def test_out_of_range_banned_ids_are_ignored(self):
        probs = np.array([0.2, 0.5, 0.3])
        assert top_k_words(probs, 1, banned_ids=[-1, 3, 99]) == [(1, 0.5)]

    def test_returns_python_types(self):
        ((i, p),) = top_k_words(np.array([0.25, 0.75], dtype=np.float32), 1)
        assert type(i) is int and type(p) is float

    @pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
    def test_invalid_k(self, k):
        with pytest.raises(ValueError, match=r"\bk\b.*" + repr(k).replace(".", r"\.")):
            top_k_words(np.array([0.5, 0.5]), k)

    @pytest.mark.parametrize(
        "probs", [np.array([[0.5, 0.5]]), np.array([]), np.array([0.5, -0.1]), [np.nan, 1.0]]
    )
    def test_invalid_probabilities(self, probs):
        with pytest.raises(ValueError, match="probabilities"):
            top_k_words(probs, 1)


# --------------------------------------------------------------------------- #
# The decoding loop
# --------------------------------------------------------------------------- #


class TestGenerateLoop:
    def test_greedy_follows_context_dependent_callback(self):
        # The next id is (last id + 3) mod V: the callback must see the generated ids.
        seen = []

        def next_probabilities(ids):
            seen.append(list(ids))
            return one_hot((ids[-1] + 3) % V)

        out = GreedySampler().generate(next_probabilities, [1, 2], 4, rng())
        assert out == [5, 8, 1, 4]
        assert seen == [[1, 2], [1, 2, 5], [1, 2, 5, 8], [1, 2, 5, 8, 1]]

    def test_returns_only_generated_ids_and_does_not_mutate_prompt(self):
        prompt = [7]
        out = GreedySampler().generate(lambda ids: one_hot(2), prompt, 3, rng())
        assert out == [2, 2, 2]
        assert prompt == [7]

    def test_callback_cannot_corrupt_the_context(self):
        def next_probabilities(ids):
            result = one_hot(len(ids))
            ids.clear()  # misbehaving callback
            return result

        assert GreedySampler().generate(next_probabilities, [0], 3, rng()) == [1, 2, 3]

    def test_zero_words(self):
        def fail(ids):
            raise AssertionError("callback must not be called")

        assert GreedySampler().generate(fail, [1], 0, rng()) == []

    def test_banned_ids_never_produced_even_if_most_likely(self):
        probs = np.array([0.6, 0.3, 0.05, 0.05])
        for sampler in (GreedySampler(), RandomSampler(), TopKSampler(2), TopPSampler(0.5)):
            counts = draws(sampler, probs, 300, banned_ids=[0])
            assert 0 not in counts, sampler
        assert GreedySampler().generate(constant(probs), [], 3, rng(), banned_ids=[0]) == [1] * 3

    def test_all_mass_banned_raises(self):
        with pytest.raises(ValueError, match="no token left"):
            GreedySampler().generate(constant([0.0, 1.0, 0.0]), [], 1, rng(), banned_ids=[1])

    def test_stop_id_ends_generation_and_is_included(self):
        sequence = [4, 5, 6, 9, 7]

        def next_probabilities(ids):
            return one_hot(sequence[len(ids) - 1])

        out = GreedySampler().generate(next_probabilities, [0], 5, rng(), stop_ids=[6, 7])
        assert out == [4, 5, 6]
        assert GreedySampler().generate(next_probabilities, [0], 5, rng()) == sequence

    def test_same_seed_same_sequence(self):
        def next_probabilities(ids):
            p = np.arange(1, V + 1, dtype=float) + (np.arange(V) == ids[-1]) * 5
            return p / p.sum()

        sampler = TopPSampler(0.95, temperature=1.5)
        a = sampler.generate(next_probabilities, [0], 30, np.random.default_rng(123))
        b = sampler.generate(next_probabilities, [0], 30, np.random.default_rng(123))
        c = sampler.generate(next_probabilities, [0], 30, np.random.default_rng(124))
        assert a == b
        assert a != c

    def test_callback_returning_bad_shape_is_reported(self):
        with pytest.raises(ValueError, match=r"1-D.*\(1, 3\)"):
            GreedySampler().generate(lambda ids: np.ones((1, 3)) / 3, [0], 1, rng())

    def test_base_class_pick_is_abstract(self):
        with pytest.raises(NotImplementedError):
            Sampler().generate(constant([0.5, 0.5]), [0], 1, rng())

    def test_subclass_overrides_only_pick(self):
        class LastNonZero(Sampler):
            def pick(self, probs, rng):
                return int(np.flatnonzero(probs)[-1])

        out = LastNonZero().generate(constant([0.1, 0.2, 0.7, 0.0]), [], 2, rng(), banned_ids={2})
        assert out == [1, 1]


# --------------------------------------------------------------------------- #
# Temperature
# --------------------------------------------------------------------------- #


class TestTemperature:
    def test_transform_matches_formula(self):
        p = np.array([0.1, 0.2, 0.3, 0.4])
        for t in (0.5, 1.0, 2.0):
            expected = p ** (1 / t) / np.sum(p ** (1 / t))
            np.testing.assert_allclose(RandomSampler(t).transform(p), expected, rtol=1e-12)

    def test_transform_bans_and_renormalises(self):
        q = RandomSampler(1.0).transform(np.array([0.5, 0.25, 0.25]), banned_ids=[0])
        np.testing.assert_allclose(q, [0.0, 0.5, 0.5])

    def test_very_low_temperature_behaves_greedy(self):
        probs = np.array([0.2, 0.3, 0.25, 0.25])
        counts = draws(RandomSampler(temperature=1e-4), probs, 500)
        assert counts == Counter({1: 500})

    def test_very_low_temperature_keeps_zero_probabilities_at_zero(self):
        q = RandomSampler(1e-6).transform(np.array([0.0, 1e-300, 0.0]))
        np.testing.assert_array_equal(q, [0.0, 1.0, 0.0])

    def test_high_temperature_flattens(self):
        probs = np.array([0.7, 0.2, 0.1])
        n = 6000
        cold = draws(RandomSampler(temperature=1.0), probs, n, seed=1)
        hot = draws(RandomSampler(temperature=100.0), probs, n, seed=1)
        # T = 1 reproduces p; T = 100 is nearly uniform (p^(1/100) ∝ 1.00, 0.99, 0.98).
        for i, p in enumerate(probs):
            assert abs(cold[i] / n - p) < 0.03
            assert abs(hot[i] / n - 1 / 3) < 0.03
        assert hot[2] > 5 * cold[2] / 2

    def test_greedy_ignores_temperature(self):
        probs = np.array([0.1, 0.35, 0.2, 0.35])  # tie between 1 and 3: lower id wins
        for t in (0.01, 1.0, 50.0):
            assert GreedySampler(t).generate(constant(probs), [], 3, rng()) == [1, 1, 1]


# --------------------------------------------------------------------------- #
# Strategies
# --------------------------------------------------------------------------- #


class TestStrategies:
    def test_random_sampler_reaches_every_nonzero_id(self):
        probs = np.array([0.4, 0.0, 0.3, 0.3])
        counts = draws(RandomSampler(), probs, 2000)
        assert set(counts) == {0, 2, 3}
        assert abs(counts[0] / 2000 - 0.4) < 0.04

    def test_top_k_never_outside_k_best(self):
        probs = np.array([0.05, 0.15, 0.1, 0.3, 0.02, 0.2, 0.18])
        counts = draws(TopKSampler(3), probs, 3000, seed=7)
        assert set(counts) == {3, 5, 6}
        # Renormalised within the top 3: 0.3/0.68, 0.2/0.68, 0.18/0.68.
        for i, p in ((3, 0.3), (5, 0.2), (6, 0.18)):
            assert abs(counts[i] / 3000 - p / 0.68) < 0.03

    def test_top_k_even_at_high_temperature(self):
        probs = np.array([0.05, 0.15, 0.1, 0.3, 0.02, 0.2, 0.18])
        counts = draws(TopKSampler(2, temperature=1000.0), probs, 2000, seed=3)
        assert set(counts) == {3, 5}

    def test_top_k_ties_at_boundary_keep_lower_id(self):
        probs = np.array([0.2, 0.2, 0.2, 0.4])
        counts = draws(TopKSampler(2), probs, 1000)
        assert set(counts) == {0, 3}

    def test_top_k_ties_in_a_large_vocabulary_keep_lower_ids(self):
        probs = np.full(1000, 1.0)
        probs[700] = 2.0
        counts = draws(TopKSampler(3), probs / probs.sum(), 600)
        assert set(counts) == {700, 0, 1}

    def test_top_k_one_is_greedy(self):
        probs = np.array([0.3, 0.1, 0.6])
        assert draws(TopKSampler(1), probs, 200) == Counter({2: 200})

    def test_top_k_skips_banned(self):
        probs = np.array([0.5, 0.2, 0.2, 0.1])
        counts = draws(TopKSampler(2), probs, 1000, banned_ids=[0])
        assert set(counts) == {1, 2}

    def test_top_p_small_picks_argmax(self):
        probs = np.array([0.2, 0.25, 0.3, 0.25])
        assert draws(TopPSampler(1e-6), probs, 300) == Counter({2: 300})

    def test_top_p_samples_only_from_nucleus(self):
        # Sorted: 0.4 (id 3), 0.3 (id 0), 0.15 (id 4), 0.1 (id 1), 0.05 (id 2).
        # p = 0.65 -> 0.4 < 0.65 <= 0.7, nucleus {3, 0}.
        probs = np.array([0.3, 0.1, 0.05, 0.4, 0.15])
        counts = draws(TopPSampler(0.65), probs, 3000, seed=5)
        assert set(counts) == {0, 3}
        assert abs(counts[3] / 3000 - 0.4 / 0.7) < 0.03

    def test_top_p_exact_boundary_is_inclusive(self):
        # Cumulative 0.5, 0.8, 1.0: p = 0.8 is reached by exactly two ids.
        probs = np.array([0.2, 0.3, 0.5])
        counts = draws(TopPSampler(0.8), probs, 2000, seed=2)
        assert set(counts) == {1, 2}

    def test_top_p_one_keeps_every_nonzero_id(self):
        probs = np.array([0.01, 0.0, 0.01, 0.98])
        counts = draws(TopPSampler(1.0), probs, 5000, seed=4)
        assert set(counts) == {0, 2, 3}

    def test_top_p_applies_temperature_first(self):
        # At T = 1 the nucleus for p = 0.5 is {0}; at T = 100 the distribution
        # is nearly uniform, so the nucleus needs two ids.
        probs = np.array([0.6, 0.3, 0.1])
        assert set(draws(TopPSampler(0.5), probs, 500)) == {0}
        assert set(draws(TopPSampler(0.5, temperature=100.0), probs, 500)) == {0, 1}


# --------------------------------------------------------------------------- #
# Factory and validation
# --------------------------------------------------------------------------- #


class TestMakeSampler:
    def test_names(self):
        assert SAMPLER_NAMES == ("greedy", "random", "top-k", "top-p")

    @pytest.mark.parametrize(
        ("name", "cls"),
        [
            ("greedy", GreedySampler),
            ("random", RandomSampler),
            ("top-k", TopKSampler),
            ("top-p", TopPSampler),
        ],
    )
    def test_builds_each_strategy(self, name, cls):
        sampler = make_sampler(name, temperature=0.7, top_k=5, top_p=0.5)
        assert type(sampler) is cls
        assert sampler.temperature == 0.7

    def test_parameters_and_defaults(self):
        assert make_sampler("top-k", top_k=7).k == 7
        assert make_sampler("top-p", top_p=0.3).p == 0.3
        assert make_sampler("top-k").k == DEFAULT_TOP_K
        assert make_sampler("top-p").p == DEFAULT_TOP_P

    def test_invalid_name_lists_choices(self):
        with pytest.raises(ValueError) as info:
            make_sampler("beam")
        message = str(info.value)
        assert "name" in message and "'beam'" in message
        for name in SAMPLER_NAMES:
            assert repr(name) in message

    @pytest.mark.parametrize(
        ("kwargs", "argument", "value"),
        [
            ({"temperature": 0}, "temperature", "0"),
            ({"temperature": -1.0}, "temperature", "-1.0"),
            ({"temperature": float("inf")}, "temperature", "inf"),
            ({"temperature": float("nan")}, "temperature", "nan"),
            ({"top_k": 0}, "top_k", "0"),
            ({"top_k": 2.5}, "top_k", "2.5"),
            ({"top_p": 0.0}, "top_p", "0.0"),
            ({"top_p": 1.5}, "top_p", "1.5"),
            ({"top_p": -0.1}, "top_p", "-0.1"),
        ],
    )
    def test_invalid_values_name_argument_and_value(self, kwargs, argument, value):
        with pytest.raises(ValueError) as info:
            make_sampler("random", **kwargs)
        assert argument in str(info.value)
        assert value in str(info.value)

    @pytest.mark.parametrize(
        ("factory", "argument"),
        [
            (lambda: TopKSampler(0), "top_k"),
            (lambda: TopPSampler(0.0), "top_p"),
            (lambda: TopPSampler(1.01), "top_p"),
            (lambda: GreedySampler(temperature=0.0), "temperature"),
            (lambda: RandomSampler(temperature=-2), "temperature"),
        ],
    )
    def test_constructors_validate(self, factory, argument):
        with pytest.raises(ValueError, match=argument):
            factory()

    @pytest.mark.parametrize("num_words", [-1, 1.0, None])
    def test_invalid_num_words(self, num_words):
        with pytest.raises(ValueError, match=rf"num_words.*{num_words!r}"):
            GreedySampler().generate(constant([1.0]), [0], num_words, rng())


def test_imports_no_tensorflow():
    code = (
        "import sys, textpredict.sampling, textpredict.repl;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
