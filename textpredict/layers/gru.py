"""Gated Recurrent Unit, weight-compatible with `keras.layers.GRU(reset_after=True)`."""

import keras
import tensorflow as tf

from textpredict.layers.recurrent import Recurrent, _lookup


@keras.saving.register_keras_serializable(package="textpredict")
class GRU(Recurrent):
    """Gated Recurrent Unit (Cho et al., 2014), reset gate after the product.

    With `σ = recurrent_activation` (sigmoid), `tanh = activation`, input bias
    `b` and recurrent bias `b'`:

        z_t = σ(W_z x_t + b_z + U_z h_{t-1} + b'_z)            update gate
        r_t = σ(W_r x_t + b_r + U_r h_{t-1} + b'_r)            reset gate
        h̃_t = tanh(W_h x_t + b_h + r_t ⊙ (U_h h_{t-1} + b'_h))  candidate
        h_t = z_t ⊙ h_{t-1} + (1 − z_t) ⊙ h̃_t

    The reset gate scales the candidate's recurrent projection *after* the
    matrix product (the `reset_after=True` form of Keras and cuDNN), so all
    three gates share one `h_{t-1} @ recurrent_kernel` per step. That is also
    why `b'` exists: `r_t` multiplies `U_h h_{t-1} + b'_h`, so the recurrent
    bias cannot be folded into the input bias.

    Weights, in Keras's layout and gate order **z, r, h**: `kernel
    (input_dim, 3 * units)`, `recurrent_kernel (units, 3 * units)`, `bias
    (2, 3 * units)` with rows `b` and `b'`, so
    `layer.set_weights(keras.layers.GRU(units).get_weights())` makes both
    compute the same function. As for `LSTM`, recurrent dropout uses one mask
    shared by all gates, where Keras draws one per gate.

    Args:
        units: Positive integer, dimensionality of the output space.
        recurrent_activation: Activation for the update and reset gates.
            Default: `"sigmoid"`.
        **kwargs: Every other argument of `Recurrent` (`activation`,
            `use_bias`, the initializers and regularizers, `dropout`,
            `recurrent_dropout`, `seed`, `return_sequences`, `return_state`,
            `stateful`, `gradient`, ...), by keyword.

    Call arguments and return values are those of `Recurrent`, with a single
    state `h`.
    """

    gates = 3
    separate_recurrent_bias = True
    # Its compiled step reads x_proj at two offsets in one kernel (Recurrent.prefetch_inputs).
    prefetch_inputs = True

    def __init__(self, units, *, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = _lookup(
            keras.activations.get, "recurrent_activation", recurrent_activation
        )

    def step(self, x_proj, h_proj, states):
        (h_prev,) = states
        gates = 2 * self.units
        # Both gates in one pass of σ (one wide element-wise op runs faster than two).
        z, r = tf.split(self.recurrent_activation(x_proj[:, :gates] + h_proj[:, :gates]), 2, -1)
        h_tilde = self.activation(x_proj[:, gates:] + r * h_proj[:, gates:])  # recurrent bias in
        h = z * h_prev + (1.0 - z) * h_tilde
        return h, (h,)

    def gate_values(self, x_proj, h_proj, states):
        """The gates of one step by name, as `step` computes them (for inspection)."""
        x_z, x_r, _ = tf.split(x_proj, 3, axis=-1)
        u_z, u_r, _ = tf.split(h_proj, 3, axis=-1)
        return {
            "update": self.recurrent_activation(x_z + u_z),
            "reset": self.recurrent_activation(x_r + u_r),
        }

    def has_hand_gradient(self):
        # The derivatives below are those of sigmoid and tanh.
        return (
            self.activation is keras.activations.tanh
            and self.recurrent_activation is keras.activations.sigmoid
        )

    def step_gradient(self, x_proj, h_proj, states, d_new_states):
        """Backward pass of `step` (sigmoid gates, tanh activation).

        With δh_t the gradient arriving from later steps and outputs, and
        a_z, a_r, a_h the pre-activations of z, r and h̃:

            δa_h = δh_t ⊙ (1 − z_t) ⊙ (1 − h̃_t²)
            δa_z = δh_t ⊙ (h_{t-1} − h̃_t) ⊙ z_t (1 − z_t)
            δa_r = δa_h ⊙ (U_h h_{t-1} + b'_h) ⊙ r_t (1 − r_t)
            δx_proj = [δa_z, δa_r, δa_h]
            δh_proj = [δa_z, δa_r, δa_h ⊙ r_t]       (r_t gates U_h h_{t-1})
            δh_{t-1} = δh_t ⊙ z_t                     (plus the path through U)

        The two projections differ only in the candidate block, so `step`
        returns both. Like the LSTM's cell state, h_t passes through the
        update gate unsquashed: where z_t ≈ 1 the error flows back unchanged.
        """
        (h_prev,) = states
        (d_h,) = d_new_states
        x_z, x_r, x_h = tf.split(x_proj, 3, axis=-1)
        u_z, u_r, u_h = tf.split(h_proj, 3, axis=-1)
        z, r = tf.sigmoid(x_z + u_z), tf.sigmoid(x_r + u_r)
        h_tilde = tf.tanh(x_h + r * u_h)
        d_a_h = d_h * (1.0 - z) * (1.0 - h_tilde * h_tilde)
        d_a_z = d_h * (h_prev - h_tilde) * z * (1.0 - z)
        d_a_r = d_a_h * u_h * r * (1.0 - r)
        d_x_proj = tf.concat([d_a_z, d_a_r, d_a_h], axis=-1)
        d_h_proj = tf.concat([d_a_z, d_a_r, d_a_h * r], axis=-1)
        return d_x_proj, d_h_proj, (d_h * z,)

    def get_config(self):
        config = {"recurrent_activation": keras.activations.serialize(self.recurrent_activation)}
        return {**super().get_config(), **config}
