"""Training that survives Ctrl-C, a killed process and a diverging loss.

A run of ``textpredict train --model NAME`` works in ``.NAME.training/`` beside its
target (see ``training.train``) and writes there, as it goes:

    checkpoint.npz   the whole training state at the last save: every weight, the
                     optimiser's slots and step count, the dropout seed generators,
                     a stateful network's carried state, the loss accumulators, and
                     the position (epoch, batch) and history of the run
    model.keras      the epoch with the best validation loss so far

Each file is written under a temporary name, flushed to disk and renamed over the old
one (``durable.replace_file``), so a ``kill -9`` or a power cut at any moment leaves the
previous checkpoint whole. Because the batches of an epoch are a pure function of the
seed and the epoch (see ``batches.EpochBatches``), restoring the state and skipping
the batches already done continues the run exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

from textpredict.durable import replace_file
from textpredict.errors import ModelError, TextpredictError

CHECKPOINT = "checkpoint.npz"
BEST_MODEL = "model.keras"
LOCK = ".lock"


class TrainingInterrupted(TextpredictError):
    """Training stopped on request (Ctrl-C or SIGTERM) after saving a checkpoint.

    ``signal_number`` is the signal that asked for the stop, for the exit status
    a shell expects of a process it ended: 128 + the signal's number.
    """

    def __init__(self, message: str, signal_number: int = signal.SIGINT):
        super().__init__(message)
        self.signal_number = int(signal_number)


class TrainingDiverged(TextpredictError):
    """The training loss became NaN or infinite."""


@dataclass
class Position:
    """Where a run stands: ``step`` batches of epoch ``epoch`` (from 0) are done."""

    epoch: int = 0
    step: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)  # completed epochs
    best_loss: float = math.inf  # the lowest validation loss so far ...
    best_epoch: int = 0  # ... and its epoch, counted from 1 (0: none yet)


def training_state(network: keras.Model) -> list:
    """Every variable that a training step reads or writes, in a fixed order.

    ``network.variables`` holds the weights and the dropout seed generators; a
    stateful network's carried state lives in plain ``tf.Variable``s of its recurrent
    layers, outside Keras's tracking.
    """
    carried = [v for layer in network.layers for v in (getattr(layer, "states", None) or ())]
    return [
        *network.variables,
        *network.optimizer.variables,
        *network.metrics_variables,
        *carried,
    ]


def save_checkpoint(directory: Path, network: keras.Model, position: Position) -> None:
    """Writes ``checkpoint.npz`` atomically (a temporary file renamed over the old)."""
    arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(training_state(network))}
    arrays["position"] = np.array(json.dumps(asdict(position)))
    temporary = directory / f".{CHECKPOINT}.tmp"
    with open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
    replace_file(temporary, directory / CHECKPOINT)


def save_best_model(directory: Path, network: keras.Model) -> None:
    """Writes ``model.keras`` atomically (a temporary file renamed over the old)."""
    temporary = directory / f".tmp-{BEST_MODEL}"  # Keras wants the suffix
    network.save(temporary)
    replace_file(temporary, directory / BEST_MODEL)


def load_position(directory: Path) -> Position | None:
    """The position of the last checkpoint in ``directory``, or None if there is none."""
    path = directory / CHECKPOINT
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return Position(**json.loads(str(saved["position"])))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"cannot read the checkpoint {path}: {error}") from None


def restore_checkpoint(directory: Path, network: keras.Model) -> None:
    """Loads ``checkpoint.npz`` into a built and compiled network and its optimiser."""
    path = directory / CHECKPOINT
    variables = training_state(network)
    with np.load(path, allow_pickle=False) as saved:
        count = sum(1 for name in saved.files if name != "position")
        if count != len(variables):
            raise ModelError(f"the checkpoint {path} does not match this model")
        for i, variable in enumerate(variables):
            value = saved[f"v{i}"]
            if tuple(value.shape) != tuple(variable.shape):
                raise ModelError(f"the checkpoint {path} does not match this model")
            variable.assign(value)


class Checkpointer(keras.callbacks.Callback):
    """Saves the run as it goes and stops it cleanly.

    * After every epoch: records its logs, writes ``model.keras`` if the validation
      loss is the best so far, then the checkpoint of the next epoch's start.
    * Every ``every`` seconds within an epoch: the checkpoint (0: after every batch).
    * After the batch during which Ctrl-C or SIGTERM arrived: the checkpoint, then
      ``TrainingInterrupted``.
    * After a batch whose loss is NaN or infinite: ``TrainingDiverged``, without a
      checkpoint, so the last one stays the last good state.

    Args:
        directory: the training directory.
        position: where this part of the run starts.
        restore_from: the directory of the checkpoint to restore into the network at
            the first epoch start (after Keras has reset the loss accumulators and
            ``ResetStates`` the carried state), when resuming.
        every: seconds between checkpoints within an epoch.
        stop: set when the run must stop (see ``stop_requests``).
    """

    def __init__(
        self,
        directory: Path,
        position: Position,
        every: float,
        stop: threading.Event,
        restore_from: Path | None = None,
    ):
        super().__init__()
        self.directory = Path(directory)
        self.position = position
        self.every = every
        self.stop = stop
        self.restore_from = restore_from
        self.first_step = position.step  # batches of this epoch done before this fit
        self.last_save = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        if self.restore_from is not None:
            restore_checkpoint(self.restore_from, self.model)
            self.restore_from = None

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not optimizer.built:  # Keras builds it at the first step; the state needs it now
            optimizer.build(self.model.trainable_variables)
        if not (self.directory / CHECKPOINT).is_file():  # resumable from the first batch
            self.save()

    def on_train_batch_end(self, batch, logs=None):
        position = self.position
        position.step = self.first_step + batch + 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training diverged: the loss became {float(loss)} in epoch "
                f"{position.epoch + 1}, batch {position.step}"
            )
        if batch + 1 == self.params.get("steps"):
            return  # the epoch's end saves next, after validation
        if self.stop.is_set():
            self.save()
            self.interrupt()
        if time.monotonic() - self.last_save >= self.every:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        position = self.position
        for name, value in (logs or {}).items():
            position.history.setdefault(name, []).append(float(value))
        loss = float((logs or {}).get("val_loss", math.nan))
        if loss < position.best_loss:  # NaN compares false: never "best"
            save_best_model(self.directory, self.model)
            position.best_loss, position.best_epoch = loss, epoch + 1
        position.epoch, position.step = epoch + 1, 0
        self.first_step = 0
        self.save()
        if self.stop.is_set():
            self.interrupt()

    def interrupt(self):
        raise TrainingInterrupted(
            f"training interrupted; saved at epoch {self.position.epoch + 1}, batch "
            f"{self.position.step}, in {self.directory}",
            getattr(self.stop, "signal_number", signal.SIGINT),
        )

    def save(self) -> None:
        save_checkpoint(self.directory, self.model, self.position)
        self.last_save = time.monotonic()


def lock_run(directory: Path):
    """Claims a run's directory for this process, or raises ``ModelError`` if another
    live process holds it. The claim is an advisory lock on ``.lock``, which the
    system drops when the process ends, even by ``kill -9``: so a directory left by a
    dead run is free. Returns the open lock file; keep it open while the run lasts.
    (Where ``fcntl`` is missing, on Windows, nothing is locked.)
    """
    handle = open(Path(directory) / LOCK, "a")  # noqa: SIM115 (held for the whole run)
    if sys.platform == "win32":
        return handle
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ModelError(f"another training run is working in {directory}") from None
    return handle


@contextmanager
def stop_requests():
    """Turns the first Ctrl-C (SIGINT) or SIGTERM into a request to stop.

    Yields an event that a handler sets, so that training can finish the batch it is
    in and save a checkpoint instead of dying mid-write; its ``signal_number`` says
    which signal asked. A second Ctrl-C raises
    ``KeyboardInterrupt`` at once, for a user who will not wait. Outside the main
    thread signals cannot be handled, and the event is never set.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request_stop(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signal_number = signum
        stop.set()
        print(
            "\nStopping after this batch and saving a checkpoint (Ctrl-C again to quit now).",
            file=sys.stderr,
            flush=True,
        )

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
