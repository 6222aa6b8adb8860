"""PNG plots of what `textpredict inspect` measures.

Figures are built with `matplotlib.figure.Figure` directly rather than pyplot:
no global state, no GUI backend, so plotting works headless and never opens a
window.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from textpredict.inspection import GateTrace, GradientFlow


def plot_gradient_flow(flows: dict[str, GradientFlow], path: str | Path) -> Path:
    """Gradient norm against the gap T − t, log scale, one line per cell.

    Solid lines are ‖∂L_T/∂h_t‖, dashed lines ‖∂L_T/∂c_t‖ (cells with a cell state).
    """
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for i, (name, flow) in enumerate(flows.items()):
        color = f"C{i}"
        axes.semilogy(flow.gaps, flow.hidden, color=color, label=f"{name}: ‖∂L/∂h‖")
        if flow.cell is not None:
            axes.semilogy(flow.gaps, flow.cell, color=color, ls="--", label=f"{name}: ‖∂L/∂c‖")
    axes.set_xlabel("gap T − t (time steps back from the loss)")
    axes.set_ylabel("mean gradient norm")
    axes.set_title("How far back does the error reach?")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_gate_heatmap(trace: GateTrace, path: str | Path, units: int = 16) -> Path:
    """Tokens × units heatmaps of each gate, for the `units` most active units.

    "Most active" = largest variance over the text of the first gate (the forget
    gate for the LSTM family), so the rows are the units that react to the words.
    """
    names = list(trace.gates)
    first = trace.gates[names[0]]
    chosen = np.argsort(first.var(axis=0))[::-1][: min(units, first.shape[1])]
    width = max(6.0, 0.35 * len(trace.tokens) + 2)
    figure = Figure(figsize=(width, 2.2 * len(names) + 1), layout="constrained")
    axes = figure.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        image = ax.imshow(
            trace.gates[name][:, chosen].T, aspect="auto", vmin=0, vmax=1, cmap="viridis"
        )
        ax.set_ylabel(f"{name}\nunit")
        ax.set_yticks(range(len(chosen)), [str(u) for u in chosen], fontsize=6)
        ax.set_xticks(range(len(trace.tokens)), trace.tokens, rotation=60, fontsize=8)
    figure.colorbar(image, ax=list(axes), shrink=0.8, label="gate value")
    return _save(figure, path)


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def plot_long_range(report, path: str | Path) -> Path:
    """Top-1 accuracy against cue → target distance: one panel per kind, one line per cell.

    `report` is a `textpredict.long_range.Report`; chance (dashed) and the unigram
    baseline (dotted) are drawn in grey.
    """
    kinds = list(report.chance)
    labels = [f"{low}-{high}" for low, high in report.settings.buckets]
    x = np.arange(len(labels))
    figure = Figure(figsize=(4 * len(kinds), 3.8), layout="constrained")
    axes = figure.subplots(1, len(kinds), squeeze=False, sharey=True)[0]
    for ax, kind in zip(axes, kinds, strict=True):
        for i, result in enumerate(report.cells):
            ax.plot(x, result.accuracy[kind], marker="o", color=f"C{i}", label=result.cell)
        ax.axhline(report.chance[kind], color="grey", ls="--", lw=1, label="chance")
        ax.axhline(report.unigram[kind], color="grey", ls=":", lw=1, label="unigram")
        ax.set_title(kind.replace("_", " → "))
        ax.set_xticks(x, labels)
        ax.set_xlabel("distance (tokens)")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("top-1 accuracy")
    axes[-1].legend(fontsize="small", loc="lower left")
    return _save(figure, path)
