"""The record of a Penn Treebank training run, from its model directory.

Prints the configuration, the perplexities of every epoch, the held-out evaluation of
the saved (best) epoch beside the paper's figure, and the training time.

    textpredict train --preset zaremba-small --corpus ../shared/corpora/ptb --model zaremba-small
    python benchmarks/ptb_report.py saved_models/zaremba-small
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Test perplexities: Zaremba et al. 2014, and TensorFlow's reference ptb_word_lm.py.
PUBLISHED = {
    "zaremba-small": (114.5, 115.9),
    "zaremba-medium": (82.7, 82.1),
    "zaremba-large": (78.4, 78.3),
}


def report(path: Path, preset: str | None) -> str:
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    model, training, history = config["model"], config["training"], metrics["history"]
    lines = [
        f"model directory: {path}",
        f"model: {model}",
        f"training: {training}",
        "",
        f"{'epoch':>5} {'learning rate':>14} {'train ppl':>10} {'valid ppl':>10}"
        + (f" {'seconds':>8}" if "epoch_seconds" in history else ""),
    ]
    steps = training["seq_len"] if training["optimizer"] == "sgd" else 1
    epochs = len(history["loss"])
    for epoch, (lr, train, valid, seconds) in enumerate(
        zip(
            history.get("learning_rate", [training["learning_rate"]] * epochs),
            history["perplexity"],
            history["val_perplexity"],
            history.get("epoch_seconds", [float("nan")] * epochs),
            strict=True,
        ),
        start=1,
    ):
        # SGD presets state lr per window-summed loss, as the paper does (see presets.py)
        row = f"{epoch:>5} {lr / steps:>14.4g} {train:>10.2f} {valid:>10.2f}"
        lines.append(row + (f" {seconds:>8.0f}" if "epoch_seconds" in history else ""))
    valid, test = metrics["valid"], metrics["test"]
    lines += [
        "",
        f"best epoch {metrics['best_epoch']}: valid perplexity {valid['perplexity']:.2f} "
        f"({valid['tokens']} tokens), test perplexity {test['perplexity']:.2f} "
        f"({test['tokens']} tokens)",
        f"training time: {metrics['train_seconds'] / 60:.1f} minutes",
    ]
    if preset in PUBLISHED:
        paper, reference = PUBLISHED[preset]
        lines.append(f"published test perplexity: {paper} (paper), {reference} (TensorFlow's)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="a model directory")
    parser.add_argument("--preset", choices=PUBLISHED, help="compare with this preset's paper")
    args = parser.parse_args(argv)
    print(report(args.model, args.preset or args.model.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
