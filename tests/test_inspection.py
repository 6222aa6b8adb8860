"""Tests for gradient-flow measurement and gate inspection (`textpredict inspect`)."""

import json

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from textpredict.cli import main
from textpredict.default_corpus import generate
from textpredict.inspection import fresh_layer, gate_trace, gradient_norms
from textpredict.layers import LSTM, SimpleRNN
from textpredict.model import ModelConfig, build_language_model
from textpredict.text import Tokenizer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _inputs(batch=4, steps=9, features=5, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


@pytest.mark.parametrize("cell", [LSTM, SimpleRNN])
def test_gradient_norms_equal_backprop_through_the_layer(cell):
    """∂L_T/∂h_1 from the step-by-step unroll equals the layer's own backward pass.

    Reference: run step 0 with the layer, then the remaining steps as one layer call
    whose initial state is that result, and differentiate with respect to it.
    """
    layer = fresh_layer(cell, units=6, input_dim=5, seed=1)
    inputs = _inputs()
    flow = gradient_norms(layer, inputs, seed=3)
    assert flow.gaps.tolist() == list(range(1, 9))

    states = _states_after_first_step(layer, inputs)
    direction = _direction(layer, seed=3)
    with tf.GradientTape() as tape:
        tape.watch(states)
        outs = _call(layer, inputs[:, 1:], states)
        loss = tf.reduce_sum(outs[0] * direction)
    grads = tape.gradient(loss, states)
    if cell is LSTM:
        # As initial states, h_1 and c_1 are independent inputs; in the cell, h_1 =
        # o_1 ⊙ tanh(c_1) is computed from c_1, and the measured ∂L/∂c_1 includes that.
        zeros = (tf.zeros((4, 6)), tf.zeros((4, 6)))
        x_proj = layer.project_inputs(inputs[:, :1])[0]
        o = layer.gate_values(x_proj, layer.recurrent_projection(zeros[0]), zeros)["output"]
        grads[1] += grads[0] * o * (1.0 - tf.tanh(states[1]) ** 2)
    want = [float(tf.reduce_mean(tf.norm(g, axis=-1))) for g in grads]
    hidden, cell_norm = flow.at(8)  # h_1 is 8 steps before h_9
    np.testing.assert_allclose(hidden, want[0], rtol=1e-4)
    if cell is LSTM:
        np.testing.assert_allclose(cell_norm, want[1], rtol=1e-4)
    else:
        assert cell_norm is None and flow.cell is None


def _direction(layer, seed):
    direction = np.random.default_rng(seed).standard_normal(layer.state_size[0])
    return tf.constant(direction / np.linalg.norm(direction), tf.float32)


def _call(layer, x, states):
    """`[output, *final_states]` of `layer` on `x` from `states` (zeros when None)."""
    twin = type(layer).from_config({**layer.get_config(), "return_state": True})
    twin.build(x.shape)
    twin.set_weights(layer.get_weights())
    return twin(x, initial_state=None if states is None else list(states))


def _states_after_first_step(layer, inputs):
    return [tf.constant(s) for s in _call(layer, inputs[:, :1], None)[1:]]


def test_plain_rnn_gradient_vanishes_where_the_lstm_cell_state_keeps_it():
    inputs = _inputs(batch=16, steps=51, features=8)
    rnn = gradient_norms(fresh_layer(SimpleRNN, 32, 8, seed=0), inputs)
    lstm = gradient_norms(fresh_layer(LSTM, 32, 8, seed=0), inputs)
    rnn_ratio = rnn.at(50)[0] / rnn.at(1)[0]
    lstm_ratio = lstm.at(50)[1] / lstm.at(1)[1]
    assert rnn_ratio < 1e-4  # geometric decay through tanh' · U
    assert lstm_ratio > 100 * rnn_ratio


@pytest.fixture(scope="module")
def tiny_model():
    lines = [*generate(40, seed=3), "my sister lost her keys ."]
    tokenizer = Tokenizer.adapt(tf.data.Dataset.from_tensor_slices(lines), 500)
    config = ModelConfig(units=8, embedding_dim=6, vocabulary_size=500)
    network = build_language_model(config, tokenizer.vocabulary_size, seed=0)
    return network, tokenizer


def test_gate_trace_reads_the_text_and_ranks_like_the_network(tiny_model):
    network, tokenizer = tiny_model
    ids = [tokenizer.eos_id, *tokenizer.tokenize("my sister lost her keys")]
    trace = gate_trace(network, tokenizer, ids)
    assert trace.tokens == ["<eos>", "my", "sister", "lost", "her", "keys"]
    assert set(trace.gates) == {"input", "forget", "output"}
    for values in trace.gates.values():
        assert values.shape == (6, 8)
        assert ((values > 0) & (values < 1)).all()
    assert trace.cell_norm.shape == (6,) and (trace.cell_norm > 0).all()
    # The recorded gates are those the layer itself computes: the final cell state of
    # a plain call has the same norm as the last step of the trace.
    layer = network.get_layer("lstm_0")
    embedded = network.get_layer("embedding")(np.array([ids]))
    _, _, c = _call(layer, embedded, None)
    np.testing.assert_allclose(trace.cell_norm[-1], float(tf.norm(c[0])), rtol=1e-5)
    logits = network(np.array([ids]), training=False)[0, -1].numpy()
    logits[:2] = -np.inf
    assert trace.next_words[-1] == tokenizer.vocabulary[int(np.argmax(logits))]


def test_inspect_gradients_command_prints_table_and_writes_png(tmp_path):
    plot = tmp_path / "flow.png"
    args = ["inspect", "gradients", "--cell", "lstm", "--cell", "rnn", "--steps", "12"]
    args += ["--batch", "3", "--units", "8", "--input-dim", "4", "--plot", str(plot)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["cell", "norm", "gap", "1"]
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["lstm", "‖∂L/∂h‖"],
        ["lstm", "‖∂L/∂c‖"],
        ["rnn", "‖∂L/∂h‖"],
    ]
    assert plot.read_bytes()[:8] == PNG_MAGIC

    result = CliRunner().invoke(main, [*args, "--json"])
    data = json.loads(result.output)
    assert set(data["cells"]) == {"lstm", "rnn"}
    assert data["cells"]["rnn"]["cell"] is None
    assert len(data["cells"]["lstm"]["hidden"]) == 11


def test_inspect_rejects_a_plot_path_that_is_not_png(tmp_path):
    result = CliRunner().invoke(
        main, ["inspect", "gradients", "--cell", "rnn", "--plot", str(tmp_path / "x.txt")]
    )
    assert result.exit_code == 2
    assert "is not a .png path" in result.output
