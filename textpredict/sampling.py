"""Next-word ranking and multi-word generation from a probability vector.

This module knows nothing about Keras or TensorFlow: the model reaches it as a
callback ``next_probabilities(ids) -> np.ndarray`` that maps the token ids seen
so far to a probability vector over the vocabulary. That keeps the decoding
logic fast to import and testable with hand-made distributions.

The design follows the keras-hub samplers: :class:`Sampler` owns the decoding
loop, the temperature and the banned/stop ids, and every strategy overrides a
single hook, :meth:`Sampler.pick`, which chooses one token id from an already
tempered, already filtered and renormalised probability vector ``q``.

Notation. ``p`` is the model's distribution over the vocabulary ``V`` (``p_i ≥ 0``,
``Σ_i p_i = 1``), ``T > 0`` the temperature and ``B`` the set of banned ids.

* Temperature. With logits ``z_i = log p_i`` the tempered distribution is
  ``softmax(z / T)``, i.e. ``p_i^(1/T) / Σ_j p_j^(1/T)``. ``T = 1`` leaves ``p``
  unchanged, ``T → 0`` concentrates all mass on the argmax (greedy) and
  ``T → ∞`` tends to the uniform distribution over the tokens with ``p_i > 0``.
* Banning. ``q_i = 0`` for ``i ∈ B``, then ``q`` is renormalised to sum to 1.
  Banning commutes with tempering, so the order of the two steps is irrelevant.
* Top-k (Fan et al., 2018, "Hierarchical Neural Story Generation"): sample from
  ``q`` restricted to the ``k`` most likely ids and renormalised.
* Top-p / nucleus (Holtzman et al., 2020, "The Curious Case of Neural Text
  Degeneration"): sort ``q`` decreasingly, ``q_(1) ≥ q_(2) ≥ …``; the nucleus is
  the smallest prefix ``{(1), …, (n)}`` with ``Σ_{r ≤ n} q_(r) ≥ p``. It always
  holds at least one token; ``p = 1`` keeps every token with ``q_i > 0``.

Ties are always broken towards the lower id, so rankings, greedy decoding and
the membership of the top-k set and of the nucleus are deterministic.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Sequence

import numpy as np

__all__ = [
    "DEFAULT_TOP_K",
    "DEFAULT_TOP_P",
    "SAMPLER_NAMES",
    "GreedySampler",
    "RandomSampler",
    "Sampler",
    "TopKSampler",
    "TopPSampler",
    "make_sampler",
    "top_k_words",
    "validate_num_words",
    "validate_positive_int",
    "validate_sampler_name",
    "validate_seed",
    "validate_temperature",
    "validate_top_p",
]

#: The names accepted by :func:`make_sampler`, in the order shown to users.
SAMPLER_NAMES: tuple[str, ...] = ("greedy", "random", "top-k", "top-p")

#: ``k`` used by :func:`make_sampler` for ``"top-k"`` when ``top_k`` is None.
DEFAULT_TOP_K = 40

#: ``p`` used by :func:`make_sampler` for ``"top-p"`` when ``top_p`` is None.
DEFAULT_TOP_P = 0.9

NextProbabilities = Callable[[Sequence[int]], np.ndarray]


# --------------------------------------------------------------------------- #
# Validation (shared with textpredict.repl)
# --------------------------------------------------------------------------- #


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def validate_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an int if it is an integer ≥ 1, else raise ValueError."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def validate_num_words(value: object, name: str = "num_words") -> int:
    """Return ``value`` as an int if it is an integer ≥ 0, else raise ValueError."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def validate_temperature(value: object, name: str = "temperature") -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise ValueError."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def validate_top_p(value: object, name: str = "top_p") -> float:
    """Return ``value`` as a float if ``0 < value ≤ 1``, else raise ValueError."""
    if not _is_real(value) or not (0 < value <= 1):  # NaN fails the comparison
        raise ValueError(f"{name} must be a number with 0 < {name} <= 1, got {value!r}")
    return float(value)


def validate_sampler_name(value: object, name: str = "sampler") -> str:
    """Return ``value`` if it is one of :data:`SAMPLER_NAMES`, else raise ValueError."""
    if value not in SAMPLER_NAMES:
        choices = ", ".join(repr(n) for n in SAMPLER_NAMES)
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return str(value)


def validate_seed(value: object, name: str = "seed") -> int | None:
    """Return ``value`` if it is None or an integer ≥ 0 (a valid numpy seed)."""
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be None or an integer >= 0, got {value!r}")
    return int(value)


def _as_probabilities(probabilities: object) -> np.ndarray:
    """Check that ``probabilities`` is a 1-D vector of finite, non-negative numbers."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0:
        raise ValueError(
            f"probabilities must be a non-empty 1-D vector, got an array of shape {probs.shape}"
        )
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("probabilities must be finite and non-negative")
    return probs


def _valid_ids(ids: Collection[int], size: int) -> np.ndarray:
    """The ids in ``ids`` that index a vocabulary of ``size`` tokens (others are ignored)."""
    arr = np.fromiter((int(i) for i in ids), dtype=np.int64)
    return arr[(arr >= 0) & (arr < size)]


def _ranking(probs: np.ndarray) -> np.ndarray:
    """Ids sorted by decreasing probability, ties broken by lower id."""
    # np.argsort with a stable kind keeps equal keys in increasing id order.
    return np.argsort(-probs, kind="stable")


# --------------------------------------------------------------------------- #
# Ranking
# --------------------------------------------------------------------------- #


def top_k_words(
    probabilities: np.ndarray, k: int, banned_ids: Collection[int] = ()
) -> list[tuple[int, float]]:
    """The ``k`` most likely next ids with their probabilities, most likely first.

    Args:
        probabilities: The model's distribution over the vocabulary, shape ``(V,)``.
        k: How many ids to return (≥ 1). Fewer are returned when fewer than ``k``
            ids remain once the banned ones are removed.
        banned_ids: Ids never to return (e.g. padding and ``[UNK]``). Ids outside
            ``[0, V)`` are ignored.

    Returns:
        ``[(id, probability), ...]`` sorted by decreasing probability, ties broken
        by lower id. The probabilities are the model's own: they are *not*
        renormalised after removing the banned ids.
    """
    k = validate_positive_int(k, "k")
    probs = _as_probabilities(probabilities)
    allowed = np.ones(probs.size, dtype=bool)
    allowed[_valid_ids(banned_ids, probs.size)] = False
    ranked = [int(i) for i in _ranking(probs) if allowed[i]]
    return [(i, float(probs[i])) for i in ranked[:k]]


# --------------------------------------------------------------------------- #
# Samplers
# --------------------------------------------------------------------------- #


def _draw(q: np.ndarray, rng: np.random.Generator) -> int:
    """Draw one id from the (normalised or not) non-negative weights ``q``.

    Inverse-CDF sampling: the first id whose cumulative weight exceeds ``u · Σq``
    with ``u ~ U[0, 1)``. Ids of zero weight can never be drawn.
    """
    cdf = np.cumsum(q)
    index = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    if index >= q.size:  # u · Σq rounded up to Σq: take the last id with weight
        index = int(np.flatnonzero(q)[-1])
    return index


class Sampler:
    """Base class: the decoding loop, temperature, banned ids and stop ids.

    Subclasses override :meth:`pick` only. At every step :meth:`generate`

    1. calls ``next_probabilities(ids)`` with the prompt plus the ids generated so
       far, giving the model's distribution ``p``;
    2. zeroes the banned ids and applies the temperature,
       ``q_i ∝ p_i^(1/T)`` (computed as ``softmax(log p / T)`` for stability),
       renormalised so that ``Σ q = 1``;
    3. asks ``self.pick(q, rng)`` for the next id and appends it;
    4. stops after ``num_words`` ids, or right after emitting a stop id.

    Args:
        temperature: ``T > 0``. ``T < 1`` sharpens the distribution towards the
            most likely words, ``T > 1`` flattens it towards uniform.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = validate_temperature(temperature)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(temperature={self.temperature!r})"

    def pick(self, probs: np.ndarray, rng: np.random.Generator) -> int:
        """Choose the next id from ``probs``.

        Args:
            probs: A float64 vector, non-negative and summing to 1, in which the
                banned ids have probability 0 and the temperature is applied.
            rng: The random generator to draw from (deterministic samplers
                ignore it).

        Returns:
            An id with ``probs[id] > 0``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement pick()")

    def transform(self, probabilities: np.ndarray, banned_ids: Collection[int] = ()) -> np.ndarray:
        """Ban ids, apply the temperature and renormalise: the ``probs`` given to :meth:`pick`.

        Raises:
            ValueError: if no id with a non-zero probability remains.
        """
        probs = _as_probabilities(probabilities).copy()
        probs[_valid_ids(banned_ids, probs.size)] = 0.0
        if not np.any(probs > 0):
            raise ValueError("no token left to choose: every allowed id has probability 0")
        with np.errstate(divide="ignore"):
            logits = np.log(probs) / self.temperature  # log 0 = -inf stays -inf
        logits -= logits.max()  # the largest becomes 0: exp cannot overflow
        q = np.exp(logits)
        return q / q.sum()

    def generate(
        self,
        next_probabilities: NextProbabilities,
        prompt_ids: Sequence[int],
        num_words: int,
        rng: np.random.Generator,
        banned_ids: Collection[int] = (),
        stop_ids: Collection[int] = (),
    ) -> list[int]:
        """Continue ``prompt_ids`` by up to ``num_words`` ids.

        Args:
            next_probabilities: Callback mapping the ids so far (prompt followed
                by the ids generated so far, as a fresh list) to the model's
                next-id distribution, shape ``(V,)``.
            prompt_ids: The context to continue; may be empty if the callback
                accepts that.
            num_words: How many ids to generate at most (≥ 0).
            rng: Source of randomness; the same seed gives the same output.
            banned_ids: Ids never generated (e.g. padding and ``[UNK]``).
            stop_ids: Ids that end the generation; the stop id itself is
                included as the last element of the result.

        Returns:
            The generated ids only (without the prompt).
        """
        num_words = validate_num_words(num_words)
        banned = frozenset(int(i) for i in banned_ids)
        stops = frozenset(int(i) for i in stop_ids)
        context = [int(i) for i in prompt_ids]
        generated: list[int] = []
        for _ in range(num_words):
            probs = self.transform(next_probabilities(list(context)), banned)
            next_id = int(self.pick(probs, rng))
            generated.append(next_id)
            context.append(next_id)
            if next_id in stops:
                break
        return generated


class GreedySampler(Sampler):
    """Always the most likely id (``argmax q``, lowest id on ties).

    The temperature is accepted for a uniform interface but cannot change the
    result: ``p ↦ p^(1/T)`` is increasing, so the argmax is the same.
    """

    def pick(self, probs: np.ndarray, rng: np.random.Generator) -> int:
        return int(np.argmax(probs))  # np.argmax returns the first maximum


class RandomSampler(Sampler):
    """Draw from the whole tempered distribution ``q`` (ancestral sampling)."""

    def pick(self, probs: np.ndarray, rng: np.random.Generator) -> int:
        return _draw(probs, rng)


class TopKSampler(Sampler):
    """Draw among the ``k`` most likely ids only (Fan et al., 2018).

    ``q'_i = q_i / Σ_{j ∈ K} q_j`` for ``i ∈ K``, the ``k`` ids of highest ``q``
    (lower id first on ties), and ``q'_i = 0`` elsewhere. ``k = 1`` is greedy.

    Args:
        k: Size of the candidate set, ≥ 1.
        temperature: See :class:`Sampler`.
    """

    def __init__(self, k: int = DEFAULT_TOP_K, temperature: float = 1.0) -> None:
        super().__init__(temperature)
        self.k = validate_positive_int(k, "top_k")

    def __repr__(self) -> str:
        return f"TopKSampler(k={self.k!r}, temperature={self.temperature!r})"

    def pick(self, probs: np.ndarray, rng: np.random.Generator) -> int:
        keep = _ranking(probs)[: self.k]
        return int(keep[_draw(probs[keep], rng)])


class TopPSampler(Sampler):
    """Nucleus sampling: draw within the smallest set holding mass ≥ ``p``.

    With ``q`` sorted decreasingly (lower id first on ties), the nucleus is the
    shortest prefix whose cumulative probability reaches ``p`` (Holtzman et al.,
    2020); ``q`` is renormalised over it. The nucleus always contains at least
    the most likely id, so a tiny ``p`` is greedy, and ``p = 1`` keeps every id
    of non-zero probability.

    Args:
        p: Probability mass to keep, ``0 < p ≤ 1``.
        temperature: See :class:`Sampler`; applied before the nucleus is chosen.
    """

    # Cumulative sums are compared with p - _EPS so that rounding (e.g. a total
    # of 0.9999999999 against p = 1) cannot push the cut-off one id too far.
    _EPS = 1e-12

    def __init__(self, p: float = DEFAULT_TOP_P, temperature: float = 1.0) -> None:
        super().__init__(temperature)
        self.p = validate_top_p(p, "top_p")

    def __repr__(self) -> str:
        return f"TopPSampler(p={self.p!r}, temperature={self.temperature!r})"

    def pick(self, probs: np.ndarray, rng: np.random.Generator) -> int:
        order = _ranking(probs)
        cumulative = np.cumsum(probs[order])
        # First position whose cumulative mass reaches p; the nucleus ends there.
        size = int(np.searchsorted(cumulative, self.p - self._EPS, side="left")) + 1
        keep = order[: min(size, order.size)]
        return int(keep[_draw(probs[keep], rng)])


def make_sampler(
    name: str,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Sampler:
    """Build a sampler from its name, one of :data:`SAMPLER_NAMES`.

    Args:
        name: ``"greedy"``, ``"random"``, ``"top-k"`` or ``"top-p"``.
        temperature: ``T > 0``, see :class:`Sampler`.
        top_k: ``k ≥ 1`` for ``"top-k"`` (default :data:`DEFAULT_TOP_K`).
        top_p: ``0 < p ≤ 1`` for ``"top-p"`` (default :data:`DEFAULT_TOP_P`).

    ``top_k`` and ``top_p`` are validated whenever given, even if the chosen
    sampler does not use them, so that a bad value is never silently ignored.

    Raises:
        ValueError: naming the argument, the value received and, for ``name``,
            the valid choices.
    """
    name = validate_sampler_name(name, "name")
    temperature = validate_temperature(temperature)
    k = DEFAULT_TOP_K if top_k is None else validate_positive_int(top_k, "top_k")
    p = DEFAULT_TOP_P if top_p is None else validate_top_p(top_p)
    if name == "greedy":
        return GreedySampler(temperature)
    if name == "random":
        return RandomSampler(temperature)
    if name == "top-k":
        return TopKSampler(k, temperature)
    return TopPSampler(p, temperature)
