"""Tests for the long-range benchmark (`textpredict bench long-range`)."""

import json
import random

import pytest
from click.testing import CliRunner

from textpredict.cli import main
from textpredict.default_corpus import COUNTRY_LANGUAGE, PRONOUNS
from textpredict.long_range import KINDS, answers, make_example, units_for_budget
from textpredict.model import CELLS


@pytest.mark.parametrize("kind", KINDS)
def test_examples_put_the_cue_at_the_asked_distance_and_the_answer_follows_it(kind):
    rng = random.Random(0)
    for distance in [*range(6, 30), 60, 119] * 3:
        ex = make_example(rng, kind, distance)
        assert distance - 2 <= ex.distance <= distance
        assert ex.answer in answers(kind)
        cue = ex.tokens[ex.target - ex.distance]
        if kind == "country_language":
            assert ex.answer == COUNTRY_LANGUAGE[cue]
        elif kind == "number_verb":
            plural = cue.endswith("s") or cue == "children"
            assert ex.answer == ("are" if plural else "is")
        else:
            female = cue in {"aunt", "sister", "anna", "maria", "mother", "grandmother"}
            assert ex.answer == PRONOUNS["female" if female else "male"][0]
        # Nothing between cue and target names another country, person or pronoun.
        between = set(ex.tokens[ex.target - ex.distance + 1 : ex.target])
        assert not between & (set(COUNTRY_LANGUAGE) | {"she", "he", "her", "his"})


@pytest.mark.parametrize("cell", list(CELLS))
def test_every_cell_gets_the_same_parameter_budget(cell):
    units, features = 64, 32
    budget = 4 * units * (features + units + 1)  # an LSTM of 64 units
    layer = CELLS[cell](units_for_budget(cell, budget, features))
    layer.build((None, None, features))
    weights = sum(int(w.shape.num_elements()) for w in layer.weights)
    assert abs(weights - budget) / budget < 0.03


def test_quick_benchmark_reports_every_cell_bucket_and_baseline(tmp_path):
    plot = tmp_path / "lr.png"
    args = ["bench", "long-range", "--quick", "--cell", "lstm", "--cell", "rnn"]
    result = CliRunner().invoke(main, [*args, "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [c["cell"] for c in report["cells"]] == ["lstm", "rnn"]
    buckets = report["settings"]["buckets"]
    for cell in report["cells"]:
        assert set(cell["accuracy"]) == set(KINDS)
        for values in cell["accuracy"].values():
            assert len(values) == len(buckets) and all(0 <= v <= 1 for v in values)
    assert report["chance"]["gender_pronoun"] == 0.5
    assert report["chance"]["country_language"] == 1 / len(answers("country_language"))
    assert plot.read_bytes()[:4] == b"\x89PNG"
