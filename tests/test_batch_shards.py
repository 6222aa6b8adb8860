"""A training batch split into shards computes what the whole batch computes."""

import numpy as np
import pytest
import tensorflow as tf

from textpredict import GRU, LSTM, PeepholeLSTM
from textpredict.layers import batch_shards
from textpredict.layers.batch_shards import forced_shards, shard_count, split_rows

TIME, FEATURES, UNITS = 5, 4, 6
TOL = 1e-5


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_split_rows_gives_nearly_equal_parts_static_or_dynamic():
    rows = tf.reshape(tf.range(7 * 2), (7, 2))
    parts = split_rows(rows, 3)
    assert [p.shape[0] for p in parts] == [2, 2, 3]  # row i·7//3 starts part i
    np.testing.assert_array_equal(tf.concat(parts, 0), rows)

    @tf.function(input_signature=[tf.TensorSpec((None, 2), tf.int32)])
    def dynamic(t):
        return split_rows(t, 3)

    parts = dynamic(rows)
    assert [p.shape[0] for p in parts] == [2, 2, 3]
    np.testing.assert_array_equal(tf.concat(parts, 0), rows)
    assert split_rows(None, 2) == [None, None]


def test_shard_count_splits_only_small_products_over_several_cores(monkeypatch):
    # LSTM (4 gates): 10 rows × 200 × 800 per shard is small everywhere, 32 × 650 × 2600
    # only with AVX-512, 10 × 1500 × 6000 nowhere.
    for avx512 in (False, True):
        assert shard_count(20, 200, 4, cores=2, avx512=avx512) == 2
        assert shard_count(20, 200, 4, cores=1, avx512=avx512) == 1
        assert shard_count(20, 200, 4, cores=4, avx512=avx512) == batch_shards.MAX_SHARDS
        assert shard_count(8, 200, 4, cores=2, avx512=avx512) == 2
        assert shard_count(7, 200, 4, cores=2, avx512=avx512) == 1  # MIN_SHARD_ROWS a shard
        assert shard_count(None, 200, 4, cores=2, avx512=avx512) == 1  # may change shape
        assert shard_count(20, 1500, 4, cores=2, avx512=avx512) == 1
        rows = batch_shards.max_shard_product(avx512) // (4 * 50 * 50)
        assert shard_count(2 * rows, 50, 4, cores=2, avx512=avx512) == 2
        assert shard_count(2 * rows + 2, 50, 4, cores=2, avx512=avx512) == 1
    assert shard_count(64, 650, 4, cores=2, avx512=False) == 1
    assert shard_count(64, 650, 4, cores=2, avx512=True) == 2
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["GPU:0"])
    assert shard_count(20, 200, 4, cores=2) == 1


def test_avx512_is_read_from_the_cpu_flags(tmp_path):
    flags = "flags\t\t: fpu sse2 avx2 fma{}\n"
    with_it, without = tmp_path / "with", tmp_path / "without"
    with_it.write_text("processor\t: 0\n" + flags.format(" avx512f avx512dq"))
    without.write_text("processor\t: 0\n" + flags.format(" avx512_fake_but_not_f"))
    assert batch_shards.has_avx512(str(with_it))
    assert not batch_shards.has_avx512(str(without))
    assert not batch_shards.has_avx512(str(tmp_path / "missing"))
    assert batch_shards.max_shard_product(True) > batch_shards.max_shard_product(False)


def test_forced_shards_overrides_the_rule_and_restores_it():
    with forced_shards(3):
        assert shard_count(64, 650, 4, cores=1) == 3
        with forced_shards(1):
            assert shard_count(20, 200, 4, cores=2) == 1
        assert shard_count(64, 650, 4, cores=1) == 3
    assert shard_count(64, 650, 4, cores=1) == 1


def _compiled_calls(graph):
    """The XLA-compiled function calls in `graph` and in the functions it calls."""
    functions = [graph, *(f.graph for f in graph._functions.values() if hasattr(f, "graph"))]
    return sum(
        op.node_def.attr["_XlaMustCompile"].b
        for g in functions
        for op in g.get_operations()
        if "_XlaMustCompile" in op.node_def.attr
    )


def _step(layer, x, h0, mask, projections):
    """A traced training step: outputs and the gradients of the inputs, states and weights."""

    def run(x, h0):
        with tf.GradientTape() as tape:
            tape.watch([x, *h0])
            outs = layer(x, initial_state=h0, mask=mask, training=True)
            outs = outs if isinstance(outs, list) else [outs]
            loss = sum(tf.reduce_sum(o * p) for o, p in zip(outs, projections, strict=True))
        return outs, tape.gradient(loss, [x, *h0, *layer.trainable_weights])

    return tf.function(run)


RICH = {"dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True, "return_state": True}
CASES = [  # cell, layer kwargs, with a mask
    # The three kinds of inputs a shard's programs take: the fused weights alone
    # (LSTM; CIFG and SimpleRNN are alike), with the cell's own params (peepholes),
    # with a recurrent bias of its own (GRU).
    *[(cls, RICH, True) for cls in (LSTM, PeepholeLSTM, GRU)],
    # Unmasked: the backward pass reads h_{t-1} ⊙ m_h back from the outputs.
    (LSTM, {"dropout": 0.3, "recurrent_dropout": 0.4}, False),
]


@pytest.mark.parametrize("cls, layer_kwargs, masked", CASES)
def test_shards_compute_what_the_whole_batch_computes(rng, cls, layer_kwargs, masked):
    """Outputs, final states and every gradient, the batch of 7 split into 3 + 4 rows."""
    batch = 7
    layers = [cls(UNITS, seed=3, **layer_kwargs) for _ in range(2)]
    for layer in layers:
        layer.build((batch, TIME, FEATURES))
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in layers[0].weights]
    for layer in layers:
        layer.set_weights(weights)
    x = tf.constant(rng.standard_normal((batch, TIME, FEATURES)).astype("float32"))
    h0 = [
        tf.constant(rng.standard_normal((batch, size)).astype("float32"))
        for size in layers[0].state_size
    ]
    lengths = np.array([5, 1, 3, 0, 4, 2, 5])
    mask = tf.constant(np.arange(TIME)[None, :] < lengths[:, None]) if masked else None
    out_shape = (batch, TIME, UNITS) if layers[0].return_sequences else (batch, UNITS)
    shapes = [out_shape] + [(batch, s) for s in layers[0].state_size] * layers[0].return_state
    projections = [tf.constant(rng.standard_normal(s).astype("float32")) for s in shapes]

    results = []
    for layer, shards in zip(layers, (1, 2), strict=True):
        step = _step(layer, x, h0, mask, projections)
        with forced_shards(shards):
            concrete = step.get_concrete_function(x, h0)
        # A forward and a backward program per shard: the split really happened.
        assert _compiled_calls(concrete.graph) == 2 * shards
        results.append(concrete(x, h0))
    (whole_out, whole_grads), (split_out, split_grads) = results
    for a, b in zip(split_out, whole_out, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)
    for a, b in zip(split_grads, whole_grads, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)


def test_stateful_shards_carry_each_row_to_the_next_window(rng):
    batch = 6
    layers = [LSTM(UNITS, stateful=True, return_sequences=True) for _ in range(2)]
    for layer in layers:
        layer.build((batch, TIME, FEATURES))
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in layers[0].weights]
    windows = [
        tf.constant(rng.standard_normal((batch, TIME, FEATURES)).astype("float32"))
        for _ in range(3)
    ]
    outputs = []
    for layer, shards in zip(layers, (1, 2), strict=True):
        layer.set_weights(weights)
        step = tf.function(lambda x, layer=layer: layer(x, training=True))
        with forced_shards(shards):
            outputs.append([step(x) for x in windows])
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)
    for a, b in zip(layers[0].states, layers[1].states, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)


def test_shards_of_a_batch_known_only_at_run_time(rng):
    layers = [GRU(UNITS, return_sequences=True) for _ in range(2)]
    for layer in layers:
        layer.build((None, TIME, FEATURES))
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in layers[0].weights]
    spec = tf.TensorSpec((None, TIME, FEATURES), tf.float32)
    inputs = [  # 1 row: the second of 2 shards is empty
        tf.constant(rng.standard_normal((batch, TIME, FEATURES)).astype("float32"))
        for batch in (1, 4, 9)
    ]
    results = {}
    for layer, shards in zip(layers, (1, 2), strict=True):
        layer.set_weights(weights)

        @tf.function(input_signature=[spec])
        def step(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, training=True) ** 2)
            return tape.gradient(loss, [x, *layer.trainable_weights])

        with forced_shards(shards):
            step.get_concrete_function()
        for i, x in enumerate(inputs):
            results.setdefault(i, []).append(step(x))
    for whole, split in results.values():
        for a, b in zip(whole, split, strict=True):
            np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)
