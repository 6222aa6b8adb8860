"""LSTM with coupled input and forget gates (CIFG)."""

import keras
import tensorflow as tf

from textpredict.layers.lstm import LSTM


@keras.saving.register_keras_serializable(package="textpredict")
class CIFG(LSTM):
    """Coupled input–forget gate LSTM (Greff et al., 2017, "LSTM: A Search
    Space Odyssey"): the cell writes exactly as much as it forgets.

    With `σ = recurrent_activation` (sigmoid) and `tanh = activation`:

        f_t = σ(W_f x_t + U_f h_{t-1} + b_f)          forget gate
        i_t = 1 − f_t                                 input gate, coupled
        c̃_t = tanh(W_c x_t + U_c h_{t-1} + b_c)       candidate values
        c_t = f_t ⊙ c_{t-1} + (1 − f_t) ⊙ c̃_t         a convex mix
        o_t = σ(W_o x_t + U_o h_{t-1} + b_o)          output gate
        h_t = o_t ⊙ tanh(c_t)

    Three gates instead of four: a quarter fewer weights and gate
    computations, at a perplexity Greff et al. found close to the full LSTM's.
    The fused weights hold the gates in the order **f, c, o**: `kernel
    (input_dim, 3 * units)`, `recurrent_kernel (units, 3 * units)`, `bias
    (3 * units,)`. `unit_forget_bias` sets the first block of the bias to 1.

    The arguments, call arguments and return values are those of `LSTM`.
    """

    gates = 3
    forget_gate = 0

    def step(self, x_proj, h_proj, states):
        _, c_prev = states
        z = x_proj + h_proj
        # σ in one pass over all blocks, as in `LSTM.step` (the candidate's is unused).
        f, _, o = tf.split(self.recurrent_activation(z), 3, axis=-1)  # forget, output
        c = f * c_prev + (1.0 - f) * self.activation(z[:, self.units : 2 * self.units])
        h = o * self.activation(c)
        return h, (h, c)

    def gate_values(self, x_proj, h_proj, states):
        """The gates of one step by name, as `step` computes them (for inspection)."""
        z_f, _, z_o = tf.split(x_proj + h_proj, 3, axis=-1)
        f = self.recurrent_activation(z_f)
        return {"forget": f, "input": 1.0 - f, "output": self.recurrent_activation(z_o)}

    def step_gradient(self, x_proj, h_proj, states, d_new_states):
        """Backward pass of `step` (sigmoid gates, tanh activation).

        The LSTM's, with i_t = 1 − f_t: the forget gate receives the gradient
        of both of its roles, remembering c_{t-1} and admitting c̃_t:

            δc_t  += δh_t ⊙ o_t ⊙ (1 − tanh²(c_t))
            δz_f   = δc_t ⊙ (c_{t-1} − c̃_t) ⊙ f_t (1 − f_t)
            δz_c   = δc_t ⊙ (1 − f_t) ⊙ (1 − c̃_t²)
            δz_o   = δh_t ⊙ tanh(c_t) ⊙ o_t (1 − o_t)
            δc_{t-1} = δc_t ⊙ f_t
        """
        _, c_prev = states
        d_h, d_c = d_new_states
        z_f, z_c, z_o = tf.split(x_proj + h_proj, 3, axis=-1)
        f, o = tf.sigmoid(z_f), tf.sigmoid(z_o)
        c_tilde = tf.tanh(z_c)
        tanh_c = tf.tanh(f * c_prev + (1.0 - f) * c_tilde)
        d_c = d_c + d_h * o * (1.0 - tanh_c * tanh_c)
        d_z = tf.concat(
            [
                d_c * (c_prev - c_tilde) * f * (1.0 - f),
                d_c * (1.0 - f) * (1.0 - c_tilde * c_tilde),
                d_h * tanh_c * o * (1.0 - o),
            ],
            axis=-1,
        )
        return d_z, None, (None, d_c * f)
