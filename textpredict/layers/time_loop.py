"""The time loop of a recurrent layer, with two ways to differentiate it.

Both loops run the same cell `step` over a time-major input projection:

    h_proj_t = (h_{t-1} ⊙ m_h) @ U [+ b_U]
    out_t    = step(x_proj[t], h_proj_t, states, *params), or out_{t-1} where masked

Most cells only add the two projections, z_t = x_proj[t] + h_proj_t; a GRU
(reset gate after the product) also needs its own recurrent bias b_U there.
`params` are a cell's own weights used inside the step (a peephole LSTM's
diagonal peepholes), read once before the loop.

`autodiff_loop` leaves the backward pass to TensorFlow. TensorFlow's gradient
of a `tf.while_loop` pushes every intermediate of the step onto a stack, pops
them again on the way back, and forms the weight gradient `h_{t-1}ᵀ δz_t` as a
small matrix product at every step.

`hand_gradient_loop` is the same forward loop wrapped in `tf.custom_gradient`,
with a backward pass through time written out here. The forward pass keeps
only what the cell needs to recompute its gates (the recurrent projection and
the previous states, per step). Walking back from t = T-1 to 0, each step runs
the cell's hand-derived local gradient (`step_gradient`) and one matrix product,

    δh_{t-1} += (δz_t @ Uᵀ) ⊙ m_h,

and stores δz_t. After the loop the gradients for all steps come out of single
large matrix products:

    ∂L/∂x_proj = [δz_0 … δz_{T-1}]         ∂L/∂U = Σ_t (h_{t-1} ⊙ m_h)ᵀ δz_t,

the latter computed as one `(units, T·batch) @ (T·batch, gates·units)` product
(with δh_proj_t in place of δz_t for a cell that returns it separately, and
∂L/∂b_U = Σ_t Σ_batch δh_proj_t). The gradients of `params` are summed
over the steps inside the loop, from the per-step terms `step_gradient` returns.

`hand_gradient_loop` also owns the input projection `x_proj = x @ W + b`,
computed for all steps as one matrix product before the loop, and its
gradients, again one product each over all steps (`_projection_gradients`).
So, compiled with XLA, the layer's whole forward pass is one program and its
whole backward pass another: one training step of a layer, or of one shard of
its batch (see `batch_shards`), is two XLA launches.
"""

import tensorflow as tf


def _time_array(tensor):
    """A TensorArray over the leading (time) axis of `tensor`."""
    array = tf.TensorArray(tensor.dtype, size=tf.shape(tensor)[0], element_shape=tensor.shape[1:])
    return array.unstack(tensor)


def _empty_array(time_steps, dtype, element_shape):
    return tf.TensorArray(dtype, size=time_steps, element_shape=element_shape)


def _masked(keep, new, old):
    """Keras masking: a padded step keeps the previous value."""
    return new if keep is None else tf.where(keep, new, old)


def project_recurrent(h_in, recurrent_kernel, recurrent_bias):
    """`h_in @ U`, plus the recurrent bias when the cell has one: `step`'s `h_proj`."""
    h_proj = tf.matmul(h_in, recurrent_kernel)
    return h_proj if recurrent_bias is None else tf.nn.bias_add(h_proj, recurrent_bias)


def autodiff_loop(
    step,
    x_proj,
    recurrent_kernel,
    states,
    mask,
    recurrent_mask,
    return_sequences,
    recurrent_bias=None,
    params=(),
):
    """Runs `step` over time; TensorFlow differentiates the loop.

    Args:
        step: `step(x_proj_t, h_proj_t, states, *params) -> (output_t, new_states)`.
        x_proj: `(time, batch, gates * units)` input projection.
        recurrent_kernel: `(units, gates * units)` tensor `U`.
        states: Tuple of initial states; `states[0]` is fed back through `U`.
        mask: `(time, batch, 1)` booleans or None; False marks padding.
        recurrent_mask: `(batch, units)` dropout mask for `h_{t-1}`, or None.
        return_sequences: Whether to collect the output of every step.
        recurrent_bias: `(gates * units,)` tensor added to `h_{t-1} @ U`, or
            None.
        params: Tuple of the cell's other weight tensors, passed on to `step`.

    Returns:
        `(last_output, outputs, final_states)`; `outputs` is `(time, batch,
        units)`, or None without `return_sequences`.
    """
    last_output, outputs, final_states, _ = _forward(
        step,
        x_proj,
        recurrent_kernel,
        recurrent_bias,
        states,
        mask,
        recurrent_mask,
        return_sequences,
        params,
        keep_for_backward=False,
    )
    return last_output, outputs, final_states


def project_inputs(sequences, kernel, bias):
    """`x @ W + b` for all steps of batch-major `sequences` at once, as one 2-D
    matrix product, returned time-major: `(batch, time, features)` →
    `(time, batch, width)`. `bias` may be None."""
    x = tf.transpose(sequences, [1, 0, 2])  # transposing x beats transposing x @ W
    shape = tf.shape(x)
    flat = tf.matmul(tf.reshape(x, tf.stack([-1, shape[2]])), kernel)
    if bias is not None:
        flat = tf.nn.bias_add(flat, bias)
    proj = tf.reshape(flat, tf.stack([shape[0], shape[1], kernel.shape[-1]]))
    proj.set_shape([x.shape[0], x.shape[1], kernel.shape[-1]])
    return proj


def _projection_gradients(sequences, kernel, d_x_proj):
    """The gradients of `project_inputs` given `δz = ∂L/∂x_proj` (time-major):

        ∂L/∂x = δz Wᵀ        ∂L/∂W = Σ_t x_tᵀ δz_t        ∂L/∂b = Σ_t Σ_batch δz_t

    each one matrix product (or sum) over all steps, returned as
    `(∂L/∂sequences (batch-major), ∂L/∂W, ∂L/∂b)`.
    """
    features, width = kernel.shape
    x = tf.transpose(sequences, [1, 0, 2])  # time-major, as d_x_proj
    d_flat = tf.reshape(d_x_proj, [-1, width])
    d_kernel = tf.matmul(tf.reshape(x, [-1, features]), d_flat, transpose_a=True)
    d_bias = tf.reduce_sum(d_flat, axis=0)
    d_x = tf.reshape(tf.matmul(d_flat, kernel, transpose_b=True), tf.shape(x))
    return tf.transpose(d_x, [1, 0, 2]), d_kernel, d_bias


def hand_gradient_loop(
    step,
    step_gradient,
    sequences,
    kernel,
    input_bias,
    recurrent_kernel,
    states,
    mask,
    recurrent_mask,
    return_sequences,
    recurrent_bias=None,
    params=(),
    jit_compile=False,
    prefetch_inputs=False,
):
    """`project_inputs` and `autodiff_loop`, with the backward pass written out.

    The input projection is part of it, so that with `jit_compile` one compiled
    program runs the whole forward pass of the layer (projection and loop) and
    another its whole backward pass (the loop and every weight's gradient),
    with the layout changes between batch-major and time-major folded into
    them.

    Args:
        step: As for `autodiff_loop`. Its output must be its first new state
            (`h_t`), as it is for every cell in this package.
        step_gradient: `step_gradient(x_proj_t, h_proj_t, states, d_new_states,
            *params) -> (d_x_proj_t, d_h_proj_t, d_states[, d_params])`: the
            cell's local gradient.
            Given the gradient with respect to the step's new states, it returns
            the gradients with respect to its two projections and the *direct*
            gradients with respect to the previous states (those that do not
            pass through `h_{t-1} @ U`; None where there are none).
            `d_h_proj_t` is None when the two projections enter the cell only
            through their sum, so both have the gradient `d_x_proj_t`.
            With `params`, it also returns this step's gradient of each.
        sequences: `(batch, time, features)` inputs (input dropout applied).
        kernel: `(features, gates * units)` tensor `W`.
        input_bias: `(gates * units,)` tensor `b` added to `x @ W`, or None.
        jit_compile: Compile the forward and the backward pass with XLA, which
            fuses each step's element-wise operations into a few kernels.
        prefetch_inputs: Have each step of the forward loop read the next
            step's input projection ahead (see `_forward`), for a cell whose
            compiled step is faster so.
        The other arguments are those of `autodiff_loop`.

    Returns:
        As `autodiff_loop`, except that `outputs` is batch-major, `(batch,
        time, units)`.
    """
    # Every tensor whose gradient `grad` returns is an explicit input of `run`.
    biases = tuple(b for b in (input_bias, recurrent_bias) if b is not None)
    params = tuple(params)

    def forward(sequences, kernel, input_bias, recurrent_kernel, recurrent_bias, states, params):
        x_proj = project_inputs(sequences, kernel, input_bias)
        last_output, outputs, final_states, saved = _forward(
            step,
            x_proj,
            recurrent_kernel,
            recurrent_bias,
            states,
            mask,
            recurrent_mask,
            return_sequences,
            params,
            prefetch_inputs=prefetch_inputs,
        )
        if return_sequences:
            outputs = tf.transpose(outputs, [1, 0, 2])
        if jit_compile:
            # Uᵀ for the backward loop (see `_backward`), made in this program,
            # where the copy waits for nothing and runs beside the loop; made in
            # the backward program, it would hold up that loop's first step.
            # Uncompiled (as in inference, where no backward pass may follow),
            # `backward` makes it instead.
            saved = (*saved, tf.transpose(recurrent_kernel))
        return last_output, outputs, final_states, (x_proj, *saved)

    def backward(sequences, kernel, recurrent_kernel, saved, d_last, d_outputs, d_final, params):
        x_proj, *saved = saved
        if jit_compile:
            *saved, recurrent_kernel_t = saved
        else:
            recurrent_kernel_t = tf.transpose(recurrent_kernel)
        if d_outputs is not None:
            d_outputs = tf.transpose(d_outputs, [1, 0, 2])
        d_x_proj, *d_rest = _backward(
            step_gradient,
            x_proj,
            recurrent_kernel_t,
            recurrent_bias is not None,
            saved,
            mask,
            recurrent_mask,
            d_last,
            d_outputs,
            d_final,
            params,
        )
        d_sequences, d_kernel, d_input_bias = _projection_gradients(sequences, kernel, d_x_proj)
        d_input_bias = () if input_bias is None else (d_input_bias,)
        d_recurrent_kernel, *d_extras = d_rest  # [δb_U,] δparams, δstates
        # In the order of `run`'s inputs.
        return (d_sequences, d_kernel, d_recurrent_kernel, *d_input_bias, *d_extras)

    if jit_compile:
        forward = tf.function(forward, jit_compile=True)
        backward = tf.function(backward, jit_compile=True)

    @tf.custom_gradient
    def run(sequences, kernel, recurrent_kernel, *extras):
        given = iter(extras[: len(biases)])
        bias = next(given) if input_bias is not None else None
        bias_u = next(given) if recurrent_bias is not None else None
        cell_params = extras[len(biases) : len(biases) + len(params)]
        states = extras[len(biases) + len(params) :]
        last_output, outputs, final_states, saved = forward(
            sequences, kernel, bias, recurrent_kernel, bias_u, states, cell_params
        )

        def grad(d_last_output, *d_rest):
            d_outputs = d_rest[0] if return_sequences else None
            d_final_states = d_rest[1:] if return_sequences else d_rest
            return backward(
                sequences,
                kernel,
                recurrent_kernel,
                saved,
                _or_zeros(d_last_output, last_output),
                d_outputs,
                tuple(_or_zeros(d, s) for d, s in zip(d_final_states, final_states, strict=True)),
                cell_params,
            )

        outputs = (outputs,) if return_sequences else ()
        return (last_output, *outputs, *final_states), grad

    result = run(sequences, kernel, recurrent_kernel, *biases, *params, *states)
    outputs = result[1] if return_sequences else None
    return result[0], outputs, tuple(result[len(result) - len(states) :])


def _forward(
    step,
    x_proj,
    recurrent_kernel,
    recurrent_bias,
    states,
    mask,
    recurrent_mask,
    return_sequences,
    params=(),
    keep_for_backward=True,
    prefetch_inputs=False,
):
    """The time loop of both `autodiff_loop` and `hand_gradient_loop`.

    Returns `(last_output, outputs, final_states, saved)`. With
    `keep_for_backward`, `saved` holds what `_backward` needs, stacked over time:
    `h_proj_t` and each state before step t (`h_{t-1}` first); otherwise it is
    empty. The input of U, `h_{t-1} ⊙ m_h`, is not kept: `_backward` forms it
    from `h_{t-1}` (without a recurrent mask it is `h_{t-1}` itself, which a
    compiled program would otherwise return twice, as two copies).

    Without a mask, `h_{t-1}` is the previous step's output (the initial state
    at t = 0), so the loop stores the outputs once and `h_{t-1}` is formed from
    them after the loop: each array written per step costs the loop about as
    much as the element-wise work of a cell.

    With `prefetch_inputs`, step t reads `x_proj[t+1]` at its end and hands it
    to step t+1 as loop state, instead of step t+1 reading `x_proj[t]` itself.
    The result is the same; what changes is XLA's code. XLA fuses the read of
    `x_proj[t]` (a dynamic slice) into the element-wise kernels of the step,
    and where one kernel reads that slice at two or more column offsets (a
    cell whose narrow gate blocks meet in one kernel: the GRU, the peephole
    LSTM), XLA:CPU compiles that kernel without vector instructions. A
    loop-state tensor is a plain buffer, which every kernel reads vectorised.
    For the other cells the extra copy per step costs more than it saves (see
    `Recurrent.prefetch_inputs`).
    """
    time_steps = tf.shape(x_proj)[0]
    inputs = None if prefetch_inputs else _time_array(x_proj)
    keep_steps = None if mask is None else _time_array(mask)
    # Keras semantics: a masked step repeats the previous *output*, which
    # starts at zeros (not at the initial state); states carry over.
    output0 = tf.zeros_like(states[0])
    h_from_outputs = keep_for_backward and mask is None

    def kept(h_proj, states):
        """The values of one step that `body` stores for `_backward`."""
        return (h_proj, *states[1:]) if h_from_outputs else (h_proj, *states)

    saved = ()
    if keep_for_backward:  # one array per kept value, shaped like it
        specs = kept(
            tf.TensorSpec(x_proj.shape[1:], x_proj.dtype),
            [tf.TensorSpec(s.shape, s.dtype) for s in states],
        )
        saved = tuple(_empty_array(time_steps, spec.dtype, spec.shape) for spec in specs)
    collect_outputs = return_sequences or h_from_outputs
    extra = (_empty_array(time_steps, output0.dtype, output0.shape),) if collect_outputs else ()

    def read_ahead(t):
        """`x_proj[t]` as the loop state of step t (the last step's, past the end)."""
        return (x_proj[tf.minimum(t, time_steps - 1)],) if prefetch_inputs else ()

    def body(t, ahead, prev_output, states, saved, *extra):
        h_in = states[0] if recurrent_mask is None else states[0] * recurrent_mask
        h_proj = project_recurrent(h_in, recurrent_kernel, recurrent_bias)
        x_t = ahead[0] if prefetch_inputs else inputs.read(t)
        output, new_states = step(x_t, h_proj, states, *params)
        keep = None if keep_steps is None else keep_steps.read(t)
        output = _masked(keep, output, prev_output)
        if saved:
            values = kept(h_proj, states)
            saved = tuple(array.write(t, v) for array, v in zip(saved, values, strict=True))
        new_states = tuple(
            _masked(keep, new, old) for new, old in zip(new_states, states, strict=True)
        )
        extra = tuple(array.write(t, output) for array in extra)
        return (t + 1, read_ahead(t + 1), output, new_states, saved, *extra)

    # maximum_iterations gives XLA a static trip-count bound for gradients.
    _, _, last_output, final_states, saved, *extra = tf.while_loop(
        lambda t, *_: t < time_steps,
        body,
        (tf.constant(0, tf.int32), read_ahead(0), output0, tuple(states), saved, *extra),
        maximum_iterations=time_steps,
    )
    outputs = extra[0].stack() if collect_outputs else None
    saved = tuple(array.stack() for array in saved)
    if h_from_outputs:
        h_prev = tf.concat([states[0][None], outputs[:-1]], axis=0)
        saved = (saved[0], h_prev, *saved[1:])
    return last_output, outputs if return_sequences else None, final_states, saved


def _or_zeros(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


def _backward(
    step_gradient,
    x_proj,
    recurrent_kernel_t,
    with_recurrent_bias,
    saved,
    mask,
    recurrent_mask,
    d_last_output,
    d_outputs,
    d_final_states,
    params=(),
):
    """Backpropagation through time for `hand_gradient_loop`, given Uᵀ.

    Each step multiplies by Uᵀ, a transposed copy of U made once: XLA:CPU runs
    a product that contracts U's second axis (`transpose_b`) markedly more
    slowly than a plain one.

    Walks t = T-1 … 0 carrying δ(states), the sums of δ(params) and, with
    masking, δ(output) (a masked step passes both through unchanged). Returns
    the gradients with respect to `x_proj`, `recurrent_kernel`, the recurrent
    bias (only when `with_recurrent_bias`), each param and each initial state.
    """
    h_projs, *prev_states = saved
    h_prevs = prev_states[0]
    h_inputs = h_prevs if recurrent_mask is None else h_prevs * recurrent_mask  # U's inputs
    time_steps = tf.shape(x_proj)[0]
    inputs = _time_array(x_proj)
    h_proj_steps = _time_array(h_projs)
    keep_steps = None if mask is None else _time_array(mask)
    prev_state_steps = tuple(_time_array(s) for s in prev_states)
    d_output_steps = None if d_outputs is None else _time_array(d_outputs)
    d_x_projs = _empty_array(time_steps, x_proj.dtype, x_proj.shape[1:])
    d_h_projs = _empty_array(time_steps, x_proj.dtype, x_proj.shape[1:])
    # Set while tracing the body: whether the cell returned a separate gradient
    # for the recurrent projection (a property of its Python code, not data).
    separate_h_proj = []

    def body(t, d_output, d_states, d_params, d_x_projs, d_h_projs):
        if d_output_steps is not None:
            d_output = d_output + d_output_steps.read(t)
        keep = None if keep_steps is None else keep_steps.read(t)
        states = tuple(steps.read(t) for steps in prev_state_steps)
        if keep is None:
            d_new = (d_states[0] + d_output, *d_states[1:])
            d_output = tf.zeros_like(d_output)
            d_passed = (None,) * len(d_states)
        else:
            zero = tf.zeros_like(d_output)
            d_new = tuple(tf.where(keep, d, zero) for d in d_states)
            d_new = (d_new[0] + tf.where(keep, d_output, zero), *d_new[1:])
            d_passed = tuple(tf.where(keep, zero, d) for d in d_states)
            d_output = tf.where(keep, zero, d_output)
        local = step_gradient(inputs.read(t), h_proj_steps.read(t), states, d_new, *params)
        d_x_proj, d_h_proj, d_direct = local[:3]
        if params:  # a masked step's zero δ(new states) adds nothing here
            d_params = tuple(total + d for total, d in zip(d_params, local[3], strict=True))
        d_x_projs = d_x_projs.write(t, d_x_proj)
        if d_h_proj is None:
            d_h_proj = d_x_proj
        else:
            d_h_projs = d_h_projs.write(t, d_h_proj)
            separate_h_proj.append(True)
        d_h_in = tf.matmul(d_h_proj, recurrent_kernel_t)
        if recurrent_mask is not None:
            d_h_in = d_h_in * recurrent_mask
        d_through_u = (d_h_in, *(None,) * (len(d_states) - 1))
        terms = zip(d_through_u, d_direct, d_passed, strict=True)
        d_prev = tuple(_sum(parts, like) for parts, like in zip(terms, states, strict=True))
        return t - 1, d_output, d_prev, d_params, d_x_projs, d_h_projs

    d_params = tuple(tf.zeros_like(p) for p in params)
    result = tf.while_loop(
        lambda t, *_: t >= 0,
        body,
        (time_steps - 1, d_last_output, tuple(d_final_states), d_params, d_x_projs, d_h_projs),
        maximum_iterations=time_steps,
    )
    d_x_proj = result[4].stack()
    d_h_proj = result[5].stack() if separate_h_proj else d_x_proj
    width, units = recurrent_kernel_t.shape
    d_recurrent_kernel = tf.matmul(
        tf.reshape(h_inputs, [-1, units]), tf.reshape(d_h_proj, [-1, width]), transpose_a=True
    )
    d_bias = (tf.reduce_sum(d_h_proj, axis=[0, 1]),) if with_recurrent_bias else ()
    return (d_x_proj, d_recurrent_kernel, *d_bias, *result[3], *result[2])


def _sum(terms, like):
    """Adds the tensors among `terms`, skipping None; zeros if all are None."""
    present = [term for term in terms if term is not None]
    if not present:
        return tf.zeros_like(like)
    return tf.add_n(present) if len(present) > 1 else present[0]
