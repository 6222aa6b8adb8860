"""Interrupted, killed and diverging training: nothing is lost, and resuming gives the
model an uninterrupted run would have trained."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from textpredict.checkpoints import (
    TrainingDiverged,
    TrainingInterrupted,
    load_position,
    lock_run,
)
from textpredict.cli import main
from textpredict.default_corpus import generate
from textpredict.model import ModelConfig, load_model
from textpredict.training import TrainingConfig, train, training_directory

REPO = Path(__file__).resolve().parent.parent
TINY_MODEL = ModelConfig(units=12, embedding_dim=8, dropout=0.2)  # dropout: its seeds count
TINY_ARGS = ["--units", "12", "--embedding-dim", "8", "--dropout", "0.2"]
LINES = dict(epochs=2, batch_size=8, seq_len=4, seed=3)  # few row widths: few compilations
STREAM = dict(epochs=2, batch_size=4, seq_len=6, seed=3, sequences="stream")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "corpus.txt"
    path.write_text("\n".join(generate(80, seed=11)) + "\n", encoding="utf-8")
    return path


def run(corpus, path, settings, **kwargs):
    return train(
        [corpus],
        model=path,
        model_config=TINY_MODEL,
        training_config=TrainingConfig(**settings),
        checkpoint_every=0,
        verbose=0,
        **kwargs,
    )


def weights(path):
    return keras.saving.load_model(Path(path) / "model.keras", compile=False).get_weights()


def assert_same_weights(a, b):
    for x, y in zip(weights(a), weights(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


class CtrlC(keras.callbacks.Callback):
    """Presses Ctrl-C (a real SIGINT to this process, or another signal such as the
    SIGTERM of `kill`) during one batch of one epoch."""

    def __init__(self, epoch, batch, signal_number=signal.SIGINT):
        super().__init__()
        self.at, self.epoch, self.signal_number = (epoch, batch), None, signal_number

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        last = self.params["steps"] - 1
        if self.at in ((self.epoch, batch), (self.epoch, batch - last - 1)):  # -1: the last
            os.kill(os.getpid(), self.signal_number)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    """Reference runs, never stopped: {"lines": path, "stream": path}."""
    home = tmp_path_factory.mktemp("reference")
    return {
        name: run(corpus, home / name, settings).path
        for name, settings in (("lines", LINES), ("stream", STREAM))
    }


@pytest.mark.parametrize(
    ("name", "settings", "epoch", "batch", "signal_number"),
    [
        # mid-epoch: the shuffled batches of epoch 1 are skipped
        ("lines", LINES, 0, 5, signal.SIGINT),
        # the last batch: stops after the epoch's validation
        ("lines", LINES, 1, -1, signal.SIGINT),
        # the carried state and the schedule are restored; `kill` stops as Ctrl-C does
        ("stream", STREAM, 1, 3, signal.SIGTERM),
    ],
)
def test_ctrl_c_saves_a_checkpoint_and_resume_trains_the_same_model(
    corpus, uninterrupted, tmp_path, name, settings, epoch, batch, signal_number
):
    path = tmp_path / "model"
    with pytest.raises(
        TrainingInterrupted, match=f"saved at epoch {epoch + 1 + (batch < 0)}"
    ) as stopped:
        run(corpus, path, settings, callbacks=[CtrlC(epoch, batch, signal_number)])
    assert stopped.value.signal_number == signal_number
    assert not path.exists()
    assert load_position(training_directory(path)) is not None
    resumed = run(corpus, path, settings, resume=True)
    assert_same_weights(resumed.path, uninterrupted[name])
    expected = load_model(uninterrupted[name]).metrics["history"]
    for key, values in resumed.metrics["history"].items():
        if key != "epoch_seconds":
            np.testing.assert_allclose(values, expected[key], rtol=1e-5, err_msg=key)
    assert not training_directory(path).exists()


def test_a_mixed_precision_run_resumes_to_the_same_model(corpus, tmp_path):
    """The checkpoint holds the LossScaleOptimizer's state beside Adam's."""
    settings = {**LINES, "precision": "mixed_float16"}
    reference = run(corpus, tmp_path / "reference", settings)
    path = tmp_path / "model"
    with pytest.raises(TrainingInterrupted):
        run(corpus, path, settings, callbacks=[CtrlC(0, 5)])
    resumed = run(corpus, path, settings, resume=True)
    assert_same_weights(resumed.path, reference.path)
    assert resumed.info["training"]["precision"] == "mixed_float16"


def snapshot(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_kill_9_at_random_moments_loses_nothing_and_resume_finishes_the_run(
    corpus, uninterrupted, tmp_path
):
    """`kill -9` of `textpredict train --overwrite` at random moments: the previous
    model is intact and loadable each time, and resuming from whatever checkpoint the
    killed run left gives the model of the uninterrupted run."""
    home = tmp_path / "models"
    target = home / "m"
    shutil.copytree(uninterrupted["stream"], target)  # the previous model: another run
    before = snapshot(target)
    command = [sys.executable, "-m", "textpredict", "train", "-c", str(corpus)]
    command += ["--model", str(target), "--overwrite", "--checkpoint-every", "0", *TINY_ARGS]
    command += ["--epochs", "2", "--batch-size", "8", "--seq-len", "4", "--seed", "3"]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TEXTPREDICT_MODELS": str(home)}
    checkpoint = training_directory(target) / "checkpoint.npz"
    rng = np.random.default_rng(7)
    # One kill while the process starts, three at random moments once it trains.
    for phase, delay in [
        ("start", rng.uniform(0, 3)),
        *[("train", d) for d in rng.uniform(0, 4, 3)],
    ]:
        process = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while phase == "train" and not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        process.kill()
        process.wait(timeout=30)
        where = f"killed {delay:.2f} s into {phase}"
        loaded = load_model(target)  # loadable: the previous model, or the finished one
        if snapshot(target) != before:  # it had finished
            assert_same_weights(loaded.path, uninterrupted["lines"]), where
            assert not (target / "checkpoint.npz").exists(), where
        elif load_position(training_directory(target)) is not None:
            resumed = run(corpus, target, LINES, resume=True, overwrite=True)
            assert_same_weights(resumed.path, uninterrupted["lines"]), where
        else:
            assert phase == "start", where
            continue
        shutil.rmtree(target)
        shutil.copytree(uninterrupted["stream"], target)
    assert sorted(p.name for p in home.iterdir()) in (["m"], [".m.training", "m"])


class PoisonWeights(keras.callbacks.Callback):
    """Makes the loss NaN from one batch of one epoch on, as an exploding run does."""

    def __init__(self, epoch):
        super().__init__()
        self.at, self.epoch = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == self.at and batch == 2:
            weights = self.model.get_weights()
            self.model.set_weights([np.full_like(w, np.nan) for w in weights])


def test_a_diverging_run_stops_and_keeps_its_last_good_epoch(corpus, uninterrupted, tmp_path):
    path = tmp_path / "model"
    with pytest.raises(TrainingDiverged, match=r"loss became nan in epoch 2, batch 3.*epoch 1"):
        run(corpus, path, LINES, callbacks=[PoisonWeights(epoch=1)])
    kept = load_model(path)
    assert kept.metrics["best_epoch"] == 1
    assert len(kept.metrics["history"]["val_loss"]) == 1
    assert all(np.isfinite(w).all() for w in kept.network.get_weights())
    assert np.isfinite(kept.metrics["valid"]["perplexity"])
    assert not training_directory(path).exists()


def test_divergence_in_the_first_epoch_leaves_an_existing_model_alone(
    corpus, uninterrupted, tmp_path
):
    path = tmp_path / "model"
    shutil.copytree(uninterrupted["lines"], path)
    before = snapshot(path)
    with pytest.raises(TrainingDiverged, match="nothing was saved"):
        run(corpus, path, LINES, overwrite=True, callbacks=[PoisonWeights(epoch=0)])
    assert snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_resume_on_the_command_line(corpus, tmp_path, monkeypatch):
    """An interrupted run blocks a fresh one; --resume takes no other settings; a live
    run's directory is left alone."""
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(tmp_path))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, ["train", *map(str, args)], catch_exceptions=False)

    result = invoke("--resume", "--model", "m")
    assert result.exit_code == 1 and "no interrupted run to resume" in result.output
    workdir = training_directory(tmp_path / "m")
    workdir.mkdir()
    np.savez(workdir / "checkpoint.npz", position=np.array('{"epoch": 1, "step": 4}'))
    (workdir / "config.json").write_text('{"model": {}, "training": {}}')
    result = invoke("-c", corpus, "--model", "m")
    assert result.exit_code == 1 and "carry on with --resume" in result.output
    result = invoke("--resume", "--model", "m", "--epochs", "3", "-c", corpus)
    assert result.exit_code == 2 and "--epochs" in result.output and "--corpus" in result.output
    assert "Traceback" not in result.output
    with lock_run(workdir):  # a live run holds it: neither starting over nor resuming
        for args in (["-c", corpus, "--overwrite"], ["--resume"]):
            result = invoke(*args, "--model", "m")
            assert result.exit_code == 1 and "another training run is working" in result.output
    assert (workdir / "checkpoint.npz").exists()


def test_with_steps_per_epoch_epochs_are_consecutive_slices_of_the_passes(corpus, tmp_path):
    """`steps_per_epoch` as Keras means it on a repeated dataset: epoch e is batches
    [e·S, (e+1)·S) of pass after pass over the corpus, each pass shuffled anew."""
    from textpredict.batches import EpochBatches
    from textpredict.text import Tokenizer, read_lines

    lines = read_lines([corpus])
    tokenizer = Tokenizer.adapt(lines, 200)
    config = TrainingConfig(batch_size=8, seq_len=4, seed=3)
    per_pass = EpochBatches(tokenizer, lines, config, tmp_path).count
    steps = per_pass // 2 + 3  # three epochs straddle two passes
    settings = {**vars(config), "steps_per_epoch": steps}
    sliced = EpochBatches(tokenizer, lines, TrainingConfig(**settings), tmp_path)

    def inputs(batches):
        return [x.numpy() for x, _ in batches]

    stream = inputs(sliced.endless().take(3 * steps))
    epochs = [inputs(sliced.epoch(e)) for e in range(3)]
    assert [len(e) for e in epochs] == [steps] * 3
    for got, expected in zip([x for e in epochs for x in e], stream, strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(inputs(sliced.epoch(1, skip=2))[0], epochs[1][2])
    first, second = (sorted(map(bytes, stream[i : i + per_pass // 2])) for i in (0, per_pass))
    assert first != second  # the second pass is shuffled anew
