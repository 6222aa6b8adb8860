"""The ``textpredict`` command line: train, evaluate, complete, repl, export.

A thin shell over the library. TensorFlow is imported inside the commands, so
``textpredict --help`` answers at once. Errors a user can cause become one
``Error: ...`` line and exit status 1; bad option values exit with status 2.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
import time
from pathlib import Path

import click

from textpredict.repl import ReplSettings, run_repl
from textpredict.sampling import SAMPLER_NAMES

# TensorFlow's C++ log lines are not for a command-line user: start-up chatter, and
# "errors" it recovers from itself (on a CPU without AVX-512, oneDNN falling back to
# Eigen for some types, once a process). A real failure reaches textpredict as a
# Python exception. TEXTPREDICT_DEBUG=1 (or TF_CPP_MIN_LOG_LEVEL) shows the lines.
if not os.environ.get("TEXTPREDICT_DEBUG"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def quiet_tensorflow() -> None:
    """Imports TensorFlow and finds its devices with file descriptor 2 muted.

    TensorFlow writes CUDA probing lines to stderr before its logging is initialised,
    where no setting reaches them. Python errors raised here still surface normally,
    as exceptions, after stderr is restored. Set TEXTPREDICT_DEBUG=1 to see the lines.
    """
    if "tensorflow" in sys.modules or os.environ.get("TEXTPREDICT_DEBUG"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: The keys of model.CELLS and presets.PRESETS, and model.PRECISIONS, written out so
#: that --help does not import TensorFlow (a test checks that they agree).
CELL_NAMES = ("lstm", "peephole", "cifg", "gru", "rnn")
PRESET_NAMES = ("zaremba-small", "zaremba-medium", "zaremba-large", "tied-500")
PRECISION_NAMES = ("float32", "mixed_float16", "mixed_bfloat16")


def cells_option(help_text: str):
    """A repeatable `--cell` option, for commands that compare cells."""
    return click.option(
        "--cell", "cells", multiple=True, type=click.Choice(CELL_NAMES), help=help_text
    )


def check_png(path) -> None:
    """Plots are PNG files: any other suffix is a usage error (exit status 2)."""
    if Path(path).suffix.lower() != ".png":
        raise click.BadParameter(f"{path} is not a .png path", param_hint="--plot")


MODEL_OPTION = click.option(
    "--model",
    "-m",
    default="default",
    show_default=True,
    envvar="TEXTPREDICT_MODEL",
    help="A model name, under saved_models/ (or $TEXTPREDICT_MODELS) and never outside it, "
    "or a path: absolute, or starting with ./ or ~.",
)


def reading_options(note: str = "", defaults: bool = True):
    """`--encoding` and `--errors`: how a command reads text files. Without
    ``defaults`` an option left out is None, so a command can tell that it was."""
    encoding_option = click.option(
        "--encoding",
        default="utf-8" if defaults else None,
        show_default=defaults or "utf-8",
        help=f"Encoding of the text files, e.g. latin-1 or windows-1252.{note}",
    )
    errors_option = click.option(
        "--errors",
        type=click.Choice(["strict", "replace"]),
        default="strict" if defaults else None,
        show_default=defaults or "strict",
        help="strict: refuse a file with bytes that are not text in the encoding; "
        f"replace: read them as U+FFFD.{note}",
    )
    return lambda command: encoding_option(errors_option(command))


def one_line(message: str) -> str:
    """A message on one line, whatever it quotes (a file name with a line break, a
    library's multi-line text), so that `Error: ...` stays the last line."""
    return " ".join(message.split())


def user_errors(command):
    """Turns the library's user-facing errors into click's one-line `Error: ...`."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from textpredict.errors import TextpredictError

        quiet_tensorflow()
        try:
            return command(*args, **kwargs)
        except TextpredictError as error:
            raise click.ClickException(one_line(str(error))) from None
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise click.ClickException(one_line(f"{error.strerror or error}{where}")) from None

    return wrapper


def sampling_options(command):
    """The options shared by `complete` and `repl`, handed over as one `settings`."""
    options = [
        click.option(
            "-k",
            "k",
            type=click.IntRange(min=1),
            default=3,
            show_default=True,
            help="How many ranked next words to show.",
        ),
        click.option(
            "--words",
            "-n",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Also continue the text this many words.",
        ),
        click.option(
            "--sampler",
            type=click.Choice(SAMPLER_NAMES),
            default="greedy",
            show_default=True,
            help="How --words picks each word.",
        ),
        click.option(
            "--temperature",
            type=click.FloatRange(min=0, min_open=True),
            default=1.0,
            show_default=True,
            help="Below 1 sharpens, above 1 flattens the choice.",
        ),
        click.option(
            "--top-k",
            type=click.IntRange(min=1),
            default=40,
            show_default=True,
            help="Candidates for --sampler top-k.",
        ),
        click.option(
            "--top-p",
            type=click.FloatRange(min=0, max=1, min_open=True),
            default=0.9,
            show_default=True,
            help="Probability mass for --sampler top-p.",
        ),
        click.option(
            "--seed",
            type=click.IntRange(min=0),
            default=None,
            help="Makes random sampling repeatable.",
        ),
    ]

    @functools.wraps(command)
    def with_settings(*args, k, words, sampler, temperature, top_k, top_p, seed, **kwargs):
        settings = ReplSettings(
            k=k,
            words=words,
            sampler=sampler,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
        return command(*args, settings=settings, **kwargs)

    for option in reversed(options):
        with_settings = option(with_settings)
    return with_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="textpredict")
def main():
    """Next-word prediction with a hand-written Keras LSTM."""


@main.command()
@click.option(
    "--corpus",
    "-c",
    multiple=True,
    type=click.Path(),
    help="A text file or folder to train on (repeatable). Default: the embedded corpus.",
)
@click.option(
    "--valid",
    multiple=True,
    type=click.Path(),
    help="Validation text (repeatable). Default: 5 % of the corpus lines, held out.",
)
@click.option(
    "--test",
    multiple=True,
    type=click.Path(),
    help="Test text (repeatable). Default: the --valid text, else 5 % of the corpus, held out.",
)
@MODEL_OPTION
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing model of that name (its export/ is kept).",
)
@click.option(
    "--preset",
    type=click.Choice(PRESET_NAMES),
    default=None,
    help="Start from a named configuration; other options override its fields. "
    "zaremba-small|medium|large: Zaremba et al. 2014 on Penn Treebank; tied-500: "
    "a wider model with tied embeddings, better in about the same time.",
)
@click.option(
    "--cell",
    type=click.Choice(CELL_NAMES),
    default=None,
    help="The recurrent layer: peephole is an LSTM with peepholes, cifg one with coupled "
    "input and forget gates, rnn an Elman network.  [default: lstm]",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the corpus.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Windows per update.")
@click.option(
    "--seq-len",
    type=click.IntRange(min=1),
    default=None,
    help="Tokens per window (backpropagation through time).",
)
@click.option(
    "--sequences",
    type=click.Choice(["lines", "stream"]),
    default=None,
    help="lines: each corpus line read from a fresh state (default); "
    "stream: the corpus as one text, the state carried from window to window.",
)
@click.option("--units", type=click.IntRange(min=1), default=None, help="Recurrent state width.")
@click.option("--layers", type=click.IntRange(min=1), default=None, help="Recurrent layers.")
@click.option(
    "--embedding-dim", type=click.IntRange(min=1), default=None, help="Word vector width."
)
@click.option(
    "--vocabulary-size",
    type=click.IntRange(min=3),
    default=None,
    help="Most frequent words kept, padding and [UNK] included.",
)
@click.option(
    "--tokenization",
    type=click.Choice(["standard", "pretokenized"]),
    default=None,
    help="standard: lower-case, sentence ends become <eos>, punctuation dropped (default); "
    "pretokenized: the corpus is already tokenized, split on whitespace only.",
)
@click.option(
    "--dropout",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Dropout on embeddings and between layers.",
)
@click.option(
    "--recurrent-dropout",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Variational dropout on the recurrent state.",
)
@click.option(
    "--tie-embeddings/--no-tie-embeddings",
    default=None,
    help="Share the embedding matrix with the output layer.",
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Step size (of the mean loss per token).",
)
@click.option(
    "--optimizer",
    type=click.Choice(["adam", "sgd"]),
    default=None,
    help="Adam, or plain stochastic gradient descent.  [default: adam]",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Same seed, same model.")
@reading_options()
@click.option(
    "--steps-per-epoch",
    type=click.IntRange(min=1),
    default=None,
    help="Batches an epoch, from pass after pass over the corpus.  [default: one pass]",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Carry on with the interrupted run of --model from its last checkpoint, "
    "with the settings it was started with.",
)
@click.option(
    "--checkpoint-every",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    help="Seconds between checkpoints within an epoch (also after every epoch and on Ctrl-C).",
)
@click.option(
    "--strategy",
    type=click.Choice(["default", "mirrored", "multi-worker"]),
    default=None,
    help="default: one device; mirrored: this machine's GPUs (or --devices); multi-worker: "
    "the machines in $TF_CONFIG. --batch-size stays the global batch.",
)
@click.option(
    "--devices",
    default=None,
    metavar="LIST",
    help="With --strategy mirrored: the devices, e.g. /gpu:0,/gpu:1 (default: all GPUs). "
    "/cpu:0,/cpu:1 splits the CPU in two, to try it without GPUs.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISION_NAMES),
    default=None,
    help="Compute dtype while training: mixed precision is for GPUs (slower on a CPU); "
    "the saved model computes in float32.  [default: float32]",
)
@user_errors
def train(
    corpus,
    valid,
    test,
    model,
    overwrite,
    preset,
    cell,
    epochs,
    batch_size,
    seq_len,
    sequences,
    units,
    layers,
    embedding_dim,
    vocabulary_size,
    tokenization,
    dropout,
    recurrent_dropout,
    tie_embeddings,
    learning_rate,
    optimizer,
    seed,
    encoding,
    errors,
    steps_per_epoch,
    resume,
    checkpoint_every,
    strategy,
    devices,
    precision,
):
    """Train a model and write it to saved_models/NAME/.

    Ctrl-C stops after the current batch and saves a checkpoint; `--resume` carries on
    from it to the model an uninterrupted run would have trained.
    """
    from textpredict.checkpoints import TrainingInterrupted
    from textpredict.presets import preset_configs
    from textpredict.training import train as train_model

    if resume:
        context = click.get_current_context()
        given = [
            name
            for name in context.params
            if name not in RESUME_OPTIONS
            and context.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
        ]
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise click.UsageError(
                f"--resume carries on with the settings the run was started with; drop {names}"
            )
    if preset and not corpus:
        raise click.UsageError(f"--preset {preset} needs --corpus (see corpora/README.md)")
    model_config, training_config = preset_configs(
        preset,
        _given(
            cell=cell,
            units=units,
            num_layers=layers,
            embedding_dim=embedding_dim,
            vocabulary_size=vocabulary_size,
            tokenization=tokenization,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            tie_embeddings=tie_embeddings,
        ),
        _given(
            epochs=epochs,
            batch_size=batch_size,
            seq_len=seq_len,
            sequences=sequences,
            learning_rate=learning_rate,
            optimizer=optimizer,
            seed=seed,
            steps_per_epoch=steps_per_epoch,
            strategy=strategy,
            devices=devices,
            precision=precision,
        ),
    )
    started = time.perf_counter()
    try:
        trained = train_model(
            list(corpus),
            valid=list(valid),
            test=list(test),
            model=model,
            overwrite=overwrite,
            resume=resume,
            checkpoint_every=checkpoint_every,
            model_config=model_config,
            training_config=training_config,
            encoding=encoding,
            errors=errors,
        )
    except TrainingInterrupted as stopped:
        again = " --overwrite" if overwrite else ""
        click.echo(
            f"Interrupted: {stopped}.\nCarry on with: textpredict train --resume "
            f"--model {shlex.quote(str(model))}{again}",
            err=True,
        )
        sys.exit(128 + stopped.signal_number)  # a shell's status for a process a signal ended
    if trained is None:  # a multi-worker cluster's worker other than the chief
        click.echo("Worker finished; the chief saves the model.")
        return
    valid_result = trained.metrics["valid"]
    click.echo(
        f"Saved {trained.path} in {time.perf_counter() - started:.0f} s: validation perplexity "
        f"{valid_result['perplexity']:.2f}, top-3 accuracy {valid_result['top3_accuracy']:.1%} "
        f"(best epoch {trained.metrics['best_epoch']})"
    )


#: What `train --resume` accepts; every other option would change the interrupted run.
RESUME_OPTIONS = ("model", "overwrite", "resume", "checkpoint_every")


def _given(**values):
    return {k: v for k, v in values.items() if v is not None}


@main.command()
@MODEL_OPTION
@click.option(
    "--file",
    "-f",
    "files",
    multiple=True,
    type=click.Path(),
    help="Text to evaluate on (repeatable). Default: the model's validation and test text.",
)
@reading_options(" For --file; the model's own text is read as in training.", defaults=False)
@click.option(
    "--stream-rows",
    type=click.IntRange(min=1),
    default=None,
    help="For a model trained on a stream: read the text as this many rows, each from a "
    "fresh state (default 16). 1 predicts every token from all the text before it, as "
    "Zaremba et al. score Penn Treebank, more slowly.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def evaluate(model, files, encoding, errors, stream_rows, as_json):
    """Perplexity and top-1/3/5 accuracy of a model on held-out text."""
    from textpredict.evaluation import evaluate as evaluate_model
    from textpredict.model import load_model

    if (encoding or errors) and not files:
        raise click.UsageError("--encoding and --errors apply to --file text")
    reading = {"encoding": encoding or "utf-8", "errors": errors or "strict"}
    results = evaluate_model(load_model(model), list(files), **reading, stream_rows=stream_rows)
    if as_json:
        click.echo(json.dumps({name: r.as_dict() for name, r in results.items()}, indent=2))
        return
    click.echo(f"{'':6} {'tokens':>8} {'perplexity':>10} {'top-1':>7} {'top-3':>7} {'top-5':>7}")
    for name, r in results.items():
        accuracy = " ".join(f"{r.top_k_accuracy[k]:>7.1%}" for k in (1, 3, 5))
        click.echo(f"{name:6} {r.tokens:>8} {r.perplexity:>10.2f} {accuracy}")


@main.command()
@click.argument("text")
@MODEL_OPTION
@sampling_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def complete(text, model, settings, as_json):
    """The most likely next words of TEXT (and optionally a continuation)."""
    # Tracing the network as a graph costs about 0.3 s and pays off after some ten
    # calls: a one-shot ranking (one call) or a short continuation runs it eagerly.
    predictor = _load_predictor(model, traced=settings.words > 10)
    result = _complete(predictor, text, settings)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_format(result))


@main.command()
@MODEL_OPTION
@sampling_options
@user_errors
def repl(model, settings):
    """Type text, see the next words. `:help` lists the settings; Ctrl-D quits."""
    predictor = _load_predictor(model)
    click.echo(
        f"textpredict: {predictor.model.path}. Type text; :help for commands, Ctrl-D to quit."
    )
    interactive = sys.stdin.isatty()

    def read_line(prompt):
        line = input(prompt) if interactive else sys.stdin.readline()
        if not interactive and not line:
            raise EOFError
        return line.rstrip("\n")

    run_repl(
        lambda text, s: _format(_complete(predictor, text, s)), read_line, click.echo, settings
    )


@main.command("export")
@MODEL_OPTION
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Ranked words per text in the exported signature.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Parent folder of the numbered versions. Default: the model's export/.",
)
@user_errors
def export_command(model, k, out):
    """Write a TF Serving SavedModel that maps raw strings to ranked next words."""
    from textpredict.export import export_model
    from textpredict.model import load_model

    path = export_model(load_model(model), k=k, directory=out)
    click.echo(f"Exported {path} (signature serving_default: text -> words, probabilities)")


def _load_predictor(model, traced=True):
    from textpredict.model import load_model
    from textpredict.predictor import Predictor

    return Predictor(load_model(model), traced=traced)


def _complete(predictor, text, settings: ReplSettings) -> dict:
    from textpredict.predictor import render

    result = {
        "text": text,
        "predictions": [
            {"word": word, "probability": round(p, 6)}
            for word, p in predictor.rank(text, settings.k)
        ],
    }
    if settings.words:
        words = predictor.continue_text(
            text, settings.words, settings.build_sampler(), settings.seed
        )
        result["continuation"] = render(words)
    return result


def _format(result: dict) -> str:
    width = max(len(p["word"]) for p in result["predictions"])
    lines = [f"{p['word']:<{width}}  {p['probability']:.3f}" for p in result["predictions"]]
    if "continuation" in result:
        lines.append(f"{result['text']} {result['continuation']}")
    return "\n".join(lines)


# Registered last: these commands use the option and error helpers above.
from textpredict.bench_cli import bench  # noqa: E402
from textpredict.inspect_cli import inspect  # noqa: E402

main.add_command(inspect)
main.add_command(bench)
