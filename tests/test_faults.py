"""What a user can get wrong, as one table. Each fault ends in a one-line `Error: ...`
and a non-zero exit (or, for an odd prompt the model can still read, in an answer),
never in a traceback, and leaves an existing model byte for byte as it was. Then
property-based tests of the tokenizer and of completion on arbitrary Unicode."""

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import keras
import pytest
import tensorflow as tf
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from textpredict.cli import main
from textpredict.default_corpus import generate
from textpredict.errors import ModelError, TextpredictError
from textpredict.model import load_model
from textpredict.predictor import Predictor
from textpredict.sampling import make_sampler
from textpredict.text import UNK_ID, standardize

# Keras warns that a Lambda layer drops the mask when the tests build one.
pytestmark = pytest.mark.filterwarnings("ignore:Layer 'lambda:UserWarning")

# One window shape (a stream), so the training step compiles once.
TINY = ["--units", "8", "--embedding-dim", "8", "--seq-len", "4", "--batch-size", "16"]
TINY += ["--sequences", "stream", "--epochs", "1", "--seed", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny model, `tiny` in a models home of its own; its corpus lies beside it."""
    home = tmp_path_factory.mktemp("faults")
    (home / "corpus.txt").write_text("\n".join(generate(80, seed=3)) + "\n", encoding="utf-8")
    runner = CliRunner(env={"TEXTPREDICT_MODELS": str(home / "models")})
    args = ["train", "-c", str(home / "corpus.txt"), "--model", "tiny", *TINY]
    result = runner.invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return home / "models" / "tiny"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- setups: each prepares the working directory and may return environment overrides


def write(name: str, data: bytes) -> Callable:
    def setup(cwd, model):
        (cwd / name).parent.mkdir(parents=True, exist_ok=True)
        (cwd / name).write_bytes(data)

    return setup


def mixed_folder(cwd, model):
    write("mixed/a.txt", b"plain utf-8 text\n")(cwd, model)
    write("mixed/b.txt", "caf\xe9 in latin-1\n".encode("latin-1"))(cwd, model)


def empty_folder(cwd, model):
    (cwd / "empty").mkdir()


def one_huge_line(cwd, model):
    with open(cwd / "huge.txt", "wb") as file:
        for _ in range(200):  # 200 MiB of words and not one line end
            file.write(b"word " * ((1 << 20) // 5) + b"more")


corpus = write("corpus.txt", "\n".join(generate(30, seed=4)).encode())


def models_home_file(cwd, model):
    corpus(cwd, model)
    (cwd / "home").write_text("a file, not a folder")
    return {"TEXTPREDICT_MODELS": "home"}


def read_only_models_home(cwd, model):
    corpus(cwd, model)
    (cwd / "home").mkdir(mode=0o555)
    return {"TEXTPREDICT_MODELS": "home"}


def read_only_folder(cwd, model):
    (cwd / "out").mkdir(mode=0o555)


def damaged(mutate: Callable[[Path], None]) -> Callable:
    """A copy of the trained model as ./broken, changed by ``mutate``."""

    def setup(cwd, model):
        shutil.copytree(model, cwd / "broken")
        mutate(cwd / "broken")

    return setup


def cut_in_half(path: Path):
    data = (path / "model.keras").read_bytes()
    (path / "model.keras").write_bytes(data[: len(data) // 2])


def edit_config(**model_fields):
    def mutate(path):
        config = json.loads((path / "config.json").read_text())
        config["model"].update(model_fields)
        (path / "config.json").write_text(json.dumps(config))

    return mutate


def foreign_network(path: Path):
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    network.save(path / "model.keras")


def with_lambda(path: Path):
    """The same language model plus a Lambda layer: Python code in the .keras file."""
    network = keras.saving.load_model(path / "model.keras")
    logits = keras.layers.Lambda(lambda x: x * 1.0)(network.output)
    keras.Model(network.input, logits).save(path / "model.keras")


def file_instead_of_folder(cwd, model):
    shutil.copy(model / "model.keras", cwd / "broken")


def plain_folder(cwd, model):
    (cwd / "broken").mkdir()
    (cwd / "broken" / "notes.txt").write_text("not a model")


class Fault(NamedTuple):
    name: str
    setup: Callable | None  # (cwd, trained model) -> environment overrides or None
    args: list[str]
    code: int  # expected exit status
    message: str  # found in the last line (exit 0: none, the output is three ranked words)


#: A model directory gone wrong, in the four commands that load one.
MODEL_FAULTS = [
    ("missing", None, "models/nowhere (train one with `textpredict train`)"),
    ("a file", file_instead_of_folder, "broken is a file; a model is a directory"),
    ("any folder", plain_folder, "is not a textpredict model (missing config.json"),
    ("truncated", damaged(cut_in_half), "model.keras is damaged or incomplete"),
    (
        "config not JSON",
        damaged(lambda p: (p / "config.json").write_text('{"model": {')),
        "config.json is not valid JSON",
    ),
    (
        "config a list",
        damaged(lambda p: (p / "config.json").write_text("[]")),
        "config.json is damaged: it holds a JSON list, not an object",
    ),
    ("config bad value", damaged(edit_config(units=-3)), "units must be a positive integer"),
    (
        "vocabulary empty",
        damaged(lambda p: (p / "vocabulary.txt").write_text("")),
        "vocabulary.txt is damaged",
    ),
    (
        "vocabulary short",
        damaged(lambda p: (p / "vocabulary.txt").write_text("the\nsky\n")),
        "is not a textpredict language model for the 4 tokens",
    ),
    (
        "other layer kind",
        damaged(edit_config(cell="gru")),
        "config.json describes 1 gru layer(s), model.keras holds lstm",
    ),
    ("not a language model", damaged(foreign_network), "is not a textpredict language model"),
    ("python code", damaged(with_lambda), "contains Python code (a Lambda layer)"),
    (
        "metrics not JSON",
        damaged(lambda p: (p / "metrics.json").write_text("{")),
        "metrics.json is not valid JSON",
    ),
]
MODEL_COMMANDS = {
    "complete": ["complete", "the sky"],
    "evaluate": ["evaluate"],
    "export": ["export"],
    "repl": ["repl"],
}

ROOT = os.geteuid() == 0  # the superuser writes into read-only folders
skip_as_root = pytest.mark.skipif(ROOT, reason="the superuser can write to read-only folders")

FAULTS = [
    # Corpora
    Fault("missing corpus", None, ["train", "-c", "missing.txt"], 1, "missing.txt does not exist"),
    Fault("line break in a name", None, ["train", "-c", "a\nb.txt"], 1, "path a b.txt does not"),
    Fault("empty file", write("e.txt", b""), ["train", "-c", "e.txt"], 1, "contains no words"),
    Fault("empty folder", empty_folder, ["train", "-c", "empty"], 1, "contains no files"),
    Fault(
        "binary file",
        write("b.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        ["train", "-c", "b.bin"],
        1,
        "b.bin looks like a binary file",
    ),
    Fault(
        "not UTF-8",
        write("l.txt", "café au lait\n".encode("latin-1")),
        ["train", "-c", "l.txt"],
        1,
        "l.txt is not UTF-8 text (invalid byte at offset 3); pass --encoding or --errors replace",
    ),
    Fault(
        "mixed encodings in a file",
        write("m.txt", b"na\xc3\xafve utf-8 first\nthen caf\xe9 in latin-1\n"),
        ["train", "-c", "m.txt"],
        1,
        "m.txt is not UTF-8 text (invalid byte at offset 27)",
    ),
    Fault(
        "mixed encodings in a folder",
        mixed_folder,
        ["train", "-c", "mixed"],
        1,
        "mixed/b.txt is not UTF-8 text (invalid byte at offset 3)",
    ),
    Fault(
        "unknown encoding",
        corpus,
        ["train", "-c", "corpus.txt", "--encoding", "klingon"],
        1,
        "unknown encoding 'klingon'",
    ),
    Fault(
        "encoding without ASCII line ends",
        corpus,
        ["train", "-c", "corpus.txt", "--encoding", "utf-16"],
        1,
        "encoding 'utf-16' is not supported",
    ),
    Fault(
        "a single 200 MB line",
        one_huge_line,
        ["train", "-c", "huge.txt"],
        1,
        "line 1 of huge.txt is longer than 1,048,576 bytes",
    ),
    Fault(
        "corpus smaller than a window",
        write("s.txt", b"a b c\nd e\n"),
        ["train", "-c", "s.txt", "--valid", "s.txt", "--seq-len", "50", "--sequences", "stream"],
        1,
        "the corpus is shorter than one training window (816 tokens)",
    ),
    Fault(
        "corpus too small to hold out",
        write("s.txt", b"one line\n"),
        ["train", "-c", "s.txt"],
        1,
        "the corpus has 1 line, too few to hold some out; pass --valid",
    ),
    Fault(
        "evaluate a file not UTF-8",
        write("l.txt", "café\n".encode("latin-1")),
        ["evaluate", "-m", "tiny", "-f", "l.txt"],
        1,
        "l.txt is not UTF-8 text (invalid byte at offset 3)",
    ),
    Fault(
        "evaluate a missing file",
        None,
        ["evaluate", "-m", "tiny", "-f", "nope.txt"],
        1,
        "does not exist",
    ),
    # Prompts
    Fault("empty prompt", None, ["complete", "", "-m", "tiny"], 1, "the prompt has no words"),
    Fault("whitespace prompt", None, ["complete", " \t\n ", "-m", "tiny"], 1, "has no words"),
    Fault("only emoji", None, ["complete", "🙂🌧️", "-m", "tiny"], 1, "the prompt has no words"),
    Fault("only unknown words", None, ["complete", "zorp blix", "-m", "tiny"], 0, ""),
    Fault("10,000 words", None, ["complete", "the sky " * 5000, "-m", "tiny"], 0, ""),
    Fault("control characters", None, ["complete", "\x1b[1mthe\x07 s\x7fky", "-m", "tiny"], 0, ""),
    Fault("emoji", None, ["complete", "the 🙂 sky is 🌧️", "-m", "tiny"], 0, ""),
    # Model directories, and names that would leave the models home
    *(
        Fault(
            f"{command}: {name}",
            setup,
            [*args, "-m", "nowhere" if not setup else "./broken"],
            1,
            message,
        )
        for name, setup, message in MODEL_FAULTS
        for command, args in MODEL_COMMANDS.items()
    ),
    Fault("name leaving the home", None, ["complete", "hi", "-m", "../../etc"], 1, "leads outside"),
    Fault(
        "train a name leaving the home",
        corpus,
        ["train", "-c", "corpus.txt", "-m", "../x"],
        1,
        "give its path",
    ),
    # Output paths
    Fault(
        "train over a model",
        corpus,
        ["train", "-c", "corpus.txt", "-m", "tiny"],
        1,
        "tiny already exists; choose another --model or pass --overwrite",
    ),
    Fault(
        "overwrite with a bad corpus",
        None,
        ["train", "-c", "nope", "-m", "tiny", "--overwrite"],
        1,
        "does not exist",
    ),
    Fault(
        "models home is a file",
        models_home_file,
        ["train", "-c", "corpus.txt", "--units", "8"],
        1,
        "cannot write to home",
    ),
    pytest.param(
        Fault(
            "read-only models home",
            read_only_models_home,
            ["train", "-c", "corpus.txt", "--units", "8"],
            1,
            "cannot write to home: Permission denied",
        ),
        marks=skip_as_root,
    ),
    Fault(
        "export onto a file",
        corpus,
        ["export", "-m", "tiny", "--out", "corpus.txt"],
        2,
        "Directory 'corpus.txt' is a file",
    ),
    Fault(
        "export below a file",
        corpus,
        ["export", "-m", "tiny", "--out", "corpus.txt/v"],
        1,
        "cannot write to corpus.txt/v",
    ),
    pytest.param(
        Fault(
            "export into a read-only folder",
            read_only_folder,
            ["export", "-m", "tiny", "--out", "out"],
            1,
            "cannot write to out: Permission denied",
        ),
        marks=skip_as_root,
    ),
    # Option values out of range
    Fault("zero epochs", None, ["train", "--epochs", "0"], 2, "Invalid value for '--epochs'"),
    Fault(
        "dropout of 1.5", None, ["train", "--dropout", "1.5"], 2, "Invalid value for '--dropout'"
    ),
    Fault("vocabulary of 2", None, ["train", "--vocabulary-size", "2"], 2, "'--vocabulary-size'"),
    Fault(
        "unknown --errors", None, ["train", "--errors", "ignore"], 2, "Invalid value for '--errors'"
    ),
    Fault(
        "--encoding without --file",
        None,
        ["evaluate", "--encoding", "latin-1"],
        2,
        "apply to --file",
    ),
    Fault("k of 0", None, ["complete", "hi", "-k", "0"], 2, "Invalid value for '-k'"),
    Fault("temperature of 0", None, ["complete", "hi", "--temperature", "0"], 2, "'--temperature'"),
    Fault(
        "top-p of 1.5", None, ["complete", "hi", "--top-p", "1.5"], 2, "Invalid value for '--top-p'"
    ),
    Fault(
        "export k above the vocabulary",
        None,
        ["export", "-m", "tiny", "-k", "100000"],
        1,
        "k must be between 1 and the number of words",
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_a_fault_is_one_line_and_harms_nothing(fault, trained, tmp_path, monkeypatch):
    before = snapshot(trained)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(trained.parent))
    for name, value in ((fault.setup and fault.setup(tmp_path, trained)) or {}).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, fault.args, input="the sky is\n", catch_exceptions=False)
    assert result.exit_code == fault.code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    if fault.code == 0:
        assert len(lines) == 3 and all(re.fullmatch(r"\S+ +[01]\.\d{3}", line) for line in lines)
    else:
        assert lines[-1].startswith("Error: "), result.output
        assert fault.message in lines[-1]
    assert snapshot(trained) == before
    assert not (trained.parent / "default").exists()  # nothing trained by mistake


def test_python_code_in_a_model_file_is_never_run(trained, tmp_path):
    """Keras's safe mode: a Lambda layer's code is refused, not run while loading."""
    marker = tmp_path / "code-ran"
    shutil.copytree(trained, tmp_path / "m")
    network = keras.saving.load_model(trained / "model.keras")
    run_code = keras.layers.Lambda(lambda x, path=str(marker): (open(path, "w").close(), x)[1])
    keras.Model(network.input, run_code(network.output)).save(tmp_path / "m" / "model.keras")
    marker.unlink()  # building the model above ran it once
    with pytest.raises(ModelError, match=r"contains Python code \(a Lambda layer\)"):
        load_model(tmp_path / "m")
    assert not marker.exists()


def test_a_vocabulary_larger_than_the_corpus_is_what_the_corpus_has(tmp_path, monkeypatch):
    """And a corpus in another encoding is read in it, in training and in evaluation."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(tmp_path / "models"))
    lines = [f"le café {w} est très bon." for w in ("noir", "crème", "froid", "doux")] * 15
    (tmp_path / "fr.txt").write_bytes("\n".join(lines).encode("latin-1"))
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    args = ["-c", "fr.txt", "--encoding", "latin-1", "--vocabulary-size", "50000"]
    invoke("train", *args, *TINY, "--batch-size", "2")
    vocabulary = load_model("default").tokenizer.vocabulary
    words = {"le", "café", "noir", "crème", "froid", "doux", "est", "très", "bon", "<eos>"}
    assert set(vocabulary[2:]) == words
    evaluated = json.loads(invoke("evaluate", "--json"))  # re-reads its held-out latin-1 lines
    assert evaluated["test"]["tokens"] > 0
    assert "Error" not in invoke("complete", "le café")


# --- properties on arbitrary Unicode -------------------------------------------------


@pytest.fixture(scope="module")
def predictor(trained) -> Predictor:
    return Predictor(load_model(trained))  # traced: one graph serves every example


def prompts(vocabulary: list[str]) -> st.SearchStrategy[str]:
    """Any Unicode text, text dense in the punctuation that the tokenizer treats
    specially, or known words mixed with any of these."""
    punctuation = st.text(alphabet="ab.!?'\u2019-<> \u0301\ufe0f", max_size=12)
    piece = st.one_of(st.sampled_from(vocabulary), st.text(max_size=6), punctuation)
    return st.one_of(st.text(), punctuation, st.lists(piece, max_size=10).map(" ".join))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_tokenizer_reads_any_text(predictor, data):
    tokenizer = predictor.tokenizer
    text = data.draw(prompts(tokenizer.vocabulary[2:]), "text")
    ids = tokenizer.tokenize(text)
    assert all(UNK_ID <= i < tokenizer.vocabulary_size for i in ids)
    # Written out, "[UNK]" reads as the word "unk", which this vocabulary lacks.
    assert tokenizer.token_to_id("unk") == UNK_ID
    assert tokenizer.tokenize(tokenizer.detokenize(ids)) == ids
    once = standardize(tf.constant(text))
    assert standardize(once).numpy() == once.numpy()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_complete_answers_any_prompt(predictor, data):
    text = data.draw(prompts(predictor.tokenizer.vocabulary[2:]), "prompt")
    k = data.draw(st.integers(1, 5), "k")
    if not predictor.tokenizer.tokenize(text):
        with pytest.raises(TextpredictError, match="the prompt has no words"):
            predictor.rank(text, k)
        return
    ranked = predictor.rank(text, k)
    assert len(ranked) == k
    words, probabilities = zip(*ranked, strict=True)
    assert not {"", "[UNK]"} & set(words)
    assert all(0 <= p <= 1 for p in probabilities) and sum(probabilities) <= 1 + 1e-9
    assert list(probabilities) == sorted(probabilities, reverse=True)
    continued = predictor.continue_text(text, 2, make_sampler("greedy"))
    assert len(continued) == 2 and set(continued) <= set(predictor.tokenizer.vocabulary[2:])
