"""Tests for the recurrent-cell variants: PeepholeLSTM, CIFG, GRU, SimpleRNN.

References, independent of the layers under test: keras.layers.GRU and
SimpleRNN with copied weights, TensorFlow's fused `BlockLSTMV2` op with
peepholes, numpy implementations of the equations, and numbers computed by
hand for one-unit cells. The hand-derived backward passes are checked against
TensorFlow's differentiation of the same `step`.
"""

import inspect
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import textpredict
from textpredict.layers import CIFG, GRU, LSTM, PeepholeLSTM, SimpleRNN

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 6
TOL = 1e-5
VARIANTS = [PeepholeLSTM, CIFG, GRU, SimpleRNN]
HAND_GRADIENT = [PeepholeLSTM, CIFG, GRU, SimpleRNN]
STATES = {LSTM: 2, PeepholeLSTM: 2, CIFG: 2, GRU: 1, SimpleRNN: 1}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _x(rng, batch=BATCH, time=TIME, features=FEATURES):
    return rng.standard_normal((batch, time, features)).astype("float32")


def _random_weights(layer, rng, scale=0.5):
    layer.set_weights(
        [rng.standard_normal(w.shape).astype("float32") * scale for w in layer.get_weights()]
    )


def _mask(lengths, time=TIME):
    return tf.constant(np.arange(time)[None, :] < np.array(lengths)[:, None])


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _outputs_and_gradients(layer, x, projections, initial_state=None, **call_kwargs):
    """Outputs, and gradients of a fixed random projection of them with respect
    to x, the initial states and the layer's weights."""
    x = tf.convert_to_tensor(x)
    if initial_state is not None:
        initial_state = [tf.convert_to_tensor(s) for s in initial_state]
    with tf.GradientTape() as tape:
        tape.watch([x, *(initial_state or [])])
        outs = layer(x, initial_state=initial_state, **call_kwargs)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        loss = sum(tf.reduce_sum(o * p) for o, p in zip(outs, projections, strict=True))
    sources = [x, *(initial_state or []), *layer.trainable_weights]
    return outs, tape.gradient(loss, sources)


def _projections(rng, layer, n_states, time=TIME):
    output = (BATCH, time, UNITS) if layer.return_sequences else (BATCH, UNITS)
    shapes = [output] + [(BATCH, UNITS)] * (n_states if layer.return_state else 0)
    return [rng.standard_normal(shape).astype("float32") for shape in shapes]


def _assert_all_close(got, want, tol=TOL):
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a is not None and b is not None
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=tol, rtol=tol)


# --- Keras compatibility: GRU and SimpleRNN -------------------------------------------

KERAS_CASES = [
    ({}, False, None),
    ({"return_sequences": True}, False, [5, 3, 1]),
    ({"return_sequences": True, "return_state": True}, True, None),
    # A fully padded row: the output stays zero while the state is h0.
    ({"return_sequences": True, "return_state": True}, True, [5, 2, 0]),
    ({"return_state": True}, False, [4, 1, 3]),
    ({"use_bias": False, "return_sequences": True}, True, [3, 5, 2]),
]


@pytest.mark.parametrize(
    "ours_cls, keras_cls", [(GRU, keras.layers.GRU), (SimpleRNN, keras.layers.SimpleRNN)]
)
@pytest.mark.parametrize("layer_kwargs, use_initial_state, lengths", KERAS_CASES)
def test_matches_keras_outputs_and_gradients(
    rng, ours_cls, keras_cls, layer_kwargs, use_initial_state, lengths
):
    ours, ref = ours_cls(UNITS, **layer_kwargs), keras_cls(UNITS, **layer_kwargs)
    for layer in (ours, ref):
        layer.build((BATCH, TIME, FEATURES))
    _random_weights(ref, rng)  # every gate slice and both bias rows matter
    ours.set_weights(ref.get_weights())
    assert [w.shape for w in ours.weights] == [w.shape for w in ref.weights]
    x = _x(rng)
    h0 = [rng.standard_normal((BATCH, UNITS)).astype("float32")] if use_initial_state else None
    mask = None if lengths is None else _mask(lengths)
    projections = _projections(rng, ours, 1)
    got = _outputs_and_gradients(ours, x, projections, h0, mask=mask)
    want = _outputs_and_gradients(ref, x, projections, h0, mask=mask)
    _assert_all_close(got[0], want[0])
    _assert_all_close(got[1], want[1])


def test_gru_bias_layout_is_keras_reset_after():
    layer = GRU(UNITS)
    layer.build((BATCH, TIME, FEATURES))
    assert [w.shape for w in layer.weights] == [
        (FEATURES, 3 * UNITS),
        (UNITS, 3 * UNITS),
        (2, 3 * UNITS),
    ]
    assert keras.layers.GRU(UNITS).reset_after  # the Keras default we match


@pytest.mark.parametrize("cls", [GRU, SimpleRNN])
def test_input_dropout_matches_keras_mask_for_same_seed(rng, cls):
    # One (batch, features) mask from the same seed; Keras's GRU also draws one
    # mask for all gates when only `dropout` is set.
    keras_cls = {GRU: keras.layers.GRU, SimpleRNN: keras.layers.SimpleRNN}[cls]
    ours = cls(UNITS, dropout=0.4, seed=7, return_sequences=True)
    ref = keras_cls(UNITS, dropout=0.4, seed=7, return_sequences=True)
    for layer in (ours, ref):
        layer.build((BATCH, TIME, FEATURES))
    ours.set_weights(ref.get_weights())
    x = _x(rng)
    np.testing.assert_allclose(ours(x, training=True), ref(x, training=True), atol=TOL)


# --- PeepholeLSTM ---------------------------------------------------------------------


def test_peephole_lstm_with_zero_peepholes_equals_lstm(rng):
    kwargs = {"return_sequences": True, "return_state": True}
    peephole, lstm = PeepholeLSTM(UNITS, **kwargs), LSTM(UNITS, **kwargs)
    for layer in (peephole, lstm):
        layer.build((BATCH, TIME, FEATURES))
    _random_weights(lstm, rng)
    peephole.set_weights([*lstm.get_weights(), *np.zeros((3, UNITS), "float32")])
    x = _x(rng)
    h0 = [rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(2)]
    mask = _mask([5, 2, 0])
    projections = _projections(rng, lstm, 2)
    got_out, got_grads = _outputs_and_gradients(peephole, x, projections, h0, mask=mask)
    want_out, want_grads = _outputs_and_gradients(lstm, x, projections, h0, mask=mask)
    _assert_all_close(got_out, want_out)
    # x, h0, c0, kernel, recurrent_kernel, bias; then the peepholes' own gradients.
    _assert_all_close(got_grads[:6], want_grads)
    assert len(got_grads) == 9 and all(np.any(g != 0) for g in got_grads[6:])


def test_peephole_weights_and_default_initializer():
    layer = PeepholeLSTM(UNITS)
    layer.build((BATCH, TIME, FEATURES))
    names = [w.path.split("/")[-1] for w in layer.weights]
    assert names == [
        "kernel",
        "recurrent_kernel",
        "bias",
        "input_gate_peephole_weights",
        "forget_gate_peephole_weights",
        "output_gate_peephole_weights",
    ]
    for weight in layer.weights[3:]:
        np.testing.assert_array_equal(weight.numpy(), 0.0)
    assert layer.has_hand_gradient()
    assert isinstance(layer, LSTM)


def np_peephole_lstm(x, h0, c0, kernel, recurrent_kernel, bias, p_i, p_f, p_o):
    """Numpy reference of the peephole LSTM equations (gate order i, f, c, o)."""
    h, c, outputs = h0, c0, []
    for t in range(x.shape[1]):
        z_i, z_f, z_c, z_o = np.split(x[:, t] @ kernel + h @ recurrent_kernel + bias, 4, axis=1)
        c_new = _sigmoid(z_f + p_f * c) * c + _sigmoid(z_i + p_i * c) * np.tanh(z_c)
        h = _sigmoid(z_o + p_o * c_new) * np.tanh(c_new)
        c = c_new
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def _block_lstm(x, h0, c0, kernel, recurrent_kernel, bias, p_i, p_f, p_o):
    """TensorFlow's fused LSTM op with peepholes, batch-major in and out.

    BlockLSTMV2 (unlike BlockLSTM) uses Keras's gate order i, f, c, o (its
    docstring: "this op uses IFCO"), so the fused weights pass unchanged;
    its `w` stacks the input and recurrent kernels, `[x, h] @ w`.
    """
    out = tf.raw_ops.BlockLSTMV2(
        seq_len_max=tf.constant(x.shape[1], tf.int64),
        x=tf.transpose(x, [1, 0, 2]),
        cs_prev=c0,
        h_prev=h0,
        w=tf.concat([kernel, recurrent_kernel], axis=0),
        wci=p_i,
        wcf=p_f,
        wco=p_o,
        b=bias,
        cell_clip=-1.0,  # no clipping
        use_peephole=True,
    )
    return tf.transpose(out.h, [1, 0, 2]), out.h[-1], out.cs[-1]


def _finite_differences(f, arrays, eps=1e-6):
    """Central differences of the scalar f(*arrays) for every entry of every array."""
    arrays = [a.astype("float64") for a in arrays]
    gradients = []
    for a in arrays:
        gradient = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            saved = a[index]
            a[index] = saved + eps
            up = f(*arrays)
            a[index] = saved - eps
            gradient[index] = (up - f(*arrays)) / (2 * eps)
            a[index] = saved
        gradients.append(gradient)
    return gradients


def test_peephole_lstm_matches_block_lstm_and_finite_differences(rng):
    layer = PeepholeLSTM(UNITS, return_sequences=True, return_state=True)
    layer.build((BATCH, TIME, FEATURES))
    _random_weights(layer, rng)  # peepholes included, each gate's its own
    x = _x(rng)
    h0, c0 = (rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in "hc")
    projections = _projections(rng, layer, 2)
    got, got_grads = _outputs_and_gradients(layer, x, projections, [h0, c0])

    # Outputs: TensorFlow's fused kernel. (Its registered gradient disagrees
    # with finite differences even without peepholes, so it is no reference
    # for the backward pass.)
    _assert_all_close(got, _block_lstm(x, h0, c0, *layer.get_weights()))

    # Gradients: finite differences of the numpy equations, in float64.
    def loss(x, h0, c0, *weights):
        outs = np_peephole_lstm(x, h0, c0, *weights)
        return sum(np.sum(o * p) for o, p in zip(outs, projections, strict=True))

    want_grads = _finite_differences(loss, [x, h0, c0, *layer.get_weights()])
    assert [g.shape for g in got_grads] == [g.shape for g in want_grads]
    _assert_all_close(got_grads, want_grads, tol=1e-4)


def test_peephole_lstm_frozen_numbers():
    layer = PeepholeLSTM(
        1,
        kernel_initializer=keras.initializers.Constant(0.5),
        recurrent_initializer=keras.initializers.Constant(0.25),
        return_sequences=True,
        return_state=True,
    )
    layer.build((1, 3, 1))
    p_i, p_f, p_o = 0.3, -0.4, 0.6
    for weight, value in zip(layer.weights[3:], (p_i, p_f, p_o), strict=True):
        weight.assign([value])
    x = np.array([[[1.0], [0.5], [-1.0]]], dtype="float32")
    seq, h, c = layer(x)

    # By hand: z = 0.5 x_t + 0.25 h_{t-1} for every gate, plus 1 for f (unit_forget_bias).
    s = _sigmoid
    h_t = c_t = 0.0
    want = []
    for x_t in (1.0, 0.5, -1.0):
        z = 0.5 * x_t + 0.25 * h_t
        i, f = s(z + p_i * c_t), s(z + 1.0 + p_f * c_t)
        c_t = f * c_t + i * math.tanh(z)
        h_t = s(z + p_o * c_t) * math.tanh(c_t)
        want.append(h_t)
    np.testing.assert_allclose(seq[0, :, 0], want, rtol=1e-6)
    # The same, frozen (computed once from the equations above).
    np.testing.assert_allclose(
        seq[0, :, 0], [0.18536307174570418, 0.23456612173129313, 0.02412838463355852], rtol=1e-6
    )
    np.testing.assert_allclose(
        [h[0, 0], c[0, 0]], [0.02412838463355852, 0.06038208434717207], rtol=1e-6
    )


# --- CIFG -----------------------------------------------------------------------------


def np_cifg(x, kernel, recurrent_kernel, bias, h0, c0, mask):
    """Numpy reference of the CIFG equations (gate order f, c, o; i = 1 − f)."""
    h, c = h0.astype("float64"), c0.astype("float64")
    out, outputs = np.zeros_like(h), []
    for t in range(x.shape[1]):
        z_f, z_c, z_o = np.split(x[:, t] @ kernel + h @ recurrent_kernel + bias, 3, axis=1)
        f = _sigmoid(z_f)
        c_new = f * c + (1.0 - f) * np.tanh(z_c)
        h_new = _sigmoid(z_o) * np.tanh(c_new)
        keep = mask[:, t, None]
        out = np.where(keep, h_new, out)
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        outputs.append(out)
    return np.stack(outputs, axis=1), h, c


def test_cifg_matches_numpy_reference(rng):
    layer = CIFG(UNITS, return_sequences=True, return_state=True)
    layer.build((BATCH, TIME, FEATURES))
    _random_weights(layer, rng, scale=1.0)
    assert [w.shape for w in layer.weights] == [
        (FEATURES, 3 * UNITS),
        (UNITS, 3 * UNITS),
        (3 * UNITS,),
    ]
    x = _x(rng)
    mask = np.arange(TIME)[None, :] < np.array([5, 3, 0])[:, None]
    h0, c0 = (rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in "hc")
    got = layer(x, mask=mask, initial_state=[h0, c0])
    _assert_all_close(got, np_cifg(x, *layer.get_weights(), h0, c0, mask))


def test_cifg_is_an_lstm_whose_input_gate_is_one_minus_forget(rng):
    # An LSTM given the CIFG's weights, with the input gate's pre-activation
    # set to −z_f (σ(−z) = 1 − σ(z)), computes the same function.
    cifg = CIFG(UNITS, return_sequences=True)
    cifg.build((BATCH, TIME, FEATURES))
    _random_weights(cifg, rng)
    lstm = LSTM(UNITS, return_sequences=True)
    lstm.build((BATCH, TIME, FEATURES))
    lstm_weights = []
    for weight in cifg.get_weights():
        f, c, o = np.split(weight, 3, axis=-1)
        lstm_weights.append(np.concatenate([-f, f, c, o], axis=-1))
    lstm.set_weights(lstm_weights)
    x = _x(rng)
    np.testing.assert_allclose(cifg(x), lstm(x), atol=TOL)


def test_cifg_unit_forget_bias_sets_its_first_block():
    layer = CIFG(UNITS, bias_initializer=keras.initializers.Constant(0.5))
    layer.build((BATCH, TIME, FEATURES))
    bias = layer.bias.numpy().reshape(3, UNITS)  # rows: f, c, o
    np.testing.assert_array_equal(bias[0], 1.0)
    np.testing.assert_array_equal(bias[1:], 0.5)
    plain = CIFG(UNITS, unit_forget_bias=False, bias_initializer="ones")
    plain.build((BATCH, TIME, FEATURES))
    np.testing.assert_array_equal(plain.bias.numpy(), 1.0)


def test_cifg_frozen_numbers():
    layer = CIFG(
        1,
        kernel_initializer=keras.initializers.Constant(0.5),
        recurrent_initializer=keras.initializers.Constant(0.25),
        return_sequences=True,
        return_state=True,
    )
    x = np.array([[[1.0], [0.5], [-1.0]]], dtype="float32")
    seq, h, c = layer(x)
    # Step 1 by hand (h0 = c0 = 0, forget bias 1): z = 0.5 for every gate, +1 for f.
    s = _sigmoid
    c1 = (1.0 - s(1.5)) * math.tanh(0.5)
    h1 = s(0.5) * math.tanh(c1)
    z2 = 0.25 + 0.25 * h1
    c2 = s(z2 + 1.0) * c1 + (1.0 - s(z2 + 1.0)) * math.tanh(z2)
    h2 = s(z2) * math.tanh(c2)
    np.testing.assert_allclose(seq[0, :2, 0], [h1, h2], rtol=1e-6)
    # The whole sequence, frozen (computed once from the equations).
    np.testing.assert_allclose(
        seq[0, :, 0], [0.05235058771973495, 0.06886748626802758, -0.03455931028940322], rtol=1e-6
    )
    np.testing.assert_allclose(
        [h[0, 0], c[0, 0]], [-0.03455931028940322, -0.09081421654766161], rtol=1e-6
    )


# --- hand-derived gradients -----------------------------------------------------------

HAND_CASES = [
    ({"return_sequences": True, "return_state": True}, True, [5, 2, 0]),
    ({"return_state": True}, False, None),
    ({"dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True}, True, [5, 3, 4]),
    # Unmasked: the backward pass reads h_{t-1} ⊙ m_h back from the outputs.
    ({"dropout": 0.3, "recurrent_dropout": 0.4, "return_state": True}, True, None),
    ({"recurrent_dropout": 0.4, "return_sequences": True}, False, None),
]


@pytest.mark.parametrize("cls", HAND_GRADIENT)
@pytest.mark.parametrize("layer_kwargs, use_initial_state, lengths", HAND_CASES)
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "xla-training-step"])
def test_hand_gradient_matches_autodiff(rng, cls, layer_kwargs, use_initial_state, lengths, traced):
    """Traced with `training=True`, the loop runs XLA-compiled, as inside `fit`."""
    _check_hand_gradient(rng, cls, layer_kwargs, use_initial_state, lengths, traced)


@pytest.mark.parametrize("cls", [LSTM, *HAND_GRADIENT])
@pytest.mark.parametrize("layer_kwargs, use_initial_state, lengths", HAND_CASES[2:4])
def test_either_prefetch_setting_matches_autodiff(
    rng, cls, layer_kwargs, use_initial_state, lengths
):
    """`prefetch_inputs` changes XLA's code, not the result: the compiled
    training step with the setting opposite to the class's (whose own is
    tested above) still gives autodiff's outputs and gradients."""
    _check_hand_gradient(
        rng, cls, layer_kwargs, use_initial_state, lengths, True, prefetch=not cls.prefetch_inputs
    )


def _check_hand_gradient(rng, cls, layer_kwargs, use_initial_state, lengths, traced, prefetch=None):
    # The same seed gives both layers the same dropout masks.
    hand = cls(UNITS, gradient="hand", seed=3, **layer_kwargs)
    if prefetch is not None:
        hand.prefetch_inputs = prefetch
    auto = cls(UNITS, gradient="autodiff", seed=3, **layer_kwargs)
    for layer in (hand, auto):
        layer.build((BATCH, TIME, FEATURES))
    _random_weights(auto, rng)
    hand.set_weights(auto.get_weights())
    assert hand.has_hand_gradient()
    x = _x(rng)
    h0 = None
    if use_initial_state:
        h0 = [rng.standard_normal((BATCH, UNITS)).astype("float32") for _ in range(STATES[cls])]
    mask = None if lengths is None else _mask(lengths)
    projections = _projections(rng, hand, STATES[cls])

    def run(layer):
        def compute(x):
            return _outputs_and_gradients(layer, x, projections, h0, mask=mask, training=traced)

        return tf.function(compute)(x) if traced else compute(x)

    (hand_out, hand_grads), (auto_out, auto_grads) = run(hand), run(auto)
    _assert_all_close(hand_out, auto_out)
    _assert_all_close(hand_grads, auto_grads)


def test_hand_gradient_only_for_the_activations_it_derives():
    for cls in HAND_GRADIENT:
        assert cls(UNITS).has_hand_gradient()
        assert not cls(UNITS, activation="relu").has_hand_gradient()
    for cls in (PeepholeLSTM, CIFG, GRU):
        assert not cls(UNITS, recurrent_activation="hard_sigmoid").has_hand_gradient()


def test_gru_jit_compile_with_unknown_batch_and_time(rng):
    layer = GRU(UNITS, return_sequences=True, return_state=True)
    layer.build((None, None, FEATURES))
    _random_weights(layer, rng)

    def forward_backward(x, mask):
        with tf.GradientTape() as tape:
            tape.watch(x)
            seq, h = layer(x, mask=mask)
            loss = tf.reduce_sum(seq**2) + tf.reduce_sum(h)
        return seq, tape.gradient(loss, [x, *layer.trainable_weights])

    spec = [tf.TensorSpec((None, None, FEATURES)), tf.TensorSpec((None, None), tf.bool)]
    compiled = tf.function(forward_backward, jit_compile=True, input_signature=spec)
    for batch, time in [(3, 5), (2, 7)]:
        x = tf.constant(_x(rng, batch=batch, time=time))
        mask = tf.constant(np.arange(time)[None, :] < rng.integers(1, time + 1, (batch, 1)))
        got_seq, got_grads = compiled(x, mask)
        want_seq, want_grads = forward_backward(x, mask)
        np.testing.assert_allclose(got_seq, want_seq, atol=TOL)
        _assert_all_close(got_grads, want_grads, tol=1e-4)


@pytest.mark.parametrize("cls", [GRU, PeepholeLSTM])
def test_reading_ahead_in_a_training_step_of_unknown_batch_and_time(rng, cls):
    """The read-ahead loop (`prefetch_inputs`, on for these cells) with shapes known
    only at run time, down to a single step: what `fit` runs on bucketed lines."""
    assert cls.prefetch_inputs
    layer = cls(UNITS, return_sequences=True, return_state=True)
    layer.build((None, None, FEATURES))
    _random_weights(layer, rng)

    def forward_backward(x, mask, training):
        with tf.GradientTape() as tape:
            tape.watch(x)
            seq, h, *_ = layer(x, mask=mask, training=training)
            loss = tf.reduce_sum(seq**2) + tf.reduce_sum(h)
        return seq, tape.gradient(loss, [x, *layer.trainable_weights])

    spec = [tf.TensorSpec((None, None, FEATURES)), tf.TensorSpec((None, None), tf.bool)]
    traced = tf.function(lambda x, mask: forward_backward(x, mask, True), input_signature=spec)
    for batch, time in [(3, 5), (2, 7), (4, 1)]:
        x = tf.constant(_x(rng, batch=batch, time=time))
        mask = tf.constant(np.arange(time)[None, :] < rng.integers(1, time + 1, (batch, 1)))
        got_seq, got_grads = traced(x, mask)
        want_seq, want_grads = forward_backward(x, mask, False)
        np.testing.assert_allclose(got_seq, want_seq, atol=TOL)
        _assert_all_close(got_grads, want_grads, tol=1e-4)


# --- what every variant shares ----------------------------------------------------------


def _constructor_arguments(cls):
    """Every argument a class accepts, its own and (through **kwargs) its bases'."""
    names = set()
    for klass in cls.__mro__:
        if klass is keras.layers.Layer:
            break
        if "__init__" in vars(klass):
            names |= set(inspect.signature(klass.__init__).parameters)
    return names - {"self", "kwargs"}


def _all_kwargs(cls):
    kwargs = {
        "units": 7,
        "activation": "relu",
        "use_bias": False,
        "kernel_initializer": "he_normal",
        "recurrent_initializer": keras.initializers.Constant(0.3),
        "bias_initializer": "ones",
        "kernel_regularizer": keras.regularizers.L2(0.1),
        "recurrent_regularizer": "l1",
        "bias_regularizer": "l2",
        "dropout": 0.1,
        "recurrent_dropout": 0.2,
        "seed": 5,
        "return_sequences": True,
        "return_state": True,
        "stateful": True,
        "gradient": "autodiff",
    }
    if cls is not SimpleRNN:
        kwargs["recurrent_activation"] = "hard_sigmoid"
    if issubclass(cls, LSTM):
        kwargs["unit_forget_bias"] = False
    if cls is PeepholeLSTM:
        kwargs["peephole_initializer"] = keras.initializers.RandomNormal(stddev=0.1, seed=2)
    assert set(kwargs) == _constructor_arguments(cls)
    return kwargs


@pytest.mark.parametrize("cls", VARIANTS)
def test_get_config_covers_every_argument_and_round_trips(rng, cls):
    kwargs = _all_kwargs(cls)
    config = cls(**kwargs, name="variant").get_config()
    assert set(kwargs) <= set(config) and config["name"] == "variant"
    for key in ("units", "activation", "use_bias", "dropout", "seed", "stateful", "gradient"):
        assert config[key] == kwargs[key]
    assert cls.from_config(config).get_config() == config

    original = cls(5, return_sequences=True, activation="relu", use_bias=False)
    x = _x(rng)
    original(x)
    copy = cls.from_config(original.get_config())
    copy.build(x.shape)
    copy.set_weights(original.get_weights())
    np.testing.assert_array_equal(copy(x), original(x))


@pytest.mark.parametrize("cls", VARIANTS)
def test_keras_file_round_trip_in_safe_mode(rng, tmp_path, cls):
    inputs = keras.Input((None, FEATURES))
    hidden = cls(5, return_sequences=True, recurrent_dropout=0.1, seed=1)(inputs)
    outputs = keras.layers.Dense(2)(cls(3, kernel_regularizer="l2")(hidden))
    model = keras.Model(inputs, outputs)
    for layer in model.layers[1:3]:
        _random_weights(layer, rng)  # non-zero peepholes and biases survive the trip too
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert [type(layer) for layer in loaded.layers[1:3]] == [cls, cls]
    assert keras.saving.get_registered_name(cls) == f"textpredict>{cls.__name__}"
    x = _x(rng, time=7)
    np.testing.assert_array_equal(loaded(x), model(x))
    assert loaded.layers[1].get_config() == model.layers[1].get_config()


@pytest.mark.parametrize("cls", VARIANTS)
def test_stateful_windows_equal_one_pass(rng, cls):
    x = _x(rng, batch=2, time=6)
    full = cls(UNITS, return_sequences=True, return_state=True)
    full.build(x.shape)
    _random_weights(full, rng)
    stateful = cls(UNITS, return_sequences=True, stateful=True)
    stateful.build((2, 3, FEATURES))
    stateful.set_weights(full.get_weights())
    want_seq, *want_states = full(x)
    got = np.concatenate([stateful(x[:, :3]), stateful(x[:, 3:])], axis=1)
    np.testing.assert_allclose(got, want_seq, atol=TOL)
    _assert_all_close([s.numpy() for s in stateful.states], want_states)


@pytest.mark.parametrize("cls", VARIANTS)
def test_exported_and_written_by_hand(cls):
    assert getattr(textpredict, cls.__name__) is cls
    assert not issubclass(cls, (keras.layers.RNN, keras.layers.LSTM, keras.layers.GRU))
    assert not issubclass(cls, keras.layers.SimpleRNN)
    with pytest.raises(ValueError, match="`units`"):
        cls(0)
    with pytest.raises(ValueError, match="gradient"):
        cls(UNITS, gradient="numeric")
