"""The language model: its configuration, its network, and its directory on disk.

A model directory (``saved_models/<name>/``) holds everything needed to use it and
nothing that needs the training corpus:

    config.json       ModelConfig, TrainingConfig, where the data came from
    model.keras       the network: ids (batch, time) -> logits (batch, time, vocab)
    vocabulary.txt    the tokenizer's vocabulary, one token a line, most frequent first
    metrics.json      per-epoch training history and the held-out evaluation
    logs/             TensorBoard logs of the training run
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from textpredict import layers
from textpredict.errors import ModelError, TextpredictError
from textpredict.text import PAD_ID, TOKENIZATIONS, Tokenizer

CELLS: dict[str, type[keras.layers.Layer]] = {
    "lstm": layers.LSTM,
    "peephole": layers.PeepholeLSTM,
    "cifg": layers.CIFG,
    "gru": layers.GRU,
    "rnn": layers.SimpleRNN,
}
"""Recurrent layers selectable with ``--cell``, by name. `build_language_model` passes
them only arguments that all of them accept (`Recurrent`'s)."""

MODELS_HOME_VARIABLE = "TEXTPREDICT_MODELS"
DEFAULT_MODEL = "default"
FILES = ("config.json", "model.keras", "vocabulary.txt")


@dataclass
class ModelConfig:
    """The architecture of a language model."""

    cell: str = "lstm"  # recurrent layer kind, a key of CELLS
    vocabulary_size: int = 10_000  # upper bound on tokens, padding and [UNK] included
    embedding_dim: int = 64  # width of the word vectors
    units: int = 128  # width of each recurrent layer's state
    num_layers: int = 1  # recurrent layers stacked
    dropout: float = 0.1  # on embeddings and between layers (Zaremba et al. 2014)
    recurrent_dropout: float = 0.0  # variational dropout on h_{t-1} (Gal & Ghahramani 2016)
    tie_embeddings: bool = False  # output layer reuses the embedding matrix (Press & Wolf 2017)
    init_scale: float = 0.0  # > 0: every weight matrix uniform in ±init_scale (Zaremba et al.)
    tokenization: str = "standard"  # "pretokenized": split on whitespace only (Penn Treebank)

    def __post_init__(self):
        check_choice("cell", self.cell, CELLS)
        for name in ("vocabulary_size", "embedding_dim", "units", "num_layers"):
            check_positive_int(name, getattr(self, name))
        if self.vocabulary_size < 3:
            raise TextpredictError(
                f"vocabulary_size must be at least 3, got {self.vocabulary_size}"
            )
        for name in ("dropout", "recurrent_dropout"):
            check_fraction(name, getattr(self, name))
        check_choice("tokenization", self.tokenization, TOKENIZATIONS)
        if not isinstance(self.init_scale, int | float) or not 0 <= self.init_scale < 1:
            raise TextpredictError(f"init_scale must be in [0, 1), got {self.init_scale!r}")


def check_choice(name: str, value: Any, choices) -> None:
    if value not in choices:
        raise TextpredictError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TextpredictError(f"{name} must be a positive integer, got {value!r}")


def check_fraction(name: str, value: Any) -> None:
    if not isinstance(value, int | float) or not 0 <= value < 1:
        raise TextpredictError(f"{name} must be in [0, 1), got {value!r}")


def from_dict(cls, values: dict[str, Any]):
    """A config dataclass from a dict, ignoring keys it does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})


@keras.saving.register_keras_serializable(package="textpredict")
class TiedEmbedding(keras.layers.Layer):
    """An embedding whose transpose also produces the output logits.

    ``layer(ids)`` looks up word vectors ``E[ids]``; ``layer(h, reverse=True)`` returns
    ``h Eᵀ + b``, scoring every word by the dot product with its own input vector
    (Press & Wolf 2017; Inan et al. 2017): fewer parameters, better perplexity.

    Args:
        input_dim: vocabulary size.
        output_dim: width of the word vectors.
        embeddings_initializer: initialiser of ``E``.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        # The reverse call receives the recurrent stack's mask; it has no use for it.
        self.supports_masking = True

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            name="embeddings",
        )
        self.output_bias = self.add_weight(
            shape=(self.input_dim,), initializer="zeros", name="output_bias"
        )

    def call(self, inputs, reverse=False):
        if reverse:  # (batch, time, output_dim) -> (batch, time, input_dim)
            return keras.ops.matmul(inputs, keras.ops.transpose(self.embeddings)) + self.output_bias
        return keras.ops.take(self.embeddings, keras.ops.cast(inputs, "int32"), axis=0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            return keras.KerasTensor((*inputs.shape[:-1], self.input_dim), self.compute_dtype)
        return keras.KerasTensor((*inputs.shape, self.output_dim), self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }


@keras.saving.register_keras_serializable(package="textpredict")
class TokenCrossEntropy(keras.losses.Loss):
    """Mean cross-entropy per target token of the whole batch, padding (id 0) ignored.

    The loss ``train`` minimises. On one device it equals Keras's
    ``SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)``. Under a
    ``tf.distribute`` strategy each replica gets some rows of the batch, and Keras's
    mean would divide each replica's sum by that replica's own count of real tokens
    before the replicas' gradients are added: bucketed batches topped up with padding
    rows put more padding on some replicas than on others, so tokens would weigh
    unequally and the update would differ from one device's. Here every replica
    divides by the count over *all* replicas, and the summed gradients are exactly the
    gradient of the single-device mean (see ``textpredict.distribute``).
    """

    def __init__(self, name="token_cross_entropy", dtype=None):
        # "sum": Keras then neither divides by the replica's share nor scales by the
        # number of replicas; call() has already divided by the global token count.
        super().__init__(name=name, reduction="sum", dtype=dtype)

    def get_config(self):
        return {"name": self.name}

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "int32")
        real = keras.ops.cast(keras.ops.not_equal(y_true, PAD_ID), y_pred.dtype)
        losses = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        tokens = keras.ops.sum(real)
        context = tf.distribute.get_replica_context()
        if context is not None and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            tokens = context.all_reduce("sum", tokens)
        return losses * real / keras.ops.maximum(tokens, 1.0)  # (batch, time)


def build_language_model(
    config: ModelConfig,
    vocabulary_size: int,
    *,
    stateful: bool = False,
    batch_size: int | None = None,
    seed: int | None = None,
) -> keras.Model:
    """Embedding → recurrent stack → dropout → logits over the vocabulary.

    Args:
        config: the architecture.
        vocabulary_size: the tokenizer's actual vocabulary size.
        stateful: recurrent layers carry their state from one call to the next
            (for evaluation over a long stream, or truncated BPTT); needs ``batch_size``.
        seed: seeds initialisers and dropout.

    Returns:
        A functional model from ids ``(batch, time)`` to logits ``(batch, time, vocab)``.
        Padding (id 0) is masked, so right-padded batches of prompts of unequal
        length are read correctly.
    """
    counter = iter(range(1_000_000))

    def next_seed():  # a distinct, repeatable seed for each initialiser and dropout
        return None if seed is None else seed * 1000 + next(counter)

    def initializer(default):  # Zaremba et al. draw every weight from one uniform range
        if config.init_scale > 0:
            limit = config.init_scale
            return keras.initializers.RandomUniform(-limit, limit, seed=next_seed())
        return default(seed=next_seed())

    ids = keras.Input(shape=(None,), batch_size=batch_size, dtype="int32", name="ids")
    mask = keras.ops.not_equal(ids, PAD_ID)
    scale = config.init_scale or 0.1
    init = keras.initializers.RandomUniform(-scale, scale, seed=next_seed())
    if config.tie_embeddings:
        embedding = TiedEmbedding(vocabulary_size, config.embedding_dim, init, name="embedding")
    else:
        embedding = keras.layers.Embedding(
            vocabulary_size, config.embedding_dim, init, name="embedding"
        )
    x = embedding(ids)  # (batch, time, embedding_dim)
    x = keras.layers.Dropout(config.dropout, seed=next_seed(), name="embedding_dropout")(x)
    for i in range(config.num_layers):
        cell = CELLS[config.cell](
            config.units,
            return_sequences=True,
            stateful=stateful,
            recurrent_dropout=config.recurrent_dropout,
            kernel_initializer=initializer(keras.initializers.GlorotUniform),
            recurrent_initializer=initializer(keras.initializers.Orthogonal),
            seed=next_seed(),
            name=f"{config.cell}_{i}",
        )
        x = cell(x, mask=mask)  # (batch, time, units)
        x = keras.layers.Dropout(config.dropout, seed=next_seed(), name=f"dropout_{i}")(x)
    if config.tie_embeddings:
        if config.units != config.embedding_dim:
            x = keras.layers.Dense(
                config.embedding_dim,
                kernel_initializer=initializer(keras.initializers.GlorotUniform),
                name="projection",
            )(x)
        logits = embedding(x, reverse=True)
    else:
        logits = keras.layers.Dense(
            vocabulary_size,
            kernel_initializer=initializer(keras.initializers.GlorotUniform),
            name="logits",
        )(x)
    return keras.Model(ids, logits, name="language_model")  # (batch, time, vocab)


# --- the model directory ------------------------------------------------------------


def models_home() -> Path:
    """Where model names resolve: ``$TEXTPREDICT_MODELS`` or ``./saved_models``."""
    return Path(os.environ.get(MODELS_HOME_VARIABLE, "saved_models"))


def resolve_model_path(name_or_path: str | Path) -> Path:
    """A bare name means ``saved_models/<name>``; anything with a slash is a path."""
    text = str(name_or_path)
    if not text.strip():
        raise ModelError("the model name is empty")
    if os.sep in text or "/" in text or text in (".", ".."):
        return Path(text)
    return models_home() / text


@dataclass
class SavedModel:
    """Everything in a model directory, loaded."""

    path: Path
    network: keras.Model
    tokenizer: Tokenizer
    config: ModelConfig
    info: dict[str, Any] = field(default_factory=dict)  # training config and data sources
    metrics: dict[str, Any] = field(default_factory=dict)


def load_model(name_or_path: str | Path) -> SavedModel:
    """Loads a model directory, with Keras's safe mode (no deserialised Python code)."""
    path = resolve_model_path(name_or_path)
    if not path.is_dir():
        raise ModelError(f"no model at {path} (train one with `textpredict train`)")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise ModelError(f"{path} is not a textpredict model (missing {', '.join(missing)})")
    try:
        info = json.loads((path / "config.json").read_text(encoding="utf-8"))
        config = from_dict(ModelConfig, info.get("model", {}))
        tokenizer = Tokenizer.load(path / "vocabulary.txt", config.tokenization)
        network = keras.saving.load_model(path / "model.keras", compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ModelError(f"cannot load the model in {path}: {error}") from None
    metrics_file = path / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    return SavedModel(path, network, tokenizer, config, info, metrics)


def write_json(path: Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


@contextmanager
def staging_directory(target: Path, overwrite: bool):
    """A temporary directory beside ``target`` that becomes ``target`` on success.

    Nothing is written to ``target`` until the body has finished: an error, Ctrl-C
    or a crash leaves an existing model exactly as it was. The final swap is two
    renames on the same file system.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise ModelError(f"{target} already exists; choose another --model or pass --overwrite")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as error:
        raise ModelError(f"cannot write to {target.parent}: {error.strerror}") from None
    try:
        yield staging
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{staging.name.rsplit('.', 1)[-1]}")
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
