"""Training a language model and writing its model directory.

``train()`` is the whole pipeline: corpus files → vocabulary → windows → ``model.fit``
→ the best epoch by validation loss → held-out evaluation → model directory.

A run works in ``.NAME.training/`` beside its target and moves it into place only at
the end (``model.replace_directory``): an error, Ctrl-C or a killed process never
leaves a half-written model or damages an existing one. That directory holds what
``train(..., resume=True)`` needs to carry on: the configuration and vocabulary,
written first, and the checkpoints (``checkpoints.py``), written as training goes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import tensorflow as tf

from textpredict import __version__
from textpredict.batches import EpochBatches, held_out_batches, window_tokens
from textpredict.checkpoints import (
    BEST_MODEL,
    CHECKPOINT,
    LOCK,
    Checkpointer,
    Position,
    TrainingDiverged,
    load_position,
    lock_run,
    save_best_model,
    stop_requests,
)
from textpredict.data import DataSplit, split_data
from textpredict.distribute import (
    build_from_spec,
    check_strategy,
    clip_after_summing,
    is_chief,
    make_strategy,
    parse_devices,
)
from textpredict.errors import CorpusError, ModelError, TextpredictError
from textpredict.evaluation import evaluate_text
from textpredict.metrics import PerplexityLogger, TokenMeanCrossEntropy
from textpredict.model import (
    DEFAULT_MODEL,
    LOGS_DIRECTORY,
    METRICS_FILE,
    PRECISIONS,
    ModelConfig,
    SavedModel,
    TokenCrossEntropy,
    build_language_model,
    check_choice,
    check_positive_int,
    check_replaceable,
    from_dict,
    load_model,
    recover_previous,
    replace_directory,
    resolve_model_path,
    write_json,
)
from textpredict.text import Tokenizer

SEQUENCES = ("lines", "stream")
OPTIMIZERS = ("adam", "sgd")


@dataclass
class TrainingConfig:
    """How a model is trained (stored in its config.json beside the ModelConfig)."""

    epochs: int = 8  # passes over the training text
    batch_size: int = 16  # sequences per update: small, because updates teach long cues
    seq_len: int = 64  # tokens per sequence at most: the span of backpropagation through time
    # "lines": each line from a fresh state, shuffled; "stream": the corpus as one text in
    # batch_size rows, the state carried from window to window (truncated BPTT)
    sequences: str = "lines"
    optimizer: str = "adam"  # "adam", or plain "sgd" as in Zaremba et al. 2014
    learning_rate: float = 5e-3  # step size of the first epochs
    lr_decay: float = 1.0  # the step size is multiplied by this every epoch ...
    constant_epochs: int = 0  # ... after this many epochs at the initial step size
    clipnorm: float | None = 1.0  # clip each weight's gradient to this norm (Keras's clipnorm)
    global_clipnorm: float | None = None  # or clip all gradients jointly (Pascanu et al. 2013)
    seed: int = 0  # seeds initialisation, dropout and shuffling: same seed, same model
    steps_per_epoch: int = 0  # 0: an epoch is a pass over the corpus; else this many batches
    # "default": one device; "mirrored": this machine's GPUs (or `devices`); "multi-worker":
    # the cluster in TF_CONFIG. batch_size stays the global batch (textpredict.distribute).
    strategy: str = "default"
    devices: tuple[str, ...] | None = None  # for "mirrored": e.g. ("/gpu:0", "/gpu:1")
    # The network's dtype policy while it trains: "float32", or "mixed_float16" (with
    # Keras's loss scaling) or "mixed_bfloat16" for GPUs; the saved model is float32.
    precision: str = "float32"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "seq_len"):
            check_positive_int(name, getattr(self, name))
        check_choice("sequences", self.sequences, SEQUENCES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("precision", self.precision, PRECISIONS)
        for name in ("constant_epochs", "steps_per_epoch", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TextpredictError(f"{name} must be a non-negative integer, got {value!r}")
        if not self.learning_rate > 0 or not 0 < self.lr_decay <= 1:
            raise TextpredictError("learning_rate must be positive and lr_decay in (0, 1]")
        clips = [c for c in (self.clipnorm, self.global_clipnorm) if c is not None]
        if len(clips) > 1 or not all(c > 0 for c in clips):
            raise TextpredictError("give one positive clipnorm or global_clipnorm, not both")
        self.devices = parse_devices(self.devices)
        check_strategy(self.strategy, self.devices)
        if self.strategy != "default" and self.sequences == "stream":
            raise TextpredictError(
                f"the {self.strategy} strategy trains lines, not a stream: a stream's state "
                "is carried per row, which replicas would split (use --sequences lines)"
            )

    def learning_rate_at(self, epoch: int) -> float:
        """The step size of an epoch (counted from 0): ``lr · decay^max(0, epoch + 1 − n)``."""
        return self.learning_rate * self.lr_decay ** max(0, epoch + 1 - self.constant_epochs)

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        kind = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[self.optimizer]
        return kind(
            self.learning_rate, clipnorm=self.clipnorm, global_clipnorm=self.global_clipnorm
        )


def train(
    corpus: Sequence[str | Path] | None = None,
    *,
    valid: Sequence[str | Path] | None = None,
    test: Sequence[str | Path] | None = None,
    model: str | Path = DEFAULT_MODEL,
    model_config: ModelConfig | None = None,
    training_config: TrainingConfig | None = None,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_every: float = 60.0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    encoding: str = "utf-8",
    errors: str = "strict",
) -> SavedModel:
    """Trains a language model and writes its model directory.

    Args:
        corpus: text files or folders; the embedded default corpus when empty.
        valid, test: held-out files; without them a part of the corpus is held out.
        model: a name under ``saved_models/`` or a path.
        model_config, training_config: architecture and training settings.
        overwrite: replace an existing model of that name (only once training
            succeeded), or discard an interrupted run of it and start again.
        resume: carry on with the interrupted run of ``model`` from its last
            checkpoint, with the settings it was started with (the other arguments
            but ``overwrite`` are ignored). For the same seed, the result is the
            model an uninterrupted run would have trained.
        checkpoint_every: seconds between checkpoints within an epoch (one is also
            written after every epoch, and on Ctrl-C or SIGTERM).
        callbacks: more Keras callbacks for ``fit``.
        verbose: Keras's ``fit`` verbosity (progress bar, one line an epoch, silent).
        encoding, errors: how the text files are read (see ``split_data``).

    Returns:
        The trained model, as ``load_model`` would return it; None on a multi-worker
        cluster's workers other than the chief, which write no model directory.

    Raises:
        TrainingInterrupted: on Ctrl-C or SIGTERM, once the checkpoint is saved.
        TrainingDiverged: when the loss became NaN or infinite; the best epoch before
            it, if any, has been written as the model.
    """
    target = resolve_model_path(model)
    shared = training_directory(target)  # the run's directory, where the chief writes
    if resume:  # the settings the run was started with, whatever was passed
        model_config, config, info = read_run_config(shared)
    else:
        model_config, config = model_config or ModelConfig(), training_config or TrainingConfig()
    chief = is_chief(config.strategy)
    if chief:
        recover_previous(target)
        if target.exists() and not overwrite:  # fail before minutes of training, not after
            raise ModelError(f"{target} already exists; choose another --model or pass --overwrite")
        if target.exists():
            check_replaceable(target)
    strategy = make_strategy(config.strategy, config.devices)  # before any other TF op
    # The other workers of a cluster run the same code, saving included (it keeps them in
    # step), into a scratch directory of their own that is deleted at the end.
    workdir = shared if chief else Path(tempfile.mkdtemp(prefix="textpredict-worker-"))
    run = None
    try:
        if resume:
            run = TrainingRun.resume(workdir, shared, model_config, config, info)
        else:
            data = split_data(corpus, valid, test, encoding, errors)
            run = TrainingRun.start(workdir, data, model_config, config, overwrite)
        return run.train(target if chief else None, strategy, checkpoint_every, callbacks, verbose)
    finally:
        # Now, not when the run is collected: an interrupted run's traceback (which a
        # notebook keeps) holds it, and would block resuming it in the same process.
        if run is not None:
            run.lock.close()
        if not chief:
            shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _released_on_error(lock):
    """Yields the open lock file ``lock``, and closes it if the block raises."""
    try:
        yield lock
    except BaseException:
        lock.close()
        raise


def read_run_config(workdir: Path) -> tuple[ModelConfig, TrainingConfig, dict]:
    """The settings an interrupted run was started with, and the whole ``config.json``
    (read without TensorFlow)."""
    if load_position(workdir) is None:
        raise ModelError(f"there is no interrupted run to resume in {workdir}")
    try:
        info = json.loads((workdir / "config.json").read_text(encoding="utf-8"))
        model_config = from_dict(ModelConfig, info["model"])
        return model_config, from_dict(TrainingConfig, info["training"]), info
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"cannot resume the run in {workdir}: {error}") from None


def training_directory(target: Path) -> Path:
    """Where a run for ``target`` works until it is done: ``.NAME.training`` beside it."""
    return target.with_name(f".{target.name}.training")


class TrainingRun:
    """One training run in its directory: started afresh, or resumed from a checkpoint."""

    def __init__(self, workdir, model_config, config, tokenizer, data, position, resumed):
        self.workdir: Path = workdir
        self.model_config: ModelConfig = model_config
        self.config: TrainingConfig = config
        self.tokenizer: Tokenizer = tokenizer
        self.data: DataSplit = data
        self.position: Position = position
        self.resumed: bool = resumed
        self.source: Path = workdir  # where a resumed run's checkpoint is read
        self.lock = None  # the open lock file of the directory (checkpoints.lock_run)

    @classmethod
    def start(
        cls,
        workdir: Path,
        data: DataSplit,
        model_config: ModelConfig,
        config: TrainingConfig,
        overwrite: bool,
    ) -> TrainingRun:
        """Builds the vocabulary and writes the run's directory and configuration."""
        if workdir.is_dir():  # left by a run that ended without finishing, or still running
            lock_run(workdir).close()
            if load_position(workdir) is not None and not overwrite:
                raise ModelError(
                    f"an interrupted run of this model is saved in {workdir}; carry on with "
                    "--resume, or pass --overwrite to start again"
                )
            shutil.rmtree(workdir, ignore_errors=True)
        try:
            workdir.mkdir(parents=True)
        except FileExistsError:
            raise ModelError(f"another training run is working in {workdir}") from None
        except OSError as error:
            raise ModelError(f"cannot write to {workdir.parent}: {error.strerror}") from None
        with _released_on_error(lock_run(workdir)) as lock:
            tokenizer = Tokenizer.adapt(
                data.lines("train"), model_config.vocabulary_size, model_config.tokenization
            )
            tokenizer.save(workdir / "vocabulary.txt")
            write_json(
                workdir / "config.json",
                {
                    "textpredict_version": __version__,
                    "model": asdict(model_config),
                    "training": asdict(config),
                    "vocabulary_size": tokenizer.vocabulary_size,
                    "data": data.describe(),
                },
            )
        run = cls(workdir, model_config, config, tokenizer, data, Position(), resumed=False)
        run.source, run.lock = workdir, lock
        return run

    @classmethod
    def resume(
        cls,
        workdir: Path,
        source: Path,
        model_config: ModelConfig,
        config: TrainingConfig,
        info: dict,
    ) -> TrainingRun:
        """Reads back the run in the directory ``source`` (whose settings and
        ``config.json`` ``read_run_config`` gave), at its last checkpoint, to carry on
        in ``workdir`` (the same directory, except on a cluster's workers other than
        the chief, which need ``source`` on storage they can all read)."""
        with _released_on_error(lock_run(workdir)) as lock:
            try:
                tokenizer = Tokenizer.load(source / "vocabulary.txt", model_config.tokenization)
            except (OSError, ValueError) as error:
                raise ModelError(f"cannot resume the run in {source}: {error}") from None
            data = DataSplit.from_description(info.get("data") or {})
        run = cls(workdir, model_config, config, tokenizer, data, load_position(source), True)
        run.source, run.lock = source, lock
        return run

    def train(self, target: Path | None, strategy, checkpoint_every, callbacks, verbose):
        """Fits and finishes the run (``train``'s body); ``target`` None: a worker that
        writes no model."""
        workdir = self.workdir
        try:
            self.fit(strategy, checkpoint_every, callbacks, verbose)
        except TrainingDiverged as error:
            if self.position.best_epoch == 0:
                shutil.rmtree(workdir, ignore_errors=True)
                raise TrainingDiverged(
                    f"{error}, before any epoch was complete; nothing was saved. "
                    "Try a lower --learning-rate"
                ) from None
            self.finish(target)
            raise TrainingDiverged(
                f"{error}; the last good model, epoch {self.position.best_epoch}, is saved in "
                f"{target}. Try a lower --learning-rate"
            ) from None
        except BaseException:
            if load_position(workdir) is None:  # nothing worth resuming was saved yet
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        self.finish(target)
        return load_model(target) if target is not None else None

    def fit(self, strategy, checkpoint_every: float, callbacks, verbose) -> None:
        """Trains from ``self.position`` to the last epoch, one ``fit`` call an epoch
        (an epoch resumed in its middle is shorter)."""
        config, position = self.config, self.position
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        cache = self.workdir / "cache"  # windows on disk, not in memory: see EpochBatches
        shutil.rmtree(cache, ignore_errors=True)  # a killed run may have left it half-written
        cache.mkdir()
        train_batches = EpochBatches(self.tokenizer, self.data.lines("train"), config, cache)
        if train_batches.count == 0:
            raise CorpusError(
                f"the corpus is shorter than one training window ({window_tokens(config)} "
                "tokens); pass a larger corpus or a smaller --seq-len or --batch-size"
            )
        valid_batches = held_out_batches(
            self.tokenizer, self.data.lines("valid"), config, cache / "valid"
        )
        if valid_batches.cardinality() == 0:
            raise CorpusError(
                f"the validation text is shorter than one window ({window_tokens(config)} tokens)"
            )
        with strategy.scope():  # the weights are mirrored on every replica
            network = compiled_network(self.model_config, config, self.tokenizer.vocabulary_size)
        build_from_spec(network, valid_batches)
        schedule = []
        if config.lr_decay != 1:
            schedule = [
                keras.callbacks.LearningRateScheduler(lambda e, _: config.learning_rate_at(e))
            ]
        with stop_requests() as stop:
            restore = self.source if self.resumed else None
            checkpointer = Checkpointer(self.workdir, position, checkpoint_every, stop, restore)
            for epoch in range(position.epoch, config.epochs):
                done = position.step
                network.fit(
                    train_batches.epoch(epoch, skip=done),
                    validation_data=valid_batches,
                    initial_epoch=epoch,
                    epochs=config.epochs,
                    steps_per_epoch=train_batches.count - done,
                    shuffle=False,  # EpochBatches shuffles, with the seed
                    verbose=verbose,
                    callbacks=[
                        # In this order: the carried state is zeroed before the
                        # checkpointer restores it, and the logs are complete before
                        # it records them.
                        *([ResetStates()] if config.sequences == "stream" else []),
                        *schedule,
                        EpochTimer(),
                        PerplexityLogger(),
                        *callbacks,
                        keras.callbacks.TensorBoard(self.workdir / LOGS_DIRECTORY, profile_batch=0),
                        checkpointer,
                        StopAfterEpoch(),
                    ],
                )
        shutil.rmtree(cache, ignore_errors=True)

    def finish(self, target: Path | None) -> None:
        """Scores the best epoch, writes the model directory and moves it into place
        (``target`` None: a worker that writes no model, which stops at the scores)."""
        workdir, config, position = self.workdir, self.config, self.position
        best = keras.saving.load_model(workdir / BEST_MODEL, compile=False)
        if config.sequences == "stream" or config.precision != "float32":
            best = portable_copy(best, self.model_config, self.tokenizer.vocabulary_size)
            save_best_model(workdir, best)
        evaluation = {
            part: evaluate_text(
                best,
                self.model_config,
                self.tokenizer,
                self.data.lines(part),
                config.sequences,
                config.seq_len,
            ).as_dict()
            for part in ("valid", "test")
        }
        write_json(
            workdir / METRICS_FILE,
            {
                "history": position.history,
                "best_epoch": position.best_epoch,
                "train_seconds": float(sum(position.history.get("epoch_seconds", []))),
                **evaluation,
            },
        )
        shutil.rmtree(workdir / "cache", ignore_errors=True)
        if target is None:
            return
        replace_directory(workdir, target)
        # Only now: a crash before the swap must leave the run resumable (it would just
        # finish again). One after it leaves a stray checkpoint in a complete model.
        (target / CHECKPOINT).unlink(missing_ok=True)
        (target / LOCK).unlink(missing_ok=True)
        self.lock.close()


def compiled_network(
    model_config: ModelConfig, config: TrainingConfig, vocabulary_size: int
) -> keras.Model:
    """The network ``train`` fits, compiled with its optimiser and the masked loss.

    For a stream it is stateful (truncated BPTT carries the state from batch to
    batch), so it is built for ``config.batch_size`` rows. In ``config.precision``;
    for "mixed_float16", Keras's ``compile`` wraps the optimiser in a
    ``LossScaleOptimizer``, so that small gradients do not underflow in float16.
    """
    stateful = config.sequences == "stream"
    network = build_language_model(
        model_config,
        vocabulary_size,
        stateful=stateful,
        batch_size=config.batch_size if stateful else None,
        seed=config.seed,
        precision=config.precision,
    )
    network.compile(
        optimizer=clip_after_summing(config.make_optimizer()),
        loss=TokenCrossEntropy(),
        # The epoch's loss per token (see PerplexityLogger). Only lines need it: every
        # window of a stream holds batch × seq_len targets, so there Keras's mean over
        # batches is already the mean over tokens, at no extra softmax per step.
        metrics=[TokenMeanCrossEntropy()] if config.sequences == "lines" else [],
    )
    return network


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds``, the wall time of the epoch with its validation, to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.started


class ResetStates(keras.callbacks.Callback):
    """Zeroes a stateful network's carried state wherever its text starts over: at the
    start of every epoch and of every validation pass."""

    def on_epoch_begin(self, epoch, logs=None):
        reset_states(self.model)

    def on_test_begin(self, logs=None):
        reset_states(self.model)


def reset_states(network: keras.Model) -> None:
    for layer in network.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def portable_copy(network: keras.Model, config: ModelConfig, vocabulary_size: int):
    """The same weights in the network a model directory holds: one that starts every
    call from a zero state and computes in float32, on any device (the variables of a
    mixed-precision network are float32 already)."""
    copy = build_language_model(config, vocabulary_size)
    copy.set_weights(network.get_weights())
    return copy


class StopAfterEpoch(keras.callbacks.Callback):
    """Ends ``fit`` after one epoch: ``train`` calls ``fit`` once an epoch, so that an
    epoch resumed in its middle can be shorter, while Keras still shows "Epoch 3/8"."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True
