"""`textpredict inspect`: measure the gradient flow and watch the gates.

Registered on the main command group by `textpredict.cli`.
"""

import json
from pathlib import Path

import click

from textpredict.cli import CELL_NAMES, MODEL_OPTION, cells_option, check_png, user_errors

#: The gaps the gradient table shows (those shorter than --steps).
TABLE_GAPS = (1, 5, 10, 20, 50, 100)


def _png(path: str | None, default: Path) -> Path:
    path = Path(path) if path else default
    check_png(path)
    return path


@click.group()
def inspect():
    """Look inside the recurrent layer: gradient flow and gate values."""


@inspect.command()
@click.option(
    "--model",
    "-m",
    default=None,
    help="Inspect this trained model's first recurrent layer instead of fresh cells.",
)
@cells_option("Freshly initialised cells to compare (repeatable). Default: all of them.")
@click.option("--steps", type=click.IntRange(min=2), default=60, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--units", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--input-dim", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG to write.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def gradients(model, cells, steps, batch, units, input_dim, seed, plot, as_json):
    """How ‖∂L_T/∂h_t‖ (and ‖∂L_T/∂c_t‖) fall with the gap T − t.

    L_T is a fixed random direction of the last output, so the numbers show only how
    the error travels back through the cell: geometric decay is a vanishing gradient.
    Fresh cells read standard normal inputs; a trained model reads the embeddings of
    random words from its vocabulary. Writes a log-scale plot (default
    gradient_flow.png, or beside the model).
    """
    import numpy as np

    from textpredict.inspection import first_recurrent_layer, fresh_layer, gradient_norms
    from textpredict.model import CELLS, GRADIENT_PLOT, load_model
    from textpredict.plots import plot_gradient_flow

    rng = np.random.default_rng(seed)
    if model is not None:
        if cells:
            raise click.UsageError("give either --model or --cell, not both")
        saved = load_model(model)
        layer = first_recurrent_layer(saved.network)
        ids = rng.integers(2, saved.tokenizer.vocabulary_size, (batch, steps))
        inputs = saved.network.get_layer("embedding")(ids)
        flows = {saved.config.cell: gradient_norms(layer, inputs, seed)}
        default_plot = saved.path / GRADIENT_PLOT
    else:
        inputs = rng.standard_normal((batch, steps, input_dim)).astype("float32")
        flows = {
            name: gradient_norms(fresh_layer(CELLS[name], units, input_dim, seed), inputs, seed)
            for name in (cells or CELL_NAMES)
        }
        default_plot = Path(GRADIENT_PLOT)
    path = plot_gradient_flow(flows, _png(plot, default_plot))
    if as_json:
        result = {name: flow.as_dict() for name, flow in flows.items()}
        click.echo(json.dumps({"plot": str(path), "cells": result}, indent=2))
        return
    gaps = [g for g in TABLE_GAPS if g < steps]
    click.echo(f"{'cell':10} {'norm':7}" + "".join(f"{'gap ' + str(g):>11}" for g in gaps))
    for name, flow in flows.items():
        rows = [("‖∂L/∂h‖", [flow.at(g)[0] for g in gaps])]
        if flow.cell is not None:
            rows.append(("‖∂L/∂c‖", [flow.at(g)[1] for g in gaps]))
        for label, values in rows:
            click.echo(f"{name:10} {label:7}" + "".join(f"{v:>11.3e}" for v in values))
    click.echo(f"Wrote {path}")


@inspect.command()
@click.argument("text")
@MODEL_OPTION
@click.option(
    "--units",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Units shown in the heatmap (those whose first gate varies most).",
)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG to write.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def gates(text, model, units, plot, as_json):
    """Gate values token by token while the model reads TEXT.

    Prints the mean of each gate over the units, the cell-state norm and the model's
    top next word after each token, and writes a tokens × units heatmap of each gate
    (default gates.png beside the model).
    """
    from textpredict.errors import TextpredictError
    from textpredict.inspection import gate_trace
    from textpredict.model import GATES_PLOT, load_model
    from textpredict.plots import plot_gate_heatmap
    from textpredict.predictor import Predictor

    saved = load_model(model)
    ids = Predictor(saved).encode(text)
    try:
        trace = gate_trace(saved.network, saved.tokenizer, ids)
    except ValueError as error:
        raise TextpredictError(str(error)) from None
    path = plot_gate_heatmap(trace, _png(plot, saved.path / GATES_PLOT), units)
    if as_json:
        click.echo(json.dumps({"plot": str(path), **trace.as_dict()}, indent=2))
        return
    names = list(trace.gates)
    width = max(len(t) for t in trace.tokens)
    header = f"{'token':<{width}}" + "".join(f"{n:>9}" for n in names)
    if trace.cell_norm is not None:
        header += f"{'‖c‖':>8}"
    click.echo(header + "  next")
    for t, token in enumerate(trace.tokens):
        row = f"{token:<{width}}" + "".join(f"{trace.gates[n][t].mean():>9.3f}" for n in names)
        if trace.cell_norm is not None:
            row += f"{trace.cell_norm[t]:>8.2f}"
        click.echo(f"{row}  {trace.next_words[t]}")
    click.echo(f"Wrote {path}")
