"""Export to a TensorFlow SavedModel that TF Serving (or any TensorFlow) can run.

The exported graph holds the whole path from raw strings to ranked words — the
model's own ``TextVectorization`` (its vocabulary as a lookup table), the network
and the ranking — so a client needs neither textpredict nor any Python
tokenisation::

    serving_default(text: string[batch]) -> {
        "words": string[batch, k],          # best first
        "probabilities": float32[batch, k]  # the model's p(word | text)
    }

Each text is read as ``complete`` reads it: preceded by ``<eos>``, padding and
``[UNK]`` never offered; an empty batch gives ``[0, k]`` outputs. The recurrent
layers are textpredict's own, traced from their portable TensorFlow ops, so a model
trained on a GPU exports a graph that runs on any CPU (Keras's own LSTM would pin a
cuDNN kernel at trace time, keras-team/keras#18504).

Versions follow TF Serving's layout: ``<model>/export/<n>/``, ``n`` counting up.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from textpredict.durable import sync_directory, sync_tree
from textpredict.errors import ModelError
from textpredict.model import EXPORT_DIRECTORY, SavedModel
from textpredict.text import PAD_ID, SPECIAL_IDS


def export_model(model: SavedModel, k: int = 3, directory: str | Path | None = None) -> Path:
    """Writes the next version of a serving SavedModel and returns its path.

    Args:
        model: a loaded model.
        k: how many ranked words each text gets.
        directory: the versions' parent; ``<model>/export`` by default.
    """
    if k < 1 or k > model.tokenizer.vocabulary_size - len(SPECIAL_IDS):
        raise ModelError(
            f"k must be between 1 and the number of words ({model.tokenizer.vocabulary_size - 2})"
        )
    parent = Path(directory) if directory else model.path / EXPORT_DIRECTORY
    version = 1 + max((int(p.name) for p in _versions(parent)), default=0)
    target = parent / str(version)

    try:  # before the tracing, so that an unwritable folder fails at once
        parent.mkdir(parents=True, exist_ok=True)
        # Not tempfile.mkdtemp, whose folders are private (0700): a server running as
        # another user must be able to read the version; mkdir follows the umask.
        staging = parent / f".{version}.{secrets.token_hex(4)}"
        staging.mkdir()
    except OSError as error:
        raise ModelError(f"cannot write to {parent}: {error.strerror}") from None
    try:
        model.tokenizer.layer(tf.constant([""]))  # builds the layer, as tracking requires
        archive = keras.export.ExportArchive()
        archive.track(model.tokenizer.layer)
        archive.track(model.network)
        archive.add_endpoint(
            "serving_default",
            _serving_function(model, k),
            input_signature=[tf.TensorSpec([None], tf.string, name="text")],
        )
        archive.write_out(str(staging), verbose=False)
        sync_tree(staging)  # on disk before its name, even across a power cut
        staging.rename(target)  # a half-written version is never visible to a server
        sync_directory(parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _versions(parent: Path) -> list[Path]:
    return (
        [p for p in parent.glob("*") if p.is_dir() and p.name.isdigit()] if parent.is_dir() else []
    )


def _serving_function(model: SavedModel, k: int):
    vectorize = model.tokenizer.layer
    network = model.network
    eos_id = model.tokenizer.eos_id
    vocabulary = tf.constant(model.tokenizer.vocabulary)
    banned = tf.reduce_sum(tf.one_hot(SPECIAL_IDS, model.tokenizer.vocabulary_size), axis=0)

    def serve(text):
        words = tf.cast(vectorize(text), tf.int32)  # ragged (batch, None)
        starts = tf.fill([tf.shape(text)[0], 1], eos_id)
        ids = tf.concat([tf.RaggedTensor.from_tensor(starts), words], axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        padded = ids.to_tensor(PAD_ID)
        # An empty request gives no columns at all; the time loop needs one to run over.
        padded = tf.pad(padded, [[0, 0], [0, tf.maximum(1 - tf.shape(padded)[1], 0)]])
        logits = network(padded, training=False)  # (batch, time, vocab)
        last = tf.gather(logits, lengths - 1, axis=1, batch_dims=1)  # (batch, vocab)
        probabilities = tf.nn.softmax(tf.cast(last, tf.float32)) * (1.0 - banned)
        top = tf.math.top_k(probabilities, k=k)
        return {"words": tf.gather(vocabulary, top.indices), "probabilities": top.values}

    return serve
