"""Long Short-Term Memory layer written out by hand on top of `Recurrent`."""

import keras
import tensorflow as tf

from textpredict.layers.recurrent import Recurrent, _check_bool, _lookup


@keras.saving.register_keras_serializable(package="textpredict")
class LSTM(Recurrent):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber, 1997).

    At every time step, with `σ = recurrent_activation` (sigmoid) and
    `tanh = activation`:

        i_t = σ(W_i x_t + U_i h_{t-1} + b_i)          input gate
        f_t = σ(W_f x_t + U_f h_{t-1} + b_f)          forget gate
        c̃_t = tanh(W_c x_t + U_c h_{t-1} + b_c)       candidate values
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t               cell-state update
        o_t = σ(W_o x_t + U_o h_{t-1} + b_o)          output gate
        h_t = o_t ⊙ tanh(c_t)                         hidden state / output

    The four gates are fused along the last axis of `kernel (input_dim, 4 *
    units)`, `recurrent_kernel (units, 4 * units)` and `bias (4 * units,)` in
    Keras's order **i, f, c, o**, so
    `layer.set_weights(keras.layers.LSTM(units).get_weights())` makes both
    layers compute the same function. Masking, dropout, `stateful`,
    `initial_state` and the returned values follow `keras.layers.LSTM`, with
    one difference: with `recurrent_dropout > 0`, Keras switches to separate
    dropout masks per gate, whereas this layer keeps one input mask and one
    recurrent mask shared by all gates (and all time steps), so each step stays
    a single fused matrix product.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation for the candidate values and for `c_t` in
            `h_t`. Default: `"tanh"`.
        recurrent_activation: Activation for the i, f and o gates.
            Default: `"sigmoid"`.
        use_bias: Boolean, whether the layer uses a bias vector.
        kernel_initializer: Initializer for `kernel`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
            Default: `"orthogonal"`.
        bias_initializer: Initializer for `bias`. Default: `"zeros"`.
        unit_forget_bias: Boolean. If True, the forget-gate slice of the bias is
            initialised to 1 instead of `bias_initializer` (Jozefowicz et al.,
            2015), so the cell remembers by default early in training.
        kernel_regularizer: Regularizer applied to `kernel`.
        recurrent_regularizer: Regularizer applied to `recurrent_kernel`.
        bias_regularizer: Regularizer applied to `bias`.
        dropout: Float in [0, 1). Fraction of the input features to drop (one
            mask per sequence, reused at every step). Default: 0.
        recurrent_dropout: Float in [0, 1). Fraction of `h_{t-1}` to drop before
            the recurrent projection (one mask per sequence). Default: 0.
        seed: Integer seed for the dropout masks, or None.
        return_sequences: Boolean, return the full sequence of outputs.
        return_state: Boolean, also return the final `h` and `c`.
        stateful: Boolean. If True, the final `h`, `c` of a batch become the
            initial states of the next batch (truncated backpropagation through
            time over consecutive windows). Requires a fixed batch size; call
            `reset_states()` between independent sequences.
        gradient: `"hand"` (default): backpropagation through time uses the
            hand-derived gradient in `step_gradient` (with the default
            activations); `"autodiff"`: TensorFlow differentiates `step`.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`, ...).

    Call arguments:
        sequences: Float tensor of shape `(batch, time, features)`.
        initial_state: Optional list `[h0, c0]`, each `(batch, units)`.
        mask: Optional boolean tensor `(batch, time)`; False marks padding.
            Masked steps keep `h` and `c` unchanged and output the previous
            step's output (zeros before the first unmasked step).
        training: Python boolean; dropout is applied only when True.

    Returns:
        `(batch, units)`, or `(batch, time, units)` with `return_sequences`.
        With `return_state`, the list `[output, h, c]`.

    Example:

    >>> x = np.random.random((32, 10, 8)).astype("float32")
    >>> LSTM(4)(x).shape
    TensorShape([32, 4])
    >>> seq, h, c = LSTM(4, return_sequences=True, return_state=True)(x)
    >>> seq.shape, h.shape, c.shape
    (TensorShape([32, 10, 4]), TensorShape([32, 4]), TensorShape([32, 4]))
    """

    gates = 4
    #: Which `units`-wide block of the fused weights is the forget gate.
    forget_gate = 1

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        stateful=False,
        gradient="hand",
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            return_sequences=return_sequences,
            return_state=return_state,
            stateful=stateful,
            gradient=gradient,
            **kwargs,
        )
        self.recurrent_activation = _lookup(
            keras.activations.get, "recurrent_activation", recurrent_activation
        )
        self.unit_forget_bias = _check_bool("unit_forget_bias", unit_forget_bias)

    @property
    def state_size(self):
        return (self.units, self.units)  # (h, c)

    def bias_initializer_for_build(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units
        before, after = self.forget_gate, self.gates - self.forget_gate - 1

        # Same layout as Keras: [init(i), ones(f), init(c), init(o)]; the two
        # calls of `base` (not one per gate) keep random initialisers equal to Keras's.
        def initializer(shape, dtype=None):
            parts = [
                base((before * units,), dtype=dtype) if before else None,
                tf.ones((units,), dtype=dtype),
                base((after * units,), dtype=dtype) if after else None,
            ]
            return tf.concat([part for part in parts if part is not None], axis=0)

        return initializer

    def step(self, x_proj, h_proj, states):
        _, c_prev = states
        z = x_proj + h_proj
        # σ in one pass over all four blocks (the candidate block's result is unused):
        # XLA on a CPU runs one wide element-wise op much faster than three narrow ones.
        i, f, _, o = tf.split(self.recurrent_activation(z), 4, axis=-1)  # input, forget, output
        c_tilde = self.activation(z[:, 2 * self.units : 3 * self.units])  # candidate values
        c = f * c_prev + i * c_tilde  # cell-state update
        h = o * self.activation(c)
        return h, (h, c)

    def gate_values(self, x_proj, h_proj, states):
        """The gates of one step by name, as `step` computes them (for inspection)."""
        z_i, z_f, _, z_o = tf.split(x_proj + h_proj, 4, axis=-1)
        gate = self.recurrent_activation
        return {"forget": gate(z_f), "input": gate(z_i), "output": gate(z_o)}

    def has_hand_gradient(self):
        # The derivatives below are those of sigmoid and tanh.
        return (
            self.activation is keras.activations.tanh
            and self.recurrent_activation is keras.activations.sigmoid
        )

    def step_gradient(self, x_proj, h_proj, states, d_new_states):
        """Backward pass of `step` (sigmoid gates, tanh activation).

        With δh_t and δc_t the gradients arriving from later steps and outputs:

            δc_t  += δh_t ⊙ o_t ⊙ (1 − tanh²(c_t))
            δz_o   = δh_t ⊙ tanh(c_t) ⊙ o_t (1 − o_t)
            δz_i   = δc_t ⊙ c̃_t ⊙ i_t (1 − i_t)
            δz_f   = δc_t ⊙ c_{t-1} ⊙ f_t (1 − f_t)
            δz_c   = δc_t ⊙ i_t ⊙ (1 − c̃_t²)
            δc_{t-1} = δc_t ⊙ f_t

        The last line is the "constant error carousel": along the cell state,
        the error is only scaled by the forget gate, with no squashing
        derivative, so it survives long gaps while f_t stays near 1. h_{t-1}
        gets its gradient only through z = … + U h_{t-1}, which the time loop
        handles.
        """
        _, c_prev = states
        d_h, d_c = d_new_states
        z = x_proj + h_proj
        i, f, _, o = tf.split(tf.sigmoid(z), 4, axis=-1)  # one wide op, as in `step`
        c_tilde = tf.tanh(z[:, 2 * self.units : 3 * self.units])
        tanh_c = tf.tanh(f * c_prev + i * c_tilde)
        d_c = d_c + d_h * o * (1.0 - tanh_c * tanh_c)
        d_z = tf.concat(
            [
                d_c * c_tilde * i * (1.0 - i),
                d_c * c_prev * f * (1.0 - f),
                d_c * i * (1.0 - c_tilde * c_tilde),
                d_h * tanh_c * o * (1.0 - o),
            ],
            axis=-1,
        )
        return d_z, None, (None, d_c * f)

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }
        return {**super().get_config(), **config}
