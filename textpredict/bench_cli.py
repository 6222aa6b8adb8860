"""`textpredict bench`: benchmarks that train and compare the cells.

Registered on the main command group by `textpredict.cli`.
"""

import json

import click

from textpredict.cli import CELL_NAMES, cells_option, check_png, user_errors


@click.group()
def bench():
    """Train every cell on the same task and compare them."""


@bench.command("long-range")
@cells_option("Cells to compare (repeatable). Default: all of them.")
@click.option("--quick", is_flag=True, help="A tiny run, in seconds (what the tests use).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default="long_range.png",
    show_default=True,
    help="PNG to write.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def long_range(cells, quick, seed, plot, as_json):
    """Accuracy on a word decided by a cue 6 to 119 tokens back, per cell.

    Country → language, subject number → verb and gender → pronoun, with neutral
    filler between cue and target. Every cell gets the same parameter budget and the
    same number of updates. Prints top-1 accuracy per distance beside chance and a
    unigram baseline, and writes a line plot.
    """
    import dataclasses

    from textpredict.long_range import QUICK, Settings, run
    from textpredict.plots import plot_long_range

    check_png(plot)
    settings = dataclasses.replace(QUICK if quick else Settings(), seed=seed)
    cells = list(cells or CELL_NAMES)

    def progress(result):
        if not as_json:
            click.echo(
                f"trained {result.cell}: {result.units} units, {result.weights} weights, "
                f"{result.seconds:.0f} s",
                err=True,
            )

    report = run(cells, settings, progress)
    path = plot_long_range(report, plot)
    if as_json:
        click.echo(json.dumps({"plot": str(path), **report.as_dict()}, indent=2))
        return
    names = [r.cell for r in report.cells]
    click.echo(
        f"{'kind':17} {'distance':>8}" + "".join(f"{n:>9}" for n in names) + "   chance  unigram"
    )
    for kind in report.chance:
        for b, (low, high) in enumerate(settings.buckets):
            cells_row = "".join(f"{r.accuracy[kind][b]:>9.1%}" for r in report.cells)
            click.echo(
                f"{kind:17} {f'{low}-{high}':>8}{cells_row}"
                f"{report.chance[kind]:>9.1%}{report.unigram[kind]:>9.1%}"
            )
    click.echo(f"Wrote {path}")
