"""Every command as a user runs it, on a tiny corpus and a tiny model."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from textpredict import training
from textpredict.checkpoints import TrainingInterrupted
from textpredict.cli import main
from textpredict.default_corpus import generate

TINY = ["--units", "16", "--embedding-dim", "8", "--seq-len", "12", "--batch-size", "16"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A models home and a small corpus, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("cli")
    (root / "corpus.txt").write_text("\n".join(generate(150, seed=7)) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def runner(home, monkeypatch):
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(home / "models"))
    monkeypatch.chdir(home)
    return CliRunner()


def invoke(runner, *args, **kwargs):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


@pytest.fixture(scope="module")
def trained(home):
    """One tiny model trained through the command line."""
    runner = CliRunner(env={"TEXTPREDICT_MODELS": str(home / "models")})
    result = runner.invoke(
        main,
        ["train", "--corpus", str(home / "corpus.txt"), "--epochs", "2", *TINY, "--seed", "1"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return home / "models" / "default", result.output


def one_line_error(result, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: ")
    return lines[-1]


def test_train_writes_a_complete_model_directory(trained):
    path, output = trained
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "logs",
        "metrics.json",
        "model.keras",
        "vocabulary.txt",
    ]
    config = json.loads((path / "config.json").read_text())
    assert config["model"]["units"] == 16 and config["training"]["seq_len"] == 12
    assert config["data"]["held_out_lines"] is not None  # no --valid: a held-out split
    metrics = json.loads((path / "metrics.json").read_text())
    assert len(metrics["history"]["val_perplexity"]) == 2
    # Validation during training scores every token alike, as the final evaluation does.
    best = metrics["history"]["val_perplexity"][metrics["best_epoch"] - 1]
    assert best == pytest.approx(metrics["valid"]["perplexity"], rel=1e-4)
    assert 1 < metrics["valid"]["perplexity"] < config["vocabulary_size"]
    assert "val_perplexity" in output and f"Saved {path}" in output
    assert any((path / "logs").rglob("events.out.tfevents.*"))


def test_train_refuses_to_overwrite_and_leaves_the_model_alone(runner, trained):
    path, _ = trained
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    result = invoke(runner, "train", "--corpus", "corpus.txt", "--epochs", "1", *TINY)
    assert "already exists" in one_line_error(result)
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} == before


def test_overwrite_replaces_only_a_model(runner, home, trained):
    """`--overwrite` must not delete a folder of the user's own files named by mistake,
    nor files the user put inside a model; it refuses before training."""
    folder = home / "notes"
    folder.mkdir()
    (folder / "thesis.txt").write_text("my only copy\n")
    args = ["train", "--corpus", "corpus.txt", "--epochs", "1", *TINY, "--overwrite"]
    error = one_line_error(invoke(runner, *args, "--model", "./notes"))
    assert "not a textpredict model" in error and "--overwrite replaces only a model" in error
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.txt"]
    model, _ = trained
    (model / "todo.txt").write_text("keep me\n")
    try:
        error = one_line_error(invoke(runner, *args))  # the default model, with todo.txt
    finally:
        (model / "todo.txt").unlink()
    assert "also holds todo.txt, which --overwrite would delete" in error


def test_same_seed_same_model(runner, home):
    def weights(name, seed):
        # A short --seq-len: fewer row widths, so fewer XLA compilations to wait for.
        args = ["train", "-c", "corpus.txt", "--epochs", "1", *TINY, "--seq-len", "4"]
        args += ["--model", name]
        assert invoke(runner, *args, "--seed", seed).exit_code == 0
        import keras

        return keras.saving.load_model(home / "models" / name / "model.keras").get_weights()

    first, again, other = weights("s1", 5), weights("s2", 5), weights("s3", 6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--corpus", "missing.txt"], "does not exist"),
        ("empty.txt", ["--corpus", "empty.txt"], "contains no words"),
        ("latin1.txt", ["--corpus", "latin1.txt"], "is not UTF-8 text (invalid byte at offset 3)"),
        (
            "short.txt",
            ["-c", "short.txt", "--valid", "short.txt", "--seq-len", "50", "--sequences", "stream"],
            "shorter than one training",
        ),
    ],
)
def test_train_reports_bad_corpora_in_one_line(runner, home, setup, args, message):
    contents = {"empty.txt": b"", "latin1.txt": b"caf\xe9 au lait\n", "short.txt": b"a b c\nd e\n"}
    if setup:
        (home / setup).write_bytes(contents[setup])
    result = invoke(runner, "train", *args, "--model", "bad", *TINY[:4])
    assert message in one_line_error(result)
    assert not (home / "models" / "bad").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--dropout", "1.5"],
        ["--epochs", "0"],
        ["--cell", "transformer"],
        ["--seed", "-1"],
        ["--precision", "float64"],
    ],
)
def test_train_rejects_bad_option_values(runner, args):
    result = invoke(runner, "train", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "Invalid value" in result.output


@pytest.mark.parametrize(("signal_number", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_exits_as_its_signal_asks_and_says_how_to_resume(
    runner, monkeypatch, signal_number, status
):
    def stopped(*_, **__):  # what training raises once its checkpoint is saved (test_resume)
        raise TrainingInterrupted("training interrupted; saved at epoch 2, batch 3", signal_number)

    monkeypatch.setattr(training, "train", stopped)
    result = invoke(runner, "train", "--model", "my model", "--overwrite")
    assert result.exit_code == status
    assert "Traceback" not in result.output
    assert "Carry on with: textpredict train --resume --model 'my model' --overwrite" in (
        result.output
    )


def test_train_passes_the_precision_on(runner, monkeypatch):
    received = {}

    def capture(*_, training_config, **__):
        received["precision"] = training_config.precision
        raise TrainingInterrupted("stopped at once", signal.SIGINT)

    monkeypatch.setattr(training, "train", capture)
    invoke(runner, "train", "--model", "mixed", "--precision", "mixed_bfloat16")
    assert received == {"precision": "mixed_bfloat16"}


def test_complete_ranks_k_words_best_first(runner, trained):
    result = invoke(runner, "complete", "the clouds are in the", "-k", "4")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.strip().splitlines()]
    assert len(rows) == 4
    probabilities = [float(p) for _, p in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    assert not {"[UNK]", ""} & {w for w, _ in rows}


def test_complete_json_and_continuation(runner, trained):
    args = ["complete", "she drinks her coffee", "--json", "--words", "5", "--sampler", "top-k"]
    first = json.loads(invoke(runner, *args, "--seed", "3").output)
    assert first["text"] == "she drinks her coffee"
    assert len(first["predictions"]) == 3
    assert all(0 < p["probability"] <= 1 for p in first["predictions"])
    assert len(first["continuation"].split()) == 5
    assert json.loads(invoke(runner, *args, "--seed", "3").output) == first


def test_complete_errors(runner, trained):
    assert "no words" in one_line_error(invoke(runner, "complete", "  "))
    assert "no model at" in one_line_error(invoke(runner, "complete", "hi", "--model", "nope"))
    # Bytes that are not UTF-8 reach Python as lone surrogates (a Latin-1 shell, say).
    not_utf8 = "\udcff the"
    assert "not UTF-8 text" in one_line_error(invoke(runner, "complete", not_utf8))
    assert invoke(runner, "complete", "hi", "-k", "0").exit_code == 2


def test_evaluate_table_json_and_file(runner, home, trained):
    table = invoke(runner, "evaluate").output.splitlines()
    assert table[0].split() == ["tokens", "perplexity", "top-1", "top-3", "top-5"]
    assert [row.split()[0] for row in table[1:]] == ["valid", "test"]
    result = json.loads(invoke(runner, "evaluate", "--json").output)
    stored = json.loads((trained[0] / "metrics.json").read_text())
    assert result["valid"]["perplexity"] == pytest.approx(stored["valid"]["perplexity"], rel=1e-4)
    assert result["test"]["top3_accuracy"] >= result["test"]["top1_accuracy"]
    (home / "other.txt").write_text("the clouds are in the sky .\n", encoding="utf-8")
    on_file = json.loads(invoke(runner, "evaluate", "--file", "other.txt", "--json").output)
    assert on_file["file"]["tokens"] == 7  # line by line: "the ... sky <eos>", each a target
    # Lines are each read from a fresh state: there are no stream rows to choose.
    rows = invoke(runner, "evaluate", "--stream-rows", "2")
    assert "--stream-rows applies to a model trained on a stream" in one_line_error(rows)
    assert invoke(runner, "evaluate", "--stream-rows", "0").exit_code == 2


def test_repl_answers_each_line_and_changes_settings(runner, trained):
    result = invoke(runner, "repl", input="the sky is\n:k 2\nthe sky is\n:k zero\n")
    assert result.exit_code == 0
    out = result.output.splitlines()
    answers = [line for line in out if re.fullmatch(r"\S+ +[01]\.\d{3}", line)]
    assert len(answers) == 3 + 2
    assert sum(line.startswith("Error: ") for line in out) == 1


def test_complete_in_a_shell_prints_only_its_answer(trained, home):
    """As a user's terminal shows it: no TensorFlow log lines on stderr, whatever the
    CPU (without AVX-512, oneDNN reports its fallbacks to Eigen as errors)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "TEXTPREDICT"))}
    run = subprocess.run(
        [sys.executable, "-m", "textpredict", "complete", "the cat", "-k", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "TEXTPREDICT_MODELS": str(home / "models")},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr == ""
    assert len(run.stdout.splitlines()) == 2


def test_eager_and_traced_predictors_rank_alike(trained):
    """`complete` runs the network eagerly, the REPL as a traced graph."""
    from textpredict.model import load_model
    from textpredict.predictor import Predictor

    model = load_model(trained[0])
    eager, traced = Predictor(model, traced=False), Predictor(model)
    for prompt in ("the sky", "the clouds are in the"):
        np.testing.assert_allclose(
            eager.next_probabilities(eager.encode(prompt)),
            traced.next_probabilities(traced.encode(prompt)),
            rtol=1e-5,
            atol=1e-7,
        )


def test_export_serves_raw_strings_without_textpredict(runner, trained, tmp_path):
    result = invoke(runner, "export", "-k", "4")
    assert result.exit_code == 0, result.output
    path = trained[0] / "export" / "1"
    assert (path / "saved_model.pb").is_file()
    # Readable as a new folder is (the umask's mode): a server may run as another user.
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o777 & ~umask
    prompts = ["the clouds are in the", "i grew up in france and"]
    expected = [
        [
            p["word"]
            for p in json.loads(invoke(runner, "complete", t, "-k", "4", "--json").output)[
                "predictions"
            ]
        ]
        for t in prompts
    ]
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["textpredict"] = None  # any import of textpredict would fail
        import tensorflow as tf
        serve = tf.saved_model.load({str(path)!r}).signatures["serving_default"]
        empty = serve(text=tf.constant([], tf.string))  # a request with no texts
        print(json.dumps({{k: v.shape.as_list() for k, v in empty.items()}}))
        out = serve(text=tf.constant({prompts!r}))
        print(json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}, default=bytes.decode))
    """)
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": ""},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    empty, served = (json.loads(line) for line in run.stdout.strip().splitlines()[-2:])
    assert empty == {"words": [0, 4], "probabilities": [0, 4]}
    assert served["words"] == expected
    assert np.array(served["probabilities"]).shape == (2, 4)
    assert invoke(runner, "export").exit_code == 0
    assert (trained[0] / "export" / "2" / "saved_model.pb").is_file()  # next version


def test_inspect_a_trained_model(runner, trained):
    path, _ = trained
    result = invoke(runner, "inspect", "gates", "the clouds are in the", "--json")
    gates = json.loads(result.output)
    assert gates["tokens"] == ["<eos>", "the", "clouds", "are", "in", "the"]
    assert set(gates["mean_gates"]) == {"forget", "input", "output"}
    assert len(gates["cell_norm"]) == len(gates["next_words"]) == 6
    assert gates["plot"] == str(path / "gates.png")

    args = ["inspect", "gradients", "--model", "default", "--steps", "8", "--batch", "2"]
    flow = json.loads(invoke(runner, *args, "--json").output)
    assert list(flow["cells"]) == ["lstm"] and flow["plot"] == str(path / "gradient_flow.png")
    assert len(flow["cells"]["lstm"]["cell"]) == 7
    assert "either --model or --cell" in invoke(runner, *args, "--cell", "rnn").output


@pytest.fixture(scope="module", params=["peephole", "cifg", "gru", "rnn"])
def trained_cell(request, home):
    """A tiny model of each variant cell (the LSTM is `trained`), one at a time."""
    cell = request.param
    runner = CliRunner(env={"TEXTPREDICT_MODELS": str(home / "models")})
    args = ["train", "-c", str(home / "corpus.txt"), "--epochs", "1", *TINY]
    args += ["--units", "8", "--seq-len", "4", "--cell", cell, "--model", f"cell-{cell}"]
    # One window shape, so one compilation of the training step (lines, padded
    # to several widths, would compile several; the layer tests cover masks).
    args += ["--sequences", "stream"]
    result = runner.invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return cell, home / "models" / f"cell-{cell}"


def test_every_cell_trains_completes_evaluates_and_exports(runner, trained_cell):
    import tensorflow as tf

    from textpredict.model import CELLS, load_model
    from textpredict.text import id_array, read_lines

    cell, path = trained_cell
    model = load_model(path)
    assert model.config.cell == cell and model.config.units == 8
    recurrent = [layer for layer in model.network.layers if type(layer) is CELLS[cell]]
    assert len(recurrent) == 1 and recurrent[0].units == 8

    text = "the clouds are in the"
    completed = json.loads(invoke(runner, "complete", text, "-m", path, "--json").output)
    words = [p["word"] for p in completed["predictions"]]
    assert len(words) == 3
    evaluated = json.loads(invoke(runner, "evaluate", "-m", path, "--json").output)
    assert 1 < evaluated["test"]["perplexity"] < model.tokenizer.vocabulary_size

    # A stream read as one row: every token predicted from all the text before it, as
    # one call of the network over the whole text computes it (4-token windows here).
    held = path.parent / f"held-{cell}.txt"
    held.write_text("the clouds are in the sky .\nthe sky is blue and the sea .\n")
    args = ["evaluate", "-m", path, "-f", held, "--stream-rows", "1", "--json"]
    one_row = json.loads(invoke(runner, *args).output)["file"]
    ids = id_array(model.tokenizer, read_lines([held]))
    logits = model.network(ids[None, :-1])[0]
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(ids[1:], logits).numpy()
    assert one_row["tokens"] == len(ids) - 1
    assert one_row["perplexity"] == pytest.approx(np.exp(nll.mean()), rel=1e-5)

    # Exported and served in this process (the subprocess check, without
    # textpredict importable, is the LSTM's above; the graph is built the same way).
    assert invoke(runner, "export", "-m", path).exit_code == 0
    serve = tf.saved_model.load(str(path / "export" / "1")).signatures["serving_default"]
    served = serve(text=tf.constant([text]))
    assert [w.decode() for w in served["words"].numpy()[0]] == words
    probabilities = [p["probability"] for p in completed["predictions"]]
    np.testing.assert_allclose(served["probabilities"].numpy()[0], probabilities, atol=1e-5)

    # Gate inspection names each cell's own gates; a plain RNN has none.
    plot = path / "gates.png"
    result = invoke(runner, "inspect", "gates", text, "-m", path)
    if cell == "rnn":
        assert "has no gates" in one_line_error(result)
        assert not plot.exists()
        return
    assert result.exit_code == 0, result.output
    header, *rows, wrote = result.output.splitlines()
    expected = ["update", "reset"] if cell == "gru" else ["forget", "input", "output"]
    assert header.split()[1 : 1 + len(expected)] == expected
    assert [row.split()[0] for row in rows] == ["<eos>", "the", "clouds", "are", "in", "the"]
    assert wrote == f"Wrote {plot}" and plot.read_bytes()[:4] == b"\x89PNG"


def test_a_preset_needs_a_corpus(runner):
    result = invoke(runner, "train", "--preset", "zaremba-small")
    assert result.exit_code == 2 and "--preset zaremba-small needs --corpus" in result.output


def test_cli_choices_match_the_library():
    from textpredict.model import CELLS
    from textpredict.text import TOKENIZATIONS

    def choices(name):
        return list(next(p for p in main.commands["train"].params if p.name == name).type.choices)

    assert choices("cell") == list(CELLS)
    assert choices("tokenization") == list(TOKENIZATIONS)


def test_help_does_not_import_tensorflow():
    code = "import sys; from textpredict.cli import main; print('tensorflow' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "False", run.stderr[-1000:]
