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
import re
import shutil
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

import keras
import tensorflow as tf

from textpredict import layers
from textpredict.durable import sync_directory, sync_tree
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
# What else textpredict writes in a model directory: its scores, the training logs,
# the exported versions and the plots `textpredict inspect` saves there by default.
METRICS_FILE = "metrics.json"
LOGS_DIRECTORY = "logs"
EXPORT_DIRECTORY = "export"
GATES_PLOT = "gates.png"
GRADIENT_PLOT = "gradient_flow.png"
#: Everything textpredict writes in a model directory.
MODEL_ENTRIES = (
    *FILES,
    METRICS_FILE,
    LOGS_DIRECTORY,
    EXPORT_DIRECTORY,
    GATES_PLOT,
    GRADIENT_PLOT,
)
#: What a model replaced by a new one of the same name passes on to it: the exported
#: versions, so that a server reading ``NAME/export`` keeps its versions.
KEPT_ON_REPLACE = (EXPORT_DIRECTORY,)
#: Keras dtype policies a network can be trained in (``--precision``). Mixed ones keep
#: the weights in float32 and compute in 16 bits, which pays on GPUs with tensor cores;
#: a saved model always computes in float32 (``training.portable_copy``).
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


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
    ``SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)``, to
    floating-point rounding (``tests/test_model.py`` compares the weights after a few
    updates), but it is faster: it leaves the padding out of the per-token losses,
    where Keras's ``ignore_class`` masks the logits themselves, one more pass over the
    whole ``(batch, time, vocabulary)`` tensor forward and another backward. A
    ``zaremba-small`` training step ran 1.02 and 1.04 times as fast
    (``benchmarks/ptb_throughput.py --keras-loss``).

    Under a ``tf.distribute`` strategy each replica gets some rows of the batch, and
    Keras's mean would divide each replica's sum by that replica's own count of real
    tokens before the replicas' gradients are added: bucketed batches topped up with
    padding rows put more padding on some replicas than on others, so tokens would
    weigh unequally and the update would differ from one device's. Here every replica
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
    precision: str = "float32",
) -> keras.Model:
    """Embedding → recurrent stack → dropout → logits over the vocabulary.

    Args:
        config: the architecture.
        vocabulary_size: the tokenizer's actual vocabulary size.
        stateful: recurrent layers carry their state from one call to the next
            (for evaluation over a long stream, or truncated BPTT); needs ``batch_size``.
        seed: seeds initialisers and dropout.
        precision: the Keras dtype policy of every layer, one of `PRECISIONS`. The
            logits come out in the compute dtype; Keras's losses read them in float32.

    Returns:
        A functional model from ids ``(batch, time)`` to logits ``(batch, time, vocab)``.
        Padding (id 0) is masked, so right-padded batches of prompts of unequal
        length are read correctly.
    """
    check_choice("precision", precision, PRECISIONS)
    with _dtype_policy(precision):  # every layer, and the model, take it when created
        return _language_model(config, vocabulary_size, stateful, batch_size, seed)


@contextmanager
def _dtype_policy(name: str):
    """Keras's global dtype policy set to ``name`` for the block, then restored."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _language_model(config, vocabulary_size, stateful, batch_size, seed) -> keras.Model:
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
    """Where model names resolve: ``$TEXTPREDICT_MODELS`` or ``./saved_models``.

    Set but empty counts as unset (as ``VAR= command`` in a shell means), not as
    the current folder, where --overwrite would look for models among a user's files.
    """
    return Path(os.environ.get(MODELS_HOME_VARIABLE) or "saved_models")


def resolve_model_path(name_or_path: str | Path) -> Path:
    """Where a model lives: a name resolves under the models home, a path is a path.

    An explicit path is a ``Path`` object, or a string that is absolute, starts with
    ``./`` (``.\\``) or ``~``. Any other string is a name under `models_home`, such as
    ``books`` or ``ptb/small``, and must stay inside it: a name with ``..`` is
    refused, so that a name passed on by a script or a form cannot reach files
    elsewhere. (Symbolic links inside the home are followed: they are the owner's.)

    A name that starts with a relative models home as written, such as
    ``saved_models/books`` with the default home, means ``books``: that is the
    folder a user sees when listing ``saved_models/``, not a ``saved_models``
    folder inside it.
    """
    if isinstance(name_or_path, Path):
        return _checked_model_path(name_or_path)
    text = str(name_or_path)
    if not text.strip():
        raise ModelError("the model name is empty")
    if text.startswith(("./", ".\\", "~")) or Path(text).is_absolute():
        try:
            return _checked_model_path(Path(text).expanduser())
        except RuntimeError as error:  # ~user of an unknown user
            raise ModelError(f"cannot find the model path {text}: {error}") from None
    parts = PurePosixPath(text.replace("\\", "/")).parts
    home = models_home()
    if not home.is_absolute() and parts[: len(home.parts)] == home.parts:
        parts = parts[len(home.parts) :]  # saved_models/books: books
    if not parts or parts == (".",):
        raise ModelError(f"the model name {text!r} names the folder of all models, not a model")
    if ".." in parts:
        raise ModelError(
            f"the model name {text!r} leads outside {home}/; to use a model "
            "elsewhere, give its path (absolute, or starting with ./)"
        )
    return _checked_model_path(home.joinpath(*parts))


#: The directories a training run keeps beside its model (``.NAME.training``,
#: ``.NAME.previous``): working state that textpredict creates and deletes itself.
_WORKING_NAME = re.compile(r"\..+\.(training|previous)")


def _checked_model_path(path: Path) -> Path:
    """``path`` with a name of its own (``./`` becomes the current directory's path),
    and not one of the names textpredict keeps for its working directories."""
    if not path.name:  # "./", "/": a model needs a name for the directories beside it
        path = Path(os.path.abspath(path))
        if not path.name:
            raise ModelError(f"{path} cannot be a model directory")
    if _WORKING_NAME.fullmatch(path.name):
        raise ModelError(
            f"{path.name} is a name textpredict keeps for a run's working files "
            "(.NAME.training, .NAME.previous), which it deletes; choose another name"
        )
    return path


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
    """Loads a model directory, with Keras's safe mode (no deserialised Python code).

    Raises ``ModelError``, with a one-line message naming the file at fault, for a
    directory that is missing, incomplete, damaged or not a textpredict model.
    """
    path = resolve_model_path(name_or_path)
    recover_previous(path)
    if path.is_file():
        raise ModelError(f"{path} is a file; a model is a directory holding {', '.join(FILES)}")
    if not path.is_dir():
        raise ModelError(f"no model at {path} (train one with `textpredict train`)")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise ModelError(f"{path} is not a textpredict model (missing {', '.join(missing)})")
    info = _read_json(path / "config.json")
    try:
        config = from_dict(ModelConfig, info.get("model", {}))
    except (TextpredictError, TypeError, AttributeError) as error:
        raise ModelError(f"{path / 'config.json'} is damaged: {error}") from None
    tokens = _read_text(path / "vocabulary.txt").splitlines()
    try:
        tokenizer = Tokenizer(tokens, config.tokenization)
    except ValueError as error:  # empty, or a token twice
        raise ModelError(f"{path / 'vocabulary.txt'} is damaged: {error}") from None
    network = _load_network(path / "model.keras")
    check_network(network, config, tokenizer.vocabulary_size, path)
    metrics_file = path / METRICS_FILE
    metrics = _read_json(metrics_file) if metrics_file.is_file() else {}
    return SavedModel(path, network, tokenizer, config, info, metrics)


def check_network(network: keras.Model, config: ModelConfig, vocabulary_size: int, path) -> None:
    """Raises ``ModelError`` unless ``network`` is the language model that config.json
    and vocabulary.txt describe: word ids in, a score per vocabulary word out, through
    ``config.num_layers`` recurrent layers of kind ``config.cell``."""
    try:
        shapes = [tuple(t.shape) for t in (*network.inputs, *network.outputs)]
    except (AttributeError, ValueError):
        shapes = []
    if len(shapes) != 2 or len(shapes[0]) != 2 or shapes[1][1:] != (None, vocabulary_size):
        raise ModelError(
            f"{path / 'model.keras'} is not a textpredict language model for the "
            f"{vocabulary_size} tokens of vocabulary.txt"
        )
    kinds = {kind: name for name, kind in CELLS.items()}
    found = [
        kinds.get(type(layer), type(layer).__name__)
        for layer in network.layers
        if isinstance(layer, layers.Recurrent)
    ]
    if found != [config.cell] * config.num_layers:
        raise ModelError(
            f"{path} is inconsistent: config.json describes {config.num_layers} "
            f"{config.cell} layer(s), model.keras holds {', '.join(found) or 'none'}"
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ModelError(f"cannot read {path}: {reason}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise ModelError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is damaged: it holds a JSON {type(data).__name__}, not an object")
    return data


def _load_network(file: Path) -> keras.Model:
    """The network in a ``.keras`` file, loaded in safe mode."""
    if not zipfile.is_zipfile(file):
        raise ModelError(f"{file} is damaged or incomplete (not a .keras archive)")
    try:
        return keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many kinds for a file it cannot rebuild
        if "safe_mode" in str(error):
            raise ModelError(
                f"{file} contains Python code (a Lambda layer), which textpredict never "
                "runs: a model file from an untrusted source must be treated like code"
            ) from None
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelError(
            f"{file} cannot be loaded as a textpredict network ({type(error).__name__}"
            f"{': ' + reason[:200] if reason else ''})"
        ) from None


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


def previous_directory(target: Path) -> Path:
    """Where ``replace_directory`` parks the directory it replaces."""
    return target.with_name(f".{target.name}.previous")


def check_replaceable(target: Path) -> None:
    """Raises ``ModelError`` unless ``target`` is a model that ``--overwrite`` may
    replace: a model directory holding nothing but what textpredict writes there, so
    that a mistyped ``--model`` cannot delete a folder of the user's own files."""
    if not target.is_dir():
        raise ModelError(f"{target} is a file, not a model; --overwrite replaces only a model")
    missing = [f for f in FILES if not (target / f).is_file()]
    if missing:
        raise ModelError(
            f"{target} is not a textpredict model (missing {', '.join(missing)}); "
            "--overwrite replaces only a model"
        )
    foreign = sorted(entry.name for entry in target.iterdir() if entry.name not in MODEL_ENTRIES)
    if foreign:
        raise ModelError(
            f"{target} also holds {', '.join(foreign)}, which --overwrite would delete; "
            "move them out first"
        )


def replace_directory(source: Path, target: Path) -> None:
    """Moves a finished directory into place, replacing ``target`` if there is one.

    Two renames on one file system: ``target`` to ``.NAME.previous``, then ``source``
    to ``target``; then the previous directory's ``KEPT_ON_REPLACE`` entries move into
    the new one and the rest is deleted. A crash between the two renames leaves no
    ``target`` but the previous directory whole, and ``recover_previous`` (which every
    load and training run calls) puts it back. ``source`` is flushed to disk before the
    renames, and the renames before the deletion, so that a power cut cannot leave a
    torn new model in place of the old.
    """
    source, target = Path(source), Path(target)
    previous = previous_directory(target)
    recover_previous(target)
    sync_tree(source)
    if target.exists():
        target.rename(previous)
    source.rename(target)
    sync_directory(target.parent)
    _discard_previous(target)


def recover_previous(target: Path) -> None:
    """Finishes a ``replace_directory`` that a crash cut short: puts the previous model
    back if the new one never arrived, or discards it if it did."""
    previous = previous_directory(Path(target))
    if previous.is_dir():
        if Path(target).exists():
            _discard_previous(Path(target))
        else:
            previous.rename(target)
            sync_directory(Path(target).parent)


def _discard_previous(target: Path) -> None:
    """Moves what the new model keeps of the previous one into it (its exported
    versions, which a server may be reading), then deletes the previous directory."""
    previous = previous_directory(target)
    kept = [name for name in KEPT_ON_REPLACE if (previous / name).exists()]
    for name in kept:
        if not (target / name).exists():
            (previous / name).rename(target / name)
    if kept:
        sync_directory(target)
    shutil.rmtree(previous, ignore_errors=True)
