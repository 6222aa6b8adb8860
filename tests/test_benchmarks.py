"""The speed benchmarks run, count FLOPs right, and report every contender."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lstm_step():
    return load("lstm_step")


def test_step_flops_are_three_times_the_forward_matrix_products(lstm_step):
    batch, steps, features, units = 2, 3, 5, 7
    for gates in (4, 3, 1):
        # x @ W: (T·B, D)·(D, gU) once; h @ U: (B, U)·(U, gU) at every step; 2 FLOPs a term
        forward = 2 * (steps * batch) * features * gates * units
        forward += steps * 2 * batch * units * gates * units
        assert lstm_step.step_flops(batch, steps, features, units, gates) == 3 * forward


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_every_contender_takes_a_real_training_step(lstm_step, precision):
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 3, 4)), tf.float32)
    for name, (cls, _) in lstm_step.CELLS.items():
        layer = cls(5, return_sequences=True, dtype=precision)
        step = lstm_step.keras_step(layer, x, jit=False)
        before = [w.numpy().copy() for w in layer.trainable_weights]
        step()
        after = layer.trainable_weights
        assert all(not np.array_equal(b, a.numpy()) for b, a in zip(before, after, strict=True)), (
            name
        )


def test_the_report_has_every_contender_and_the_ratios(lstm_step, monkeypatch, capsys):
    monkeypatch.setattr(lstm_step, "SHAPES", {"tiny": (2, 3, 4, 5)})
    assert lstm_step.main(["--rounds", "1", "--seconds", "0.01", "--no-torch"]) == 0
    output = capsys.readouterr().out
    assert "tiny: batch 2, 3 steps, 4 inputs, 5 units" in output
    for name in [*(f"textpredict.{c}" for c in lstm_step.CELLS), "keras.LSTM", "keras.LSTM xla"]:
        assert f"  {name} " in output
    header = next(line for line in output.splitlines() if "contender" in line)
    assert "vs keras" in header and "vs torch" not in header  # no PyTorch, no column


def test_the_report_says_in_which_precision_it_ran(lstm_step, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(lstm_step, "SHAPES", {"tiny": (2, 3, 4, 5)})
    arguments = ["--rounds", "1", "--seconds", "0.01", "--no-torch", "--json", tmp_path / "r"]
    assert lstm_step.main([*map(str, arguments), "--precision", "mixed_bfloat16"]) == 0
    assert "TensorFlow contenders in mixed_bfloat16" in capsys.readouterr().out
    saved = json.loads((tmp_path / "r").read_text())
    assert saved["precision"] == "mixed_bfloat16" and len(saved["results"]) == 7


def test_ptb_report_states_the_papers_learning_rate_and_the_saved_epoch(tmp_path):
    report = load("ptb_report")
    training = {"optimizer": "sgd", "seq_len": 20, "learning_rate": 20.0, "epochs": 3}
    history = {
        "loss": [5.0, 4.5, 4.4],
        "perplexity": [150.0, 90.0, 80.0],
        "val_perplexity": [130.0, 120.0, 125.0],
        "learning_rate": [20.0, 20.0, 10.0],
        "epoch_seconds": [240.0, 230.0, 235.0],
    }
    evaluation = {"perplexity": 119.5, "tokens": 73759}
    (tmp_path / "config.json").write_text(json.dumps({"model": {}, "training": training}))
    (tmp_path / "metrics.json").write_text(
        json.dumps(
            {
                "history": history,
                "best_epoch": 2,
                "train_seconds": 705.0,
                "valid": evaluation,
                "test": {"perplexity": 115.25, "tokens": 82429},
            }
        )
    )
    lines = report.report(tmp_path, "zaremba-small").splitlines()
    rows = [line.split() for line in lines if line.strip()[:1].isdigit()]
    # The paper's learning rate: Keras's lr over the window's 20 steps.
    assert [row[:5] for row in rows] == [
        ["1", "1", "150.00", "130.00", "240"],
        ["2", "1", "90.00", "120.00", "230"],
        ["3", "0.5", "80.00", "125.00", "235"],
    ]
    assert "best epoch 2: valid perplexity 119.50" in "\n".join(lines)
    assert "test perplexity 115.25" in lines[-3] and "114.5 (paper)" in lines[-1]


def test_the_batch_shards_report_times_both_ways_and_shows_the_rule(monkeypatch, capsys):
    batch_shards = load("batch_shards")
    monkeypatch.setattr(batch_shards, "SHAPES", [(8, 4)])
    monkeypatch.setattr(batch_shards, "STEPS", 3)
    assert batch_shards.main(["--rounds", "1", "--seconds", "0.01"]) == 0
    row = next(
        line.split()
        for line in capsys.readouterr().out.splitlines()
        if line.split()[:2] == ["8", "4"]
    )
    _, _, product, whole, split, ratio, rule = row
    assert product == "256"  # 4 rows a shard × 4 units × (4 gates × 4 units)
    assert float(whole) > 0 and float(split) > 0
    # From the unrounded times: the printed ones (2 decimals of a few ms) are 1 % off at most.
    assert ratio.endswith("x")
    assert float(ratio[:-1]) == pytest.approx(float(whole) / float(split), rel=0.03)
    assert rule == "2"  # 8 rows, a small product: split on 2 cores


def test_the_prefetch_report_times_every_cell_both_ways_and_shows_its_setting(monkeypatch, capsys):
    prefetch_inputs = load("prefetch_inputs")
    monkeypatch.setattr(prefetch_inputs, "SHAPES", {"tiny": (4, 3, 5, 4)})
    assert prefetch_inputs.main(["--rounds", "1", "--seconds", "0.01"]) == 0
    rows = {
        line.split()[0]: line.split()[1:]
        for line in capsys.readouterr().out.splitlines()
        if line.strip().startswith("textpredict.")
    }
    assert set(rows) == {f"textpredict.{name}" for name in prefetch_inputs.CELLS}
    for name, (cls, _) in prefetch_inputs.CELLS.items():
        without, with_, ratio, setting = rows[f"textpredict.{name}"]
        assert float(without) > 0 and float(with_) > 0
        assert float(ratio[:-1]) == pytest.approx(float(without) / float(with_), rel=0.03)
        assert setting == ("on" if cls.prefetch_inputs else "off")
    assert {name for name, (cls, _) in prefetch_inputs.CELLS.items() if cls.prefetch_inputs} == {
        "peephole",
        "gru",
    }
