"""Base class for hand-written recurrent layers with fused gate weights.

`Recurrent` owns everything a gated RNN layer needs apart from its cell
equations: the fused weights, the input projection hoisted out of the time
loop, the `tf.while_loop` itself, masking, variational dropout, stateful state
variables, `initial_state`/`return_sequences`/`return_state` plumbing and
serialization. A variant (LSTM, peephole LSTM, coupled-gate LSTM, GRU,
SimpleRNN) declares `gates`, `state_size` and overrides the single `step` hook.
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

from textpredict.layers.batch_shards import shard_count, split_rows
from textpredict.layers.time_loop import (
    autodiff_loop,
    hand_gradient_loop,
    project_inputs,
    project_recurrent,
)

#: How the time loop is differentiated: "hand" uses the cell's hand-derived
#: backward pass when it has one (see `time_loop.hand_gradient_loop`),
#: "autodiff" always leaves it to TensorFlow.
GRADIENTS = ("hand", "autodiff")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Argument `{name}` must be a boolean. Received: {name}={value!r}")
    return bool(value)


def _check_rate(name, value):
    # Rate 1 would drop everything and make the 1 / (1 - rate) rescaling blow up.
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"Argument `{name}` must be a float in the range [0, 1). Received: {name}={value!r}"
        )
    return float(value)


def _lookup(getter, name, value, allow_none=True):
    """Resolves `value` with `keras.<module>.get`, naming the argument on failure."""
    try:
        resolved = getter(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"Argument `{name}` could not be interpreted. Received: {name}={value!r}"
        ) from exc
    if resolved is None and not allow_none:
        raise ValueError(f"Argument `{name}` must not be None. Received: {name}={value!r}")
    return resolved


class Recurrent(keras.layers.Layer):
    """Base class for recurrent layers whose gates share fused weight matrices.

    The layer keeps three weights, with the gates side by side along the last
    axis: `kernel (input_dim, gates * units)`, `recurrent_kernel
    (units, gates * units)` and `bias (gates * units,)`. For the whole sequence
    it computes `x @ kernel + bias` as one matrix product before the time loop;
    each loop iteration then only computes `h_{t-1} @ recurrent_kernel` and
    hands both projections to `step`.

    Subclasses set the class attribute `gates`, override `state_size` when the
    cell carries more than one state, and implement `step`. `state_size[0]` is
    the state fed back through `recurrent_kernel`. A cell whose recurrent
    projection needs a bias of its own, because the two projections do not
    simply add up (GRU with the reset gate after the product), sets
    `separate_recurrent_bias`: the bias is then `(2, gates * units)`, row 0
    added to `x @ kernel` and row 1 to `h_{t-1} @ recurrent_kernel`, Keras's
    layout for `GRU(reset_after=True)`. A cell whose step reads several narrow
    blocks of `x_proj` in one element-wise expression sets `prefetch_inputs`,
    which makes its compiled training loop faster (and changes no result).

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation function. Default: `"tanh"`.
        use_bias: Boolean, whether the layer uses a bias vector.
        kernel_initializer: Initializer for `kernel`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
        bias_initializer: Initializer for `bias`.
        kernel_regularizer: Regularizer applied to `kernel`.
        recurrent_regularizer: Regularizer applied to `recurrent_kernel`.
        bias_regularizer: Regularizer applied to `bias`.
        dropout: Float in [0, 1). Fraction of the input features to drop. One
            mask per sequence, shared by all time steps and all gates.
        recurrent_dropout: Float in [0, 1). Fraction of `h_{t-1}` to drop before
            the recurrent projection, again one mask per sequence.
        seed: Integer seed for the dropout masks, or None.
        return_sequences: Boolean, return the output at every time step instead
            of only the last one.
        return_state: Boolean, also return the final states.
        stateful: Boolean. If True, the final states of a batch are the initial
            states of the next one (sample `i` continues sample `i`). Needs a
            fixed batch size.
        gradient: `"hand"` (default) backpropagates through time with the
            cell's hand-derived gradient when it has one for its activations;
            `"autodiff"` lets TensorFlow differentiate the loop. Both compute
            the same gradients; "hand" is faster.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`, ...).

    Call arguments:
        sequences: Float tensor of shape `(batch, time, features)`.
        initial_state: List of state tensors, one per entry of `state_size`,
            each `(batch, size)`. Defaults to zeros, or to the stored states
            when `stateful=True`.
        mask: Boolean tensor `(batch, time)`; False marks padding steps.
        training: Python boolean, enables dropout when True.

    Returns:
        `(batch, units)`, or `(batch, time, units)` when `return_sequences`;
        with `return_state`, the list `[output, *final_states]`.
    """

    #: Number of `units`-wide blocks in the fused weights; set by subclasses.
    gates = 1
    #: Whether the bias has a second row for the recurrent projection.
    separate_recurrent_bias = False
    #: Whether the XLA-compiled time loop reads each step's input projection a
    #: step ahead, as loop state (`time_loop._forward`). Set by the cells whose
    #: step reads several narrow blocks of it in one element-wise kernel (the
    #: GRU, the peephole LSTM), which XLA:CPU otherwise compiles unvectorised:
    #: their training step of batch 20 × 200 units is then 1.27–1.29 and
    #: 1.04–1.07 times faster. The LSTM, whose kernels read it at one offset
    #: each, ran 0.97–0.98 times as fast with it (`benchmarks/prefetch_inputs.py`).
    prefetch_inputs = False

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
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
        if (
            isinstance(units, (bool, np.bool_))
            or not isinstance(units, numbers.Integral)
            or units <= 0
        ):
            raise ValueError(
                f"Argument `units` must be a positive integer. Received: units={units!r}"
            )
        if seed is not None and (
            isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral)
        ):
            raise ValueError(f"Argument `seed` must be an integer or None. Received: seed={seed!r}")
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = _lookup(keras.activations.get, "activation", activation)
        self.use_bias = _check_bool("use_bias", use_bias)
        self.kernel_initializer = _lookup(
            keras.initializers.get, "kernel_initializer", kernel_initializer, allow_none=False
        )
        self.recurrent_initializer = _lookup(
            keras.initializers.get, "recurrent_initializer", recurrent_initializer, allow_none=False
        )
        self.bias_initializer = _lookup(
            keras.initializers.get, "bias_initializer", bias_initializer, allow_none=False
        )
        self.kernel_regularizer = _lookup(
            keras.regularizers.get, "kernel_regularizer", kernel_regularizer
        )
        self.recurrent_regularizer = _lookup(
            keras.regularizers.get, "recurrent_regularizer", recurrent_regularizer
        )
        self.bias_regularizer = _lookup(
            keras.regularizers.get, "bias_regularizer", bias_regularizer
        )
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = None if seed is None else int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.return_sequences = _check_bool("return_sequences", return_sequences)
        self.return_state = _check_bool("return_state", return_state)
        self.stateful = _check_bool("stateful", stateful)
        if gradient not in GRADIENTS:
            raise ValueError(
                f"Argument `gradient` must be one of {list(GRADIENTS)}. Received: "
                f"gradient={gradient!r}"
            )
        self.gradient = gradient
        self.supports_masking = True
        self.input_spec = keras.layers.InputSpec(ndim=3)
        # Stateful state variables (None until built with stateful=True).
        self.states = None

    @property
    def state_size(self):
        """Sizes of the carried states; the first one is fed back through U."""
        return (self.units,)

    @property
    def output_size(self):
        """Width of the per-step output (the first state, h)."""
        return self.state_size[0]

    def step(self, x_proj, h_proj, states, *params):
        """Computes one time step. The hook every variant overrides.

        Args:
            x_proj: `(batch, gates * units)`, `x_t @ kernel + bias` (input
                dropout already applied to `x_t`).
            h_proj: `(batch, gates * units)`, `h_{t-1} @ recurrent_kernel`
                (recurrent dropout already applied to `h_{t-1}`), plus the
                recurrent bias with `separate_recurrent_bias`.
            states: Tuple of the previous states, shaped as `state_size`.
            *params: The tensors of `cell_parameters()` (none for most cells);
                a cell called without them reads its own weights.

        Returns:
            `(output_t, new_states)` with `new_states` shaped like `states`.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `step`.")

    def step_gradient(self, x_proj, h_proj, states, d_new_states, *params):
        """The hand-derived local gradient of `step`, for the fast backward pass.

        Args:
            x_proj, h_proj, states, params: The arguments `step` received.
            d_new_states: Tuple, gradient of the loss with respect to each of
                the new states `step` returned.

        Returns:
            `(d_x_proj, d_h_proj, d_states)`: gradients with respect to the two
            projections (`d_h_proj` None when the projections only enter as
            their sum, so it equals `d_x_proj`) and the direct gradients with
            respect to the previous states, not counting the path through
            `h_proj` (None entries where there are none); with `params`, a
            fourth item: this step's gradient of each param.
        """
        raise NotImplementedError(f"{type(self).__name__} has no hand-derived gradient.")

    def has_hand_gradient(self):
        """Whether `step_gradient` is valid for this layer's configuration."""
        return False

    def cell_parameters(self):
        """Weights that `step` uses besides the fused kernels and bias, as tensors
        read once before the time loop (so the hand-derived backward pass can
        return their gradients). An empty tuple for most cells."""
        return ()

    def bias_initializer_for_build(self):
        """Initializer used for the fused bias; LSTM overrides it for the forget gate."""
        return self.bias_initializer

    def build(self, sequences_shape, initial_state_shape=None):
        input_dim = sequences_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known feature dimension. "
                f"Received: sequences.shape={tuple(sequences_shape)}"
            )
        width = self.gates * self.units
        bias_shape = (2, width) if self.separate_recurrent_bias else (width,)
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=bias_shape,
                name="bias",
                initializer=self.bias_initializer_for_build(),
                regularizer=self.bias_regularizer,
            )
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: input_dim})
        if self.stateful:
            batch_size = sequences_shape[0]
            if batch_size is None:
                raise ValueError(
                    "With `stateful=True` the batch size must be static (pass `batch_size` "
                    f"to `keras.Input`). Received: sequences.shape={tuple(sequences_shape)}"
                )
            # Plain tf.Variables: Keras does not track them as weights, so
            # get_weights()/set_weights() stay compatible with keras.layers.LSTM
            # and saved files do not depend on the batch size, as in Keras.
            with tf.init_scope():
                self.states = tuple(
                    tf.Variable(
                        tf.zeros((batch_size, size), dtype=self.variable_dtype),
                        trainable=False,
                        name=f"state_{i}",
                    )
                    for i, size in enumerate(self.state_size)
                )

    def reset_states(self):
        """Zeroes the stored states of a stateful layer (no-op otherwise)."""
        if self.states is not None:
            for variable in self.states:
                variable.assign(tf.zeros_like(variable))

    def reset_state(self):
        """Keras 3 spelling of `reset_states`."""
        self.reset_states()

    def _initial_states(self, sequences, initial_state):
        dtype = self.compute_dtype
        if initial_state is None:
            if self.stateful:
                return tuple(tf.cast(v, dtype) for v in self.states)
            batch = tf.shape(sequences)[0]
            return tuple(tf.zeros(tf.stack([batch, s]), dtype=dtype) for s in self.state_size)
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if len(initial_state) != len(self.state_size):
            raise ValueError(
                f"{type(self).__name__} expects {len(self.state_size)} initial states "
                f"(sizes {list(self.state_size)}). Received: {len(initial_state)} tensors"
            )
        return tuple(tf.cast(s, dtype) for s in initial_state)

    def call(self, sequences, initial_state=None, mask=None, training=None):
        dtype = self.compute_dtype
        sequences = tf.cast(sequences, dtype)
        if self.stateful and sequences.shape[0] is not None:
            expected = self.states[0].shape[0]
            if sequences.shape[0] != expected:
                raise ValueError(
                    f"A stateful layer needs batches of size {expected}. "
                    f"Received: sequences.shape={tuple(sequences.shape)}"
                )
        states = self._initial_states(sequences, initial_state)
        batch = tf.shape(sequences)[0]
        features = sequences.shape[-1]

        # Variational dropout: one mask per sequence, reused at every step.
        # The input mask is drawn first, as keras.layers.LSTM does, so a shared
        # seed gives the same input mask as Keras.
        recurrent_mask = None
        if training and self.dropout > 0.0:
            ones = tf.ones(tf.stack([batch, features]), dtype=dtype)
            input_mask = keras.random.dropout(ones, self.dropout, seed=self.seed_generator)
            sequences = sequences * input_mask[:, None, :]
        if training and self.recurrent_dropout > 0.0:
            ones = tf.ones(tf.stack([batch, self.state_size[0]]), dtype=dtype)
            recurrent_mask = keras.random.dropout(
                ones, self.recurrent_dropout, seed=self.seed_generator
            )

        jit = self._compiles_loop(training)
        shards = shard_count(sequences.shape[0], self.units, self.gates) if jit else 1
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if shards == 1:
            output, states = self._run(sequences, states, mask, recurrent_mask, jit)
        else:  # see `batch_shards`: the shards' programs can run on different cores
            parts = [
                split_rows(tensor, shards) for tensor in (sequences, mask, recurrent_mask, *states)
            ]
            runs = [
                self._run(x, tuple(shard_states), shard_mask, shard_recurrent_mask, jit)
                for x, shard_mask, shard_recurrent_mask, *shard_states in zip(*parts, strict=True)
            ]
            output = tf.concat([run[0] for run in runs], axis=0)
            shard_states = zip(*(run[1] for run in runs), strict=True)
            states = tuple(tf.concat(part, axis=0) for part in shard_states)

        if self.stateful:
            for variable, state in zip(self.states, states, strict=True):
                variable.assign(tf.cast(state, variable.dtype))
        if self.return_state:
            return [output, *states]
        return output

    def _uses_hand_gradient(self):
        return self.gradient == "hand" and self.has_hand_gradient()

    def _compiles_loop(self, training):
        """Whether the time loop runs hand-differentiated and compiled with XLA:
        inside a traced training step, which runs many times and so is worth
        XLA's compile time."""
        return self._uses_hand_gradient() and bool(training) and not tf.executing_eagerly()

    def _run(self, sequences, states, mask, recurrent_mask, jit):
        """Projection and time loop over a batch (or over one shard of it).

        Returns `(output, final_states)`, `output` batch-major as `call`
        returns it. The loop runs hand-differentiated and compiled with XLA
        when `jit` (see `_compiles_loop`).
        """
        if mask is not None:
            mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]  # (time, batch, 1)
        dtype = self.compute_dtype
        kernel = tf.cast(self.kernel, dtype)
        recurrent_kernel = tf.cast(self.recurrent_kernel, dtype)
        # Tensors read here, outside the loop: the hand-gradient loop takes them
        # as inputs and returns their gradients (tf.custom_gradient cannot
        # differentiate variables read inside it).
        input_bias, recurrent_bias = self._biases()
        loop_args = (states, mask, recurrent_mask, self.return_sequences, recurrent_bias)
        params = self.cell_parameters()
        if self._uses_hand_gradient():
            last_output, outputs, states = hand_gradient_loop(
                self.step,
                self.step_gradient,
                sequences,
                kernel,
                input_bias,
                recurrent_kernel,
                *loop_args,
                params=params,
                jit_compile=jit,
                prefetch_inputs=jit and self.prefetch_inputs,
            )
        else:
            x_proj = project_inputs(sequences, kernel, input_bias)
            last_output, outputs, states = autodiff_loop(
                self.step, x_proj, recurrent_kernel, *loop_args, params=params
            )
            if outputs is not None:
                outputs = tf.transpose(outputs, [1, 0, 2])
        return (outputs if self.return_sequences else last_output), states

    def project_inputs(self, x):
        """`x @ kernel + bias` for all steps of batch-major `x` at once, returned
        time-major: `(batch, time, features)` → `(time, batch, gates * units)`."""
        kernel = tf.cast(self.kernel, self.compute_dtype)
        return project_inputs(x, kernel, self._biases()[0])

    def recurrent_projection(self, h):
        """`h @ recurrent_kernel` (plus the recurrent bias, for cells that have one).

        What the time loop hands to `step` as `h_proj`; for code that runs the
        cell one step at a time (see `textpredict.inspection`).
        """
        recurrent_kernel = tf.cast(self.recurrent_kernel, self.compute_dtype)
        return project_recurrent(h, recurrent_kernel, self._biases()[1])

    def _biases(self):
        """The biases added to `x @ kernel` and to `h @ recurrent_kernel`, in the
        compute dtype; None where there is none (the second, for all cells but
        the GRU)."""
        if self.bias is None:
            return None, None
        bias = tf.cast(self.bias, self.compute_dtype)
        if self.separate_recurrent_bias:
            return bias[0], bias[1]
        return bias, None

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time_steps = sequences_shape[0], sequences_shape[1]
        if self.return_sequences:
            output_shape = (batch, time_steps, self.output_size)
        else:
            output_shape = (batch, self.output_size)
        if self.return_state:
            return [output_shape, *[(batch, size) for size in self.state_size]]
        return output_shape

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask, *[None for _ in self.state_size]]
        return output_mask

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "stateful": self.stateful,
            "gradient": self.gradient,
        }
        return {**super().get_config(), **config}
