"""Fully connected recurrent layer, weight-compatible with `keras.layers.SimpleRNN`."""

import keras
import tensorflow as tf

from textpredict.layers.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="textpredict")
class SimpleRNN(Recurrent):
    """Elman network: the new state is a squashed sum of input and state.

    With `tanh = activation`:

        h_t = tanh(W x_t + U h_{t-1} + b)

    Weights as in `keras.layers.SimpleRNN`: `kernel (input_dim, units)`,
    `recurrent_kernel (units, units)`, `bias (units,)`. Without gates, the
    gradient through time is multiplied by `Uᵀ diag(1 − h_t²)` at every step
    and vanishes (or explodes) over long gaps: the baseline the gated cells
    are measured against.

    Arguments, call arguments and return values are those of `Recurrent`,
    with a single state `h`.
    """

    gates = 1

    def step(self, x_proj, h_proj, states):
        h = self.activation(x_proj + h_proj)
        return h, (h,)

    def has_hand_gradient(self):
        return self.activation is keras.activations.tanh  # derived below for tanh

    def step_gradient(self, x_proj, h_proj, states, d_new_states):
        """Backward pass of `step` (tanh activation).

            δz_t = δh_t ⊙ (1 − h_t²)      z_t = W x_t + U h_{t-1} + b

        h_{t-1} enters only through U, which the time loop handles.
        """
        (d_h,) = d_new_states
        h = tf.tanh(x_proj + h_proj)
        return d_h * (1.0 - h * h), None, (None,)
