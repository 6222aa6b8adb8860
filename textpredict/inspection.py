"""Looking inside a recurrent layer: gradient flow through time and gate values.

Both measurements run the layer's own `step` one time step at a time, eagerly,
so every intermediate state is a tensor we can read or differentiate:

* `gradient_norms` turns the vanishing-gradient claim into numbers. For a loss
  L_T that depends only on the last output h_T, it returns ‖∂L_T/∂h_t‖ (and
  ‖∂L_T/∂c_t‖ for cells with a cell state) for every earlier step t, averaged
  over a batch. A plain RNN multiplies the error by Uᵀ diag(1 − h²) at every
  step back, so it shrinks geometrically with the gap T − t; along an LSTM's
  cell state it is only scaled by the forget gate.
* `gate_trace` records, token by token, the gate activations of a trained
  model's first recurrent layer on a text, with the cell-state norm and the
  model's top next word.
"""

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from textpredict.layers import Recurrent
from textpredict.text import SPECIAL_IDS


def _zero_states(layer: Recurrent, batch: int) -> tuple[tf.Tensor, ...]:
    return tuple(tf.zeros((batch, size), layer.compute_dtype) for size in layer.state_size)


def _unroll(layer: Recurrent, inputs: tf.Tensor, before_step=None):
    """Runs `layer.step` over batch-major `inputs` one step at a time, from zero states.

    Calls `before_step(x_proj_t, h_proj_t, states)` before each step and returns the
    final states. Inference semantics: no dropout, no mask.
    """
    inputs = tf.cast(inputs, layer.compute_dtype)
    x_proj = layer.project_inputs(inputs)
    states = _zero_states(layer, inputs.shape[0])
    for t in range(x_proj.shape[0]):
        h_proj = layer.recurrent_projection(states[0])
        if before_step is not None:
            before_step(x_proj[t], h_proj, states)
        _, states = layer.step(x_proj[t], h_proj, states)
        states = tuple(states)
    return states


@dataclass(frozen=True)
class GradientFlow:
    """Mean gradient norms of L_T with respect to earlier states, by gap T − t."""

    gaps: np.ndarray  # 1 … steps - 1
    hidden: np.ndarray  # ‖∂L_T/∂h_{T-gap}‖
    # ‖∂L_T/∂c_{T-gap}‖ for cells with a cell state: the total derivative, through the
    # next cell state and through h_t = o_t ⊙ tanh(c_t) (BPTT's δc_t).
    cell: np.ndarray | None

    def at(self, gap: int) -> tuple[float, float | None]:
        """The two norms at one gap."""
        i = gap - 1
        return float(self.hidden[i]), None if self.cell is None else float(self.cell[i])

    def as_dict(self) -> dict:
        return {
            "gaps": self.gaps.tolist(),
            "hidden": self.hidden.tolist(),
            "cell": None if self.cell is None else self.cell.tolist(),
        }


def gradient_norms(layer: Recurrent, inputs, seed: int = 0) -> GradientFlow:
    """‖∂L_T/∂h_t‖ (and ‖∂L_T/∂c_t‖) for every t < T, averaged over the batch.

    Args:
        layer: A built recurrent layer of this package.
        inputs: `(batch, steps, features)` input sequences.
        seed: Seed of the fixed random unit direction `v` in `L_T = v · h_T`. A
            linear loss makes ∂L_T/∂h_T the same `v` for every cell, so the norms
            show only how the error travels back through the cell.

    Returns:
        A `GradientFlow` indexed by the gap T − t (1 = the step before the last).
    """
    direction = np.random.default_rng(seed).standard_normal(layer.state_size[0])
    direction = tf.constant(direction / np.linalg.norm(direction), layer.compute_dtype)
    history: list[tuple[tf.Tensor, ...]] = []  # states before each step

    tape = tf.GradientTape(persistent=True)

    def watch(x_proj_t, h_proj_t, states):
        tape.watch(states)
        history.append(states)

    with tape:
        final = _unroll(layer, tf.convert_to_tensor(inputs), watch)
        loss = tf.reduce_sum(final[0] * direction)
    # history[0] is the zero initial state; history[1:] are h_1 … h_{T-1} (gaps T-1 … 1).
    norms = []
    for index in range(min(2, len(layer.state_size))):
        grads = tape.gradient(loss, [states[index] for states in history[1:]])
        per_step = [float(tf.reduce_mean(tf.norm(g, axis=-1))) for g in grads]
        norms.append(np.array(per_step[::-1]))  # gap 1 first
    cell = norms[1] if len(norms) > 1 else None
    return GradientFlow(np.arange(1, len(history)), norms[0], cell)


def fresh_layer(cell: type[Recurrent], units: int, input_dim: int, seed: int) -> Recurrent:
    """A freshly initialised layer with seeded weights, as `train` would start it."""
    keras.utils.set_random_seed(seed)
    layer = cell(units)
    layer.build((None, None, input_dim))
    return layer


@dataclass(frozen=True)
class GateTrace:
    """Per-token gate activations of a model's first recurrent layer."""

    tokens: list[str]  # the tokens read, "<eos>" first
    gates: dict[str, np.ndarray]  # gate name → (tokens, units)
    cell_norm: np.ndarray | None  # ‖c_t‖ per token, for cells with a cell state
    next_words: list[str]  # the model's top next word after each token

    def as_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "mean_gates": {name: v.mean(axis=1).tolist() for name, v in self.gates.items()},
            "cell_norm": None if self.cell_norm is None else self.cell_norm.tolist(),
            "next_words": self.next_words,
        }


def first_recurrent_layer(network: keras.Model) -> Recurrent:
    return next(layer for layer in network.layers if isinstance(layer, Recurrent))


def gate_trace(network: keras.Model, tokenizer, ids: list[int]) -> GateTrace:
    """Runs `ids` through the network and its first recurrent layer, step by step.

    Raises:
        ValueError: if the layer has no gates (a plain RNN).
    """
    layer = first_recurrent_layer(network)
    if not hasattr(layer, "gate_values"):
        raise ValueError(f"a {type(layer).__name__} layer has no gates to inspect")
    batch = tf.constant([ids], tf.int32)
    collected: dict[str, list[np.ndarray]] = {}
    before: list[tuple[tf.Tensor, ...]] = []  # the states before each step

    def record(x_proj_t, h_proj_t, states):
        before.append(states)
        for name, value in layer.gate_values(x_proj_t, h_proj_t, states).items():
            collected.setdefault(name, []).append(value[0].numpy())

    final = _unroll(layer, network.get_layer("embedding")(batch), record)
    after = [*before[1:], final]  # the states after each step
    cell_norm = None
    if len(final) > 1:
        cell_norm = np.array([float(tf.norm(states[1][0])) for states in after])
    logits = network(batch, training=False)[0].numpy()
    vocabulary = tokenizer.vocabulary
    offerable = logits.copy()
    offerable[:, list(SPECIAL_IDS)] = -np.inf  # padding and [UNK] are never suggested
    next_words = [vocabulary[i] for i in offerable.argmax(axis=-1)]
    return GateTrace(
        tokens=[vocabulary[i] for i in ids],
        gates={name: np.stack(values) for name, values in collected.items()},
        cell_norm=cell_norm,
        next_words=next_words,
    )
