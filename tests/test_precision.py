"""Mixed precision: the layers compute in 16 bits with float32 weights, `train
--precision` trains that way, and the saved model computes in float32."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import textpredict
from textpredict.cli import PRECISION_NAMES
from textpredict.errors import TextpredictError
from textpredict.model import PRECISIONS, ModelConfig, load_model
from textpredict.training import TrainingConfig, compiled_network, train

CELLS = ["LSTM", "PeepholeLSTM", "CIFG", "GRU", "SimpleRNN"]
# Rounding of a 16-bit compute dtype (10 and 7 bits of mantissa) over 7 steps.
TOLERANCE = {"mixed_float16": 5e-3, "mixed_bfloat16": 4e-2}


def training_step(layer, x):
    """Outputs and weight gradients of one traced training step (the time loop
    hand-differentiated and compiled with XLA, as in `fit`)."""

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(outputs, "float32") ** 2)
        return outputs, tape.gradient(loss, layer.trainable_variables)

    return step()


@pytest.mark.parametrize(
    ("cell", "policy"),
    [(cell, "mixed_float16") for cell in CELLS] + [("LSTM", "mixed_bfloat16")],
)
def test_a_mixed_precision_layer_computes_in_16_bits_what_the_float32_one_does(cell, policy):
    keras.utils.set_random_seed(0)  # the weights: at most half the tolerance used for them
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 7, 5)), "float32")
    reference = getattr(textpredict, cell)(6, return_sequences=True)
    mixed = getattr(textpredict, cell)(6, return_sequences=True, dtype=policy)
    reference(x), mixed(x)
    mixed.set_weights(reference.get_weights())
    assert all(v.dtype == "float32" for v in mixed.trainable_variables)

    outputs, gradients = training_step(mixed, x)
    expected_outputs, expected_gradients = training_step(reference, x)
    assert outputs.dtype == mixed.compute_dtype == policy.removeprefix("mixed_")
    tolerance = TOLERANCE[policy]
    np.testing.assert_allclose(outputs.numpy().astype("float32"), expected_outputs, atol=tolerance)
    for gradient, expected in zip(gradients, expected_gradients, strict=True):
        assert gradient.dtype == "float32"  # the variables' dtype, for the optimiser
        scale = float(tf.reduce_max(tf.abs(expected)))
        np.testing.assert_allclose(gradient, expected, atol=tolerance * scale)


def test_precision_names_are_the_models():
    assert PRECISION_NAMES == PRECISIONS
    with pytest.raises(TextpredictError, match="precision must be one of"):
        TrainingConfig(precision="float64")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_the_training_network_is_mixed_and_float16_scales_its_loss(policy):
    config = TrainingConfig(precision=policy)
    network = compiled_network(ModelConfig(units=8, embedding_dim=8), config, 50)
    assert {layer.dtype_policy.name for layer in network.layers[1:]} == {policy}
    assert network.outputs[0].dtype == policy.removeprefix("mixed_")
    scaled = isinstance(network.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")  # bfloat16 has float32's range
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@pytest.mark.parametrize("sequences", ["lines", "stream"])
def test_a_model_trained_in_mixed_precision_is_saved_in_float32(tmp_path, sequences):
    corpus = tmp_path / "corpus.txt"
    words = np.random.default_rng(0).choice(["the", "cat", "sat", "on", "a", "mat"], (200, 6))
    corpus.write_text("".join(" ".join(line) + "\n" for line in words), encoding="utf-8")
    config = TrainingConfig(
        epochs=2, batch_size=4, seq_len=8, sequences=sequences, precision="mixed_float16"
    )
    model = train(
        [corpus],
        model=tmp_path / "model",
        model_config=ModelConfig(units=8, embedding_dim=8, dropout=0.0),
        training_config=config,
        verbose=0,
    )
    losses = model.metrics["history"]["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    saved = json.loads((model.path / "config.json").read_text())
    assert saved["training"]["precision"] == "mixed_float16"
    reloaded = load_model(model.path).network
    assert {layer.dtype_policy.name for layer in reloaded.layers} == {"float32"}
    logits = reloaded(np.array([[2, 3, 4]]))
    assert logits.dtype == "float32"
    if sequences == "lines":  # where the final scoring reads the text as fit's validation
        # The best epoch's weights, scored in float32: its validation perplexity up to
        # the rounding of the mixed network that Keras scored during the run.
        best = model.metrics["history"]["val_perplexity"][model.metrics["best_epoch"] - 1]
        assert model.metrics["valid"]["perplexity"] == pytest.approx(best, rel=1e-2)
