"""How well a trained model uses long-range context: probes from the default corpus.

For each kind of cue (country → language, subject number → verb form, subject gender →
pronoun) the generator writes held-out prompts whose next word is decided by a cue
``distance`` words back. This reports, per distance bucket, top-1 accuracy and how often
the model prefers the right word over its foil (the other language, verb form or
pronoun), plus the two README prompts.

    python benchmarks/default_model.py [--model default] [--probes 300]
"""

from __future__ import annotations

import argparse
import json
import time

from textpredict.default_corpus import PROBE_KINDS, make_probes
from textpredict.model import load_model
from textpredict.predictor import Predictor

BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 30), (31, 45))
README_PROMPTS = {
    "the clouds are in the": "sky",
    "i grew up in france and moved away when i was young . now i speak fluent": "french",
}


def measure(predictor: Predictor, probes) -> dict:
    rows = {}
    for low, high in BUCKETS:
        chosen = [p for p in probes if low <= p.distance <= high]
        if not chosen:
            continue
        top1 = preferred = 0
        for probe in chosen:
            ids = predictor.encode(probe.prompt)
            probabilities = predictor.next_probabilities(ids)
            best = predictor.rank(probe.prompt, 1)[0][0]
            top1 += best == probe.expected
            token = predictor.tokenizer.token_to_id
            preferred += probabilities[token(probe.expected)] > probabilities[token(probe.foil)]
        rows[f"{low}-{high}"] = {
            "probes": len(chosen),
            "top1": top1 / len(chosen),
            "beats_foil": preferred / len(chosen),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--probes", type=int, default=300, help="probes per kind")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    predictor = Predictor(load_model(args.model))
    report = {
        "prompts": {text: predictor.rank(text, 3) for text in README_PROMPTS},
        "probes": {
            kind: measure(predictor, make_probes(kind, args.probes)) for kind in PROBE_KINDS
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for text, ranked in report["prompts"].items():
        words = ", ".join(f"{w} {p:.3f}" for w, p in ranked)
        print(f"{text!r}: {words}")
    print(f"\n{'kind':18} {'distance':>8} {'probes':>6} {'top-1':>6} {'beats foil':>10}")
    for kind, rows in report["probes"].items():
        for bucket, row in rows.items():
            print(
                f"{kind:18} {bucket:>8} {row['probes']:>6} {row['top1']:>6.1%} "
                f"{row['beats_foil']:>10.1%}"
            )
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
