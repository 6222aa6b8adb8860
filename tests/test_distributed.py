"""Training on several devices and machines, on CPU: the mirrored strategy over two
logical CPU devices, and the multi-worker strategy with two worker processes on
127.0.0.1, each compared with a single-device run of the same global batch.

Every run is a subprocess: a strategy's devices and collective operations can only be
set up before TensorFlow starts, which in this process it has.

The runs use plain SGD, no dropout and a small clipnorm, so that clipping acts. SGD
moves each weight by the gradient itself, so a replica that got the loss scaling or
the clipping wrong (Keras's per-replica mean over unevenly padded rows, clipping before
the replicas' gradients are summed) is off by far more than rounding after the run's
steps (measured, largest weight difference: 0.004 with Keras's per-replica loss, 0.2
with clipping before summing), while summing the replicas' gradients in another order
changes only the last bits of float32 (measured: 8e-8). Hence the tolerance of 1e-5.
Adam would hide a wrongly scaled loss (it divides by the gradient's own size), and
each replica draws its own dropout masks.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from textpredict.cli import main
from textpredict.default_corpus import generate

REPO = Path(__file__).resolve().parents[1]
TINY = ["--units", "16", "--embedding-dim", "8", "--seq-len", "2", "--batch-size", "16"]
TOLERANCE = 1e-5
TIMEOUT = 240  # seconds for a distributed run; they take 30-100 s on two shared cores
# A tiny model and few steps; clipnorm small enough that clipping acts at every step.
TRAINING = """
import os
import signal
import sys
from textpredict.model import ModelConfig
from textpredict.training import TrainingConfig, train

strategy, devices = sys.argv[2], tuple(sys.argv[3:]) or None
settings = dict(
    model_config=ModelConfig(units=16, embedding_dim=8, dropout=0.0),
    training_config=TrainingConfig(
        epochs=1, batch_size=16, seq_len=2, optimizer="sgd", learning_rate=1.0,
        clipnorm=0.02, seed=3, strategy=strategy, devices=devices,
    ),
    verbose=0,
)
if os.environ.get("CTRL_C_AT_BATCH"):  # Ctrl-C during that batch, then --resume
    import keras
    from textpredict.checkpoints import TrainingInterrupted

    class CtrlC(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == int(os.environ["CTRL_C_AT_BATCH"]):
                os.kill(os.getpid(), signal.SIGINT)

    try:
        train([sys.argv[1]], callbacks=[CtrlC()], **settings)
        raise SystemExit("not interrupted")
    except TrainingInterrupted:
        print("interrupted")
    trained = train(resume=True, **settings)
else:
    trained = train([sys.argv[1]], **settings)
print("chief" if trained else "not the chief")
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("distributed") / "corpus.txt"
    path.write_text("\n".join(generate(60, seed=7)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def single_device(corpus):
    """The reference: the same training on one device, in this process."""
    home = corpus.parent / "single"
    run = subprocess.run(
        training(corpus, "default"),
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    return weights(home / "default")


def training(corpus, strategy, *devices):
    return [sys.executable, "-c", TRAINING, str(corpus), strategy, *devices]


def weights(model_directory):
    from textpredict.model import load_model

    return load_model(model_directory).network.get_weights()


def max_difference(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def environment(models, **extra):
    """This checkout on the path (not an installed copy), and the given models home."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return {**env, "PYTHONPATH": str(REPO), "TEXTPREDICT_MODELS": str(models), **extra}


def test_mirrored_on_two_cpu_devices_matches_one_device_through_ctrl_c_and_resume(
    corpus, single_device, tmp_path
):
    """Mirrored over two logical CPUs, stopped by Ctrl-C in the middle of the epoch
    and resumed: the same model as one device's uninterrupted run."""
    run = subprocess.run(
        training(corpus, "mirrored", "/cpu:0", "/cpu:1"),
        env=environment(tmp_path / "models", CTRL_C_AT_BATCH="5"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert run.stdout.split() == ["interrupted", "chief"]
    mirrored = weights(tmp_path / "models" / "default")
    assert max_difference(mirrored, single_device) < TOLERANCE


def free_ports(count):
    """Ports the system had free a moment ago (bound to port 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_match_one_device_and_only_the_chief_writes(corpus, single_device, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        folder = tmp_path / f"worker{index}"  # its own machine: folder and models home
        folder.mkdir()
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                training(corpus, "multi-worker"),
                env=environment(folder / "models", TF_CONFIG=config),
                cwd=folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        outputs = [worker.communicate(timeout=TIMEOUT)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    assert outputs[0].strip().endswith("chief") and "not the chief" in outputs[1]
    chief = weights(tmp_path / "worker0" / "models" / "default")
    assert max_difference(chief, single_device) < TOLERANCE
    other = tmp_path / "worker1"
    assert not (other / "models").exists() or not any((other / "models").iterdir())


@pytest.mark.parametrize(
    ("args", "tf_config", "message"),
    [
        (["--strategy", "multi-worker"], None, "needs the cluster in TF_CONFIG"),
        (["--strategy", "multi-worker"], "{cluster", "TF_CONFIG is not valid JSON"),
        (
            ["--strategy", "multi-worker"],
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
            "task index must be an index into cluster['worker']",
        ),
        (["--strategy", "mirrored", "--devices", "tpu:0"], None, "names like /gpu:0"),
        (["--strategy", "mirrored", "--devices", "/gpu:0,/gpu:0"], None, "must not repeat"),
        (["--devices", "/cpu:0"], None, "can only be chosen with the mirrored strategy"),
        (["--strategy", "mirrored", "--sequences", "stream"], None, "trains lines, not a stream"),
    ],
)
def test_strategy_mistakes_are_one_line_errors(
    corpus, tmp_path, monkeypatch, args, tf_config, message
):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config is not None:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    runner = CliRunner(env={"TEXTPREDICT_MODELS": str(tmp_path / "models")})
    result = runner.invoke(main, ["train", "-c", str(corpus), *TINY, *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert not (tmp_path / "models").exists()
