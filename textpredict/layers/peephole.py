"""LSTM with peephole connections from the cell state into its gates."""

import keras
import tensorflow as tf

from textpredict.layers.lstm import LSTM
from textpredict.layers.recurrent import _lookup


@keras.saving.register_keras_serializable(package="textpredict")
class PeepholeLSTM(LSTM):
    """LSTM whose gates also look at the cell state (Gers & Schmidhuber, 2000).

    With `σ = recurrent_activation`, `tanh = activation` and three diagonal
    peephole weight vectors `p_i, p_f, p_o` (each `(units,)`):

        i_t = σ(W_i x_t + U_i h_{t-1} + p_i ⊙ c_{t-1} + b_i)    input gate
        f_t = σ(W_f x_t + U_f h_{t-1} + p_f ⊙ c_{t-1} + b_f)    forget gate
        c̃_t = tanh(W_c x_t + U_c h_{t-1} + b_c)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        o_t = σ(W_o x_t + U_o h_{t-1} + p_o ⊙ c_t + b_o)        output gate
        h_t = o_t ⊙ tanh(c_t)

    The output gate peeks at the *new* cell state c_t, the other two at
    c_{t-1}, as in the paper and in TensorFlow's `BlockLSTM` ops. The
    peepholes let the gates time events from the cell state itself, which
    `h_{t-1}` shows only through the output gate.

    Weights: those of `LSTM` (`kernel`, `recurrent_kernel`, `bias`, gates in
    order i, f, c, o), then `input_gate_peephole_weights`,
    `forget_gate_peephole_weights`, `output_gate_peephole_weights`. The
    peepholes start at zero by default, where the layer equals `LSTM` exactly.

    Training differentiates the loop with TensorFlow's autodiff:
    `tf.custom_gradient`, which the hand-derived backward pass relies on,
    cannot take gradients for variables read inside it, and the peepholes are
    read at every step.

    Args:
        units: Positive integer, dimensionality of the output space.
        peephole_initializer: Initializer for the three peephole vectors.
            Default: `"zeros"`.
        **kwargs: Every other argument of `LSTM`, by keyword.
    """

    def __init__(self, units, *, peephole_initializer="zeros", **kwargs):
        super().__init__(units, **kwargs)
        self.peephole_initializer = _lookup(
            keras.initializers.get, "peephole_initializer", peephole_initializer, allow_none=False
        )

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)

        def peephole(gate):
            return self.add_weight(
                shape=(self.units,),
                name=f"{gate}_gate_peephole_weights",
                initializer=self.peephole_initializer,
            )

        self.input_peephole = peephole("input")
        self.forget_peephole = peephole("forget")
        self.output_peephole = peephole("output")

    def step(self, x_proj, h_proj, states):
        _, _, o, c = self._gates_and_cell(x_proj, h_proj, states)
        h = o * self.activation(c)
        return h, (h, c)

    def gate_values(self, x_proj, h_proj, states):
        """The gates of one step by name, as `step` computes them (for inspection)."""
        i, f, o, _ = self._gates_and_cell(x_proj, h_proj, states)
        return {"forget": f, "input": i, "output": o}

    def _gates_and_cell(self, x_proj, h_proj, states):
        """`(i_t, f_t, o_t, c_t)` of one step, with the peephole terms."""
        _, c_prev = states
        p_i, p_f, p_o = (
            tf.cast(p, x_proj.dtype)
            for p in (self.input_peephole, self.forget_peephole, self.output_peephole)
        )
        z_i, z_f, z_c, z_o = tf.split(x_proj + h_proj, 4, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_prev)  # input gate, sees c_{t-1}
        f = self.recurrent_activation(z_f + p_f * c_prev)  # forget gate, sees c_{t-1}
        c = f * c_prev + i * self.activation(z_c)  # cell-state update
        o = self.recurrent_activation(z_o + p_o * c)  # output gate, sees the new c_t
        return i, f, o, c

    def has_hand_gradient(self):
        return False  # see the class docstring

    def get_config(self):
        config = {"peephole_initializer": keras.initializers.serialize(self.peephole_initializer)}
        return {**super().get_config(), **config}
