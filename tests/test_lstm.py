"""Tests for the hand-written `textpredict.layers.LSTM`.

Three independent references: keras.layers.LSTM with copied weights (outputs
and gradients), a small numpy implementation of the equations, and frozen
numbers computed by hand for a one-unit cell.
"""

import inspect
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from textpredict.layers import LSTM, Recurrent

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 6
TOL = 1e-5


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _x(rng, batch=BATCH, time=TIME, features=FEATURES):
    return rng.standard_normal((batch, time, features)).astype("float32")


def _pair(**kwargs):
    """Our layer and keras.layers.LSTM, built, with identical weights."""
    ours = LSTM(UNITS, **kwargs)
    ref = keras.layers.LSTM(UNITS, **kwargs)
    ours.build((BATCH, TIME, FEATURES))
    ref.build((BATCH, TIME, FEATURES))
    ours.set_weights(ref.get_weights())
    return ours, ref


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_lstm(
    x, kernel, recurrent_kernel, bias, h0=None, c0=None, mask=None, x_mask=None, h_mask=None
):
    """Numpy reference of the LSTM equations (gate order i, f, c, o)."""
    batch, time, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units)) if h0 is None else h0.astype("float64")
    c = np.zeros((batch, units)) if c0 is None else c0.astype("float64")
    out, outputs = np.zeros((batch, units)), []
    for t in range(time):
        x_t = x[:, t] if x_mask is None else x[:, t] * x_mask
        h_in = h if h_mask is None else h * h_mask
        z = x_t @ kernel + h_in @ recurrent_kernel + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=1)
        c_new = _sigmoid(z_f) * c + _sigmoid(z_i) * np.tanh(z_c)
        h_new = _sigmoid(z_o) * np.tanh(c_new)
        keep = np.ones((batch, 1), bool) if mask is None else mask[:, t, None]
        out = np.where(keep, h_new, out)  # masked steps repeat the previous output
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        outputs.append(out)
    return np.stack(outputs, axis=1), h, c


def _grads(layer, x, outputs_fn, **call_kwargs):
    """Gradients of a fixed random projection of the outputs w.r.t. x and the weights."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outs = layer(x, **call_kwargs)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        loss = sum(tf.reduce_sum(o * w) for o, w in zip(outs, outputs_fn(outs), strict=True))
    return outs, tape.gradient(loss, [x, *layer.trainable_weights])


@pytest.mark.parametrize(
    "layer_kwargs, use_initial_state, lengths",
    [
        ({}, False, None),
        ({"return_sequences": True}, False, None),
        ({"return_state": True}, False, None),
        ({"return_sequences": True, "return_state": True}, True, None),
        ({"return_sequences": True, "return_state": True}, False, [5, 3, 1]),
        ({}, False, [4, 2, 5]),
        # A fully padded row: output stays zero while the state is h0/c0.
        ({"return_sequences": True, "return_state": True}, True, [5, 2, 0]),
        ({"unit_forget_bias": False, "use_bias": True}, False, None),
        ({"use_bias": False, "return_sequences": True}, False, [3, 5, 1]),
    ],
)
def test_matches_keras_outputs_and_gradients(rng, layer_kwargs, use_initial_state, lengths):
    ours, ref = _pair(**layer_kwargs)
    # Random weights everywhere (incl. bias) so every gate slice matters.
    ref.set_weights(
        [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in ref.get_weights()]
    )
    ours.set_weights(ref.get_weights())
    x = _x(rng)
    call_kwargs = {}
    if use_initial_state:
        call_kwargs["initial_state"] = [
            tf.constant(rng.standard_normal((BATCH, UNITS)).astype("float32")) for _ in range(2)
        ]
    if lengths is not None:
        call_kwargs["mask"] = tf.constant(np.arange(TIME)[None, :] < np.array(lengths)[:, None])
    weights = {}

    def output_weights(outs):
        if not weights:
            weights["w"] = [rng.standard_normal(o.shape).astype("float32") for o in outs]
        return weights["w"]

    ours_out, ours_grads = _grads(ours, x, output_weights, **call_kwargs)
    ref_out, ref_grads = _grads(ref, x, output_weights, **call_kwargs)
    assert len(ours_out) == len(ref_out) == (3 if ours.return_state else 1)
    for a, b in zip(ours_out, ref_out, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)
    assert len(ours_grads) == (4 if ours.use_bias else 3)
    for a, b in zip(ours_grads, ref_grads, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)


@pytest.mark.parametrize(
    "layer_kwargs, use_initial_state, lengths",
    [
        ({"return_sequences": True, "return_state": True}, True, None),
        ({"return_sequences": True, "return_state": True}, True, [5, 2, 0]),
        ({"return_state": True}, False, [4, 1, 3]),
        ({"dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True}, False, [5, 3, 4]),
        # Unmasked: the backward pass reads h_{t-1} ⊙ m_h back from the outputs.
        ({"dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True}, True, None),
        ({"recurrent_dropout": 0.4, "return_sequences": True}, False, None),
    ],
)
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "xla-training-step"])
def test_hand_gradient_matches_autodiff(rng, layer_kwargs, use_initial_state, lengths, traced):
    """The hand-derived backward pass equals TensorFlow's differentiation of `step`.

    Traced with `training=True`, the loop runs XLA-compiled, as inside `fit`.
    """
    # The same seed gives both layers the same dropout masks.
    hand = LSTM(UNITS, gradient="hand", seed=3, **layer_kwargs)
    auto = LSTM(UNITS, gradient="autodiff", seed=3, **layer_kwargs)
    for layer in (hand, auto):
        layer.build((BATCH, TIME, FEATURES))
    auto.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5 for w in auto.weights])
    hand.set_weights(auto.get_weights())
    x = tf.constant(_x(rng))
    h0 = [tf.constant(rng.standard_normal((BATCH, UNITS)).astype("float32")) for _ in range(2)]
    mask = None
    if lengths is not None:
        mask = tf.constant(np.arange(TIME)[None, :] < np.array(lengths)[:, None])
    n_outputs = 1 + 2 * hand.return_state
    out_shape = (BATCH, TIME, UNITS) if hand.return_sequences else (BATCH, UNITS)
    shapes = [out_shape] + [(BATCH, UNITS)] * (n_outputs - 1)
    projections = [tf.constant(rng.standard_normal(shape).astype("float32")) for shape in shapes]

    def outputs_and_gradients(layer, x, h0):
        with tf.GradientTape() as tape:
            tape.watch([x, *h0])
            outs = layer(
                x, initial_state=h0 if use_initial_state else None, mask=mask, training=traced
            )
            outs = outs if isinstance(outs, list) else [outs]
            loss = sum(tf.reduce_sum(o * p) for o, p in zip(outs, projections, strict=True))
        sources = [x, *(h0 if use_initial_state else []), *layer.trainable_weights]
        return outs, tape.gradient(loss, sources)

    results = []
    for layer in (hand, auto):
        run = tf.function(outputs_and_gradients) if traced else outputs_and_gradients
        results.append(run(layer, x, h0))
    (hand_out, hand_grads), (auto_out, auto_grads) = results
    for a, b in zip(hand_out, auto_out, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)
    assert len(hand_grads) == len(auto_grads)
    for a, b in zip(hand_grads, auto_grads, strict=True):
        assert a is not None
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)


def test_hand_gradient_used_only_for_the_activations_it_derives():
    assert LSTM(UNITS).has_hand_gradient()
    assert not LSTM(UNITS, activation="relu").has_hand_gradient()
    assert not LSTM(UNITS, recurrent_activation="hard_sigmoid").has_hand_gradient()
    with pytest.raises(ValueError, match="gradient"):
        LSTM(UNITS, gradient="numeric")


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_initialization_matches_keras(unit_forget_bias):
    kwargs = {
        "kernel_initializer": keras.initializers.GlorotUniform(seed=1),
        "recurrent_initializer": keras.initializers.Orthogonal(seed=2),
        "bias_initializer": keras.initializers.Constant(0.5),
        "unit_forget_bias": unit_forget_bias,
    }
    ours, ref = LSTM(UNITS, **kwargs), keras.layers.LSTM(UNITS, **kwargs)
    ours.build((BATCH, TIME, FEATURES))
    ref.build((BATCH, TIME, FEATURES))
    for a, b in zip(ours.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(a, b)
    expected_forget = 1.0 if unit_forget_bias else 0.5
    bias = ours.get_weights()[2].reshape(4, UNITS)  # rows: i, f, c, o
    np.testing.assert_array_equal(bias[1], expected_forget)
    np.testing.assert_array_equal(bias[[0, 2, 3]], 0.5)


def test_numpy_reference_gate_order_and_mask(rng):
    layer = LSTM(UNITS, return_sequences=True, return_state=True)
    layer.build((BATCH, TIME, FEATURES))
    weights = [rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    x = _x(rng)
    mask = np.arange(TIME)[None, :] < np.array([5, 3, 1])[:, None]
    h0, c0 = (rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(2))
    got = layer(x, mask=mask, initial_state=[h0, c0])
    want = np_lstm(x, *weights, h0=h0, c0=c0, mask=mask)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=TOL)


def test_frozen_numbers_under_constant_initializers():
    layer = LSTM(
        1,
        kernel_initializer=keras.initializers.Constant(0.5),
        recurrent_initializer=keras.initializers.Constant(0.25),
        return_sequences=True,
        return_state=True,
    )
    x = np.array([[[1.0], [0.5], [-1.0]]], dtype="float32")
    seq, h, c = layer(x)
    # Step 1 by hand (h0 = c0 = 0, forget bias 1 from unit_forget_bias).
    s = _sigmoid
    c1 = s(0.5) * math.tanh(0.5)  # f * 0 + i * c̃
    h1 = s(0.5) * math.tanh(c1)
    # Step 2: z = 0.5 * 0.5 + 0.25 * h1 for every gate, plus 1 for f.
    z2 = 0.25 + 0.25 * h1
    c2 = s(z2 + 1.0) * c1 + s(z2) * math.tanh(z2)
    h2 = s(z2) * math.tanh(c2)
    np.testing.assert_allclose(seq[0, :2, 0], [h1, h2], rtol=1e-6)
    # Frozen values of the whole sequence (computed once from the equations).
    np.testing.assert_allclose(
        seq[0, :, 0], [0.17426971865610508, 0.21236454840280952, 0.03250536428963316], rtol=1e-6
    )
    np.testing.assert_allclose(h[0, 0], 0.03250536428963316, rtol=1e-6)
    np.testing.assert_allclose(c[0, 0], 0.08352024659612531, rtol=1e-6)
    kernel = np.full((1, 4), 0.5)
    recurrent = np.full((1, 4), 0.25)
    bias = np.array([0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(seq, np_lstm(x, kernel, recurrent, bias)[0], rtol=1e-6)


def test_stateful_windows_equal_one_pass(rng):
    x = _x(rng, batch=2, time=6)
    full = LSTM(UNITS, return_sequences=True, return_state=True)
    full.build(x.shape)
    full.set_weights([rng.standard_normal(w.shape).astype("float32") for w in full.get_weights()])
    stateful = LSTM(UNITS, return_sequences=True, stateful=True)
    stateful.build((2, 3, FEATURES))
    stateful.set_weights(full.get_weights())
    assert len(stateful.get_weights()) == 3  # states are not weights, as in Keras
    want_seq, want_h, want_c = full(x)

    first = stateful(x[:, :3])
    second = stateful(x[:, 3:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), want_seq, atol=TOL)
    np.testing.assert_allclose(stateful.states[0].numpy(), want_h, atol=TOL)
    np.testing.assert_allclose(stateful.states[1].numpy(), want_c, atol=TOL)

    stateful.reset_states()
    for state in stateful.states:
        np.testing.assert_array_equal(state.numpy(), 0.0)
    np.testing.assert_allclose(stateful(x[:, :3]), first, atol=TOL)

    # Same inside a compiled function (state assignment in graph mode).
    stateful.reset_states()
    run = tf.function(lambda window: stateful(window))
    np.testing.assert_allclose(run(x[:, :3]), first, atol=TOL)
    np.testing.assert_allclose(run(x[:, 3:]), second, atol=TOL)


def test_stateful_state_carried_by_model_fit(rng):
    x = _x(rng, batch=2, time=3)
    y = rng.standard_normal((2, 1)).astype("float32")
    inputs = keras.Input((3, FEATURES), batch_size=2)
    lstm = LSTM(UNITS, stateful=True)
    model = keras.Model(inputs, keras.layers.Dense(1)(lstm(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    # Two epochs over the same window = the window seen twice in a row.
    ref = LSTM(UNITS, return_state=True)
    ref.build((2, 6, FEATURES))
    ref.set_weights(lstm.get_weights())
    _, h, c = ref(np.concatenate([x, x], axis=1))
    np.testing.assert_allclose(lstm.states[0].numpy(), h, atol=TOL)
    np.testing.assert_allclose(lstm.states[1].numpy(), c, atol=TOL)


def test_stateful_requires_static_matching_batch(rng):
    with pytest.raises(ValueError, match="stateful"):
        LSTM(UNITS, stateful=True)(keras.Input((None, FEATURES)))
    layer = LSTM(UNITS, stateful=True)
    layer(_x(rng, batch=2))
    with pytest.raises(ValueError, match="batches of size 2"):
        layer(_x(rng, batch=3))


def test_dropout_inactive_unless_training(rng):
    plain, _ = _pair(return_sequences=True)
    dropped = LSTM(UNITS, dropout=0.5, recurrent_dropout=0.5, seed=1, return_sequences=True)
    dropped.build((BATCH, TIME, FEATURES))
    dropped.set_weights(plain.get_weights())
    x = _x(rng)
    np.testing.assert_array_equal(dropped(x), plain(x))
    np.testing.assert_array_equal(dropped(x, training=False), plain(x))
    assert np.abs(dropped(x, training=True) - plain(x)).max() > 1e-3


def test_input_dropout_matches_keras_mask_for_same_seed(rng):
    # Same seed -> same (batch, features) mask, shared by all steps, scaled 1/(1-rate).
    ours, ref = _pair(dropout=0.4, seed=7, return_sequences=True)
    x = _x(rng)
    np.testing.assert_allclose(ours(x, training=True), ref(x, training=True), atol=TOL)


@pytest.mark.parametrize("dropout, recurrent_dropout", [(0.0, 0.4), (0.3, 0.4)])
def test_dropout_masks_are_variational(rng, dropout, recurrent_dropout):
    layer = LSTM(
        UNITS, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=3, return_sequences=True
    )
    layer.build((BATCH, TIME, FEATURES))
    x = _x(rng)
    got = layer(x, training=True)
    # Masks are drawn input first, then recurrent, from SeedGenerator(seed).
    gen = keras.random.SeedGenerator(3)
    x_mask = None
    if dropout:
        x_mask = keras.random.dropout(tf.ones((BATCH, FEATURES)), dropout, seed=gen).numpy()
    h_mask = keras.random.dropout(tf.ones((BATCH, UNITS)), recurrent_dropout, seed=gen).numpy()
    np.testing.assert_allclose(np.unique(h_mask), [0.0, 1.0 / (1.0 - recurrent_dropout)], rtol=1e-6)
    want = np_lstm(x, *layer.get_weights(), x_mask=x_mask, h_mask=h_mask)[0]
    np.testing.assert_allclose(got, want, atol=TOL)
    plain = np_lstm(x, *layer.get_weights())[0]
    assert np.abs(got[:, 1:] - plain[:, 1:]).max() > 1e-3
    if not dropout:
        # h0 = 0, so recurrent dropout cannot affect the first step.
        np.testing.assert_allclose(got[:, 0], plain[:, 0], atol=TOL)


@pytest.mark.parametrize("kwargs", [{"dropout": 0.5}, {"recurrent_dropout": 0.5}])
def test_dropout_repeatable_with_seed(rng, kwargs):
    x = _x(rng)
    layers = []
    for _ in range(2):
        layer = LSTM(UNITS, seed=11, return_sequences=True, **kwargs)
        layer.build(x.shape)
        layers.append(layer)
    layers[1].set_weights(layers[0].get_weights())
    first = layers[0](x, training=True)
    np.testing.assert_array_equal(first, layers[1](x, training=True))
    # The generator advances: the next batch gets a fresh mask.
    assert np.abs(layers[0](x, training=True) - first).max() > 1e-4


def _all_kwargs():
    return {
        "units": 7,
        "activation": "relu",
        "recurrent_activation": "hard_sigmoid",
        "use_bias": False,
        "kernel_initializer": "he_normal",
        "recurrent_initializer": keras.initializers.Constant(0.3),
        "bias_initializer": "ones",
        "unit_forget_bias": False,
        "kernel_regularizer": keras.regularizers.L2(0.1),
        "recurrent_regularizer": "l1",
        "bias_regularizer": "l2",
        "dropout": 0.1,
        "recurrent_dropout": 0.2,
        "seed": 5,
        "return_sequences": True,
        "return_state": True,
        "stateful": True,
    }


def test_get_config_covers_every_argument_and_round_trips(rng):
    params = set(inspect.signature(LSTM.__init__).parameters) - {"self", "kwargs"}
    layer = LSTM(**_all_kwargs(), name="my_lstm")
    config = layer.get_config()
    assert params <= set(config)
    for key in ("units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias"):
        assert config[key] == _all_kwargs()[key]
    for key in ("dropout", "recurrent_dropout", "seed", "return_sequences", "return_state"):
        assert config[key] == _all_kwargs()[key]
    assert config["stateful"] is True and config["name"] == "my_lstm"
    clone = LSTM.from_config(config)
    assert clone.get_config() == config

    original = LSTM(5, return_sequences=True, unit_forget_bias=False, activation="relu")
    x = _x(rng)
    original(x)
    copy = LSTM.from_config(original.get_config())
    copy.build(x.shape)
    copy.set_weights(original.get_weights())
    np.testing.assert_array_equal(copy(x), original(x))


@pytest.mark.parametrize("safe_mode", [None, True])
def test_keras_file_round_trip(rng, tmp_path, safe_mode):
    inputs = keras.Input((None, FEATURES))
    hidden = LSTM(5, return_sequences=True, dropout=0.2, recurrent_dropout=0.1, seed=1)(inputs)
    outputs = keras.layers.Dense(2)(LSTM(3, kernel_regularizer="l2")(hidden))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "model.keras"
    model.save(path)
    kwargs = {} if safe_mode is None else {"safe_mode": safe_mode}
    loaded = keras.models.load_model(path, **kwargs)
    assert [type(layer) for layer in loaded.layers[1:3]] == [LSTM, LSTM]
    assert keras.saving.get_registered_name(LSTM) == "textpredict>LSTM"
    x = _x(rng, time=7)
    np.testing.assert_array_equal(loaded(x), model(x))
    assert loaded.layers[1].get_config() == model.layers[1].get_config()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"units": 0}, "units"),
        ({"units": -3}, "units"),
        ({"units": 2.5}, "units"),
        ({"units": "8"}, "units"),
        ({"units": True}, "units"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": "0.5"}, "dropout"),
        ({"recurrent_dropout": 1.5}, "recurrent_dropout"),
        ({"activation": "no_such_activation"}, "activation"),
        ({"recurrent_activation": "no_such_activation"}, "recurrent_activation"),
        ({"kernel_initializer": "no_such_init"}, "kernel_initializer"),
        ({"recurrent_initializer": None}, "recurrent_initializer"),
        ({"bias_regularizer": "no_such_reg"}, "bias_regularizer"),
        ({"seed": "abc"}, "seed"),
        ({"use_bias": "yes"}, "use_bias"),
        ({"unit_forget_bias": 1}, "unit_forget_bias"),
        ({"return_sequences": None}, "return_sequences"),
        ({"return_state": "no"}, "return_state"),
        ({"stateful": 0}, "stateful"),
    ],
)
def test_argument_validation_names_argument_and_value(kwargs, name):
    kwargs = {"units": 4, **kwargs}
    value = kwargs[name]
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        LSTM(**kwargs)
    assert f"{name}={value!r}" in str(info.value)


def test_call_validation(rng):
    layer = LSTM(UNITS)
    layer(_x(rng))
    with pytest.raises(ValueError, match="ndim=3"):
        layer(np.zeros((BATCH, FEATURES), "float32"))
    with pytest.raises(ValueError, match="axis -1"):
        layer(np.zeros((BATCH, TIME, FEATURES + 1), "float32"))
    with pytest.raises(ValueError, match="2 initial states"):
        layer(_x(rng), initial_state=[np.zeros((BATCH, UNITS), "float32")])


def test_jit_compile_with_unknown_batch_and_time(rng):
    layer = LSTM(UNITS, return_sequences=True, return_state=True)
    layer.build((None, None, FEATURES))

    def forward_backward(x, mask):
        with tf.GradientTape() as tape:
            tape.watch(x)
            seq, h, c = layer(x, mask=mask)
            loss = tf.reduce_sum(seq**2) + tf.reduce_sum(h * c)
        return seq, tape.gradient(loss, [x, *layer.trainable_weights])

    spec = [tf.TensorSpec((None, None, FEATURES)), tf.TensorSpec((None, None), tf.bool)]
    compiled = tf.function(forward_backward, jit_compile=True, input_signature=spec)
    for batch, time in [(3, 5), (2, 7)]:
        x = tf.constant(_x(rng, batch=batch, time=time))
        mask = tf.constant(np.arange(time)[None, :] < rng.integers(1, time + 1, (batch, 1)))
        got_seq, got_grads = compiled(x, mask)
        want_seq, want_grads = forward_backward(x, mask)
        assert got_seq.shape == (batch, time, UNITS)
        np.testing.assert_allclose(got_seq, want_seq, atol=TOL)
        for a, b in zip(got_grads, want_grads, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_functional_api_shapes_and_mask_propagation():
    tokens = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, FEATURES, mask_zero=True)(tokens)
    seq, h, c = LSTM(UNITS, return_sequences=True, return_state=True)(embedded)
    assert tuple(seq.shape) == (None, None, UNITS)
    assert tuple(h.shape) == tuple(c.shape) == (None, UNITS)
    last = LSTM(2)(seq)
    model = keras.Model(tokens, last)
    padded = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    np.testing.assert_allclose(model(padded), model(padded[:, :3]), atol=TOL)


def test_hook_design_supports_other_cells(rng):
    # A SimpleRNN written only by overriding `step` matches keras.layers.SimpleRNN.
    class TinySimpleRNN(Recurrent):
        gates = 1

        def step(self, x_proj, h_proj, states):
            h = self.activation(x_proj + h_proj)
            return h, (h,)

    ours = TinySimpleRNN(UNITS, return_sequences=True)
    ref = keras.layers.SimpleRNN(UNITS, return_sequences=True)
    x = _x(rng)
    ours.build(x.shape)
    ref.build(x.shape)
    ref.set_weights([rng.standard_normal(w.shape).astype("float32") for w in ref.get_weights()])
    ours.set_weights(ref.get_weights())
    mask = np.arange(TIME)[None, :] < np.array([5, 2, 4])[:, None]
    np.testing.assert_allclose(ours(x, mask=mask), ref(x, mask=mask), atol=TOL)


def test_written_by_hand_not_wrapping_keras():
    assert not issubclass(LSTM, (keras.layers.RNN, keras.layers.LSTM, keras.layers.LSTMCell))
    layer = LSTM(UNITS, kernel_regularizer="l2", recurrent_regularizer="l2", bias_regularizer="l2")
    layer.build((BATCH, TIME, FEATURES))
    assert [w.shape for w in layer.weights] == [
        (FEATURES, 4 * UNITS),
        (UNITS, 4 * UNITS),
        (4 * UNITS,),
    ]
    assert len(layer.losses) == 3


def test_importing_the_package_chooses_onednn_kernels_unless_told_otherwise():
    import os
    import subprocess
    import sys

    code = "import os, textpredict; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    kept = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "TF_ENABLE_ONEDNN_OPTS": "0"},
        capture_output=True,
        text=True,
    )
    assert (chosen.stdout.strip(), kept.stdout.strip()) == ("1", "0")
