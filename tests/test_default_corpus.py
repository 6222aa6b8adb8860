"""Tests for the default corpus generator and the committed corpora/default files.

Pure Python: nothing here imports TensorFlow. The statistics are measured from the text
itself, not from the generator's internals.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from textpredict import default_corpus as dc

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "corpora" / "default"
ALLOWED_LINE = re.compile(r"[a-z',. ]+")
PUNCTUATION = {".", ","}


@pytest.fixture(scope="module")
def train_text() -> str:
    return (COMMITTED / "train.txt").read_text(encoding="ascii")


@pytest.fixture(scope="module")
def train_lines(train_text: str) -> list[list[str]]:
    return [line.split(" ") for line in train_text.splitlines()]


def _language_targets(lines: list[list[str]]):
    """(line, index of language word, index of the most recent country or None)."""
    for tokens in lines:
        last_country = None
        for i, token in enumerate(tokens):
            if token in dc.COUNTRY_LANGUAGE:
                last_country = i
            elif token in dc.LANGUAGES:
                yield tokens, i, last_country


# ---------------------------------------------------------------- determinism and files


def test_same_seed_same_output():
    assert dc.generate(300, seed=7) == dc.generate(300, seed=7)
    assert dc.generate_words(5000, seed=7) == dc.generate_words(5000, seed=7)


def test_different_seed_different_output():
    a, b = dc.generate(300, seed=7), dc.generate(300, seed=8)
    assert a != b
    # Not just a shifted copy: most stories of one seed are absent from the other.
    assert len(set(a) & set(b)) < 50


def test_generate_words_is_a_prefix_of_generate():
    lines = dc.generate_words(3000, seed=5)
    assert lines == dc.generate(len(lines), seed=5)
    assert sum(len(line.split()) for line in lines) >= 3000
    assert dc.generate(0, seed=5) == []
    with pytest.raises(ValueError):
        dc.generate(-1, seed=5)


def test_splits_use_different_seeds():
    seeds = [seed for _, seed in dc.SPLITS.values()]
    assert len(set(seeds)) == len(seeds)
    assert dc.PROBE_SEED not in seeds


def test_committed_files_match_generator(tmp_path: Path):
    paths = dc.write_default_corpus(tmp_path)
    assert set(paths) == {"train", "valid", "test"}
    for name, path in paths.items():
        committed = COMMITTED / f"{name}.txt"
        assert committed.is_file(), f"{committed} missing: run python -m textpredict.default_corpus"
        assert path.read_bytes() == committed.read_bytes(), (
            f"{committed} is stale: regenerate with python -m textpredict.default_corpus"
        )


def test_main_writes_and_checks(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(dc, "SPLITS", {"train": (3000, 11), "valid": (500, 12), "test": (500, 13)})
    out = tmp_path / "corpus"
    assert dc.main(["--out", str(out), "--check"]) == 1  # nothing there yet
    assert dc.main(["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["test.txt", "train.txt", "valid.txt"]
    assert dc.main(["--out", str(out), "--check"]) == 0
    (out / "valid.txt").write_text("changed .\n", encoding="ascii")
    assert dc.main(["--out", str(out), "--check"]) == 1
    assert "train.txt" in capsys.readouterr().out


def test_module_runs_as_script():
    result = subprocess.run(
        [sys.executable, "-m", "textpredict.default_corpus", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout and "--check" in result.stdout


def test_no_tensorflow_import():
    code = "import sys, textpredict.default_corpus; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_split_sizes():
    for name, (n_words, _) in dc.SPLITS.items():
        words = len((COMMITTED / f"{name}.txt").read_text(encoding="ascii").split())
        assert n_words <= words < n_words + 200, name
    assert 200_000 <= dc.TRAIN_WORDS <= 300_000


# ---------------------------------------------------------------- format


@pytest.mark.parametrize("name", ["train", "valid", "test"])
def test_format(name: str):
    text = (COMMITTED / f"{name}.txt").read_text(encoding="ascii")
    assert text.endswith(" .\n")
    for number, line in enumerate(text.splitlines(), 1):
        assert ALLOWED_LINE.fullmatch(line), f"line {number}: bad characters: {line!r}"
        assert line.endswith(" ."), f"line {number} lacks a final ' .': {line!r}"
        assert "  " not in line and line == line.strip(), f"line {number}: spacing: {line!r}"
        for token in line.split(" "):
            assert token in PUNCTUATION or re.fullmatch(r"[a-z]+('[a-z]+)?", token), (
                f"line {number}: bad token {token!r}"
            )


def test_vocabulary_is_large(train_text: str):
    vocab = set(train_text.split()) - PUNCTUATION
    assert len(vocab) >= 500
    # No handful of strings dominates: many distinct lines and sentences.
    lines = train_text.splitlines()
    assert len(set(lines)) > 0.8 * len(lines)


# ---------------------------------------------------------------- country → language


def test_every_country_language_pair_appears(train_lines):
    pairs = Counter(
        (tokens[cue], tokens[i]) for tokens, i, cue in _language_targets(train_lines) if cue
    )
    for country, language in dc.COUNTRY_LANGUAGE.items():
        assert pairs[(country, language)] >= 50, (country, language)


def test_every_language_follows_its_most_recent_country(train_lines):
    n = 0
    for tokens, i, cue in _language_targets(train_lines):
        assert cue is not None, " ".join(tokens)
        assert dc.COUNTRY_LANGUAGE[tokens[cue]] == tokens[i], " ".join(tokens)
        n += 1
    assert n > 2000


def test_now_i_speak_fluent_is_followed_by_the_cued_language(train_lines):
    n = 0
    for tokens in train_lines:
        last_country = None
        for i, token in enumerate(tokens):
            if token in dc.COUNTRY_LANGUAGE:
                last_country = token
            if tokens[i : i + 4] == ["now", "i", "speak", "fluent"]:
                assert last_country is not None
                assert tokens[i + 4] == dc.COUNTRY_LANGUAGE[last_country], " ".join(tokens)
                n += 1
    assert n > 1000


def test_cue_target_distances_cover_short_and_long(train_lines):
    distances = [i - cue for _, i, cue in _language_targets(train_lines)]
    assert min(distances) <= 5
    assert max(distances) >= 40
    assert sum(d >= 30 for d in distances) >= 500
    # Spread out: every 5-word band from 5 to 44 is well represented.
    bands = Counter(min(d // 5, 9) for d in distances)
    assert all(bands[b] >= 100 for b in range(1, 9)), sorted(bands.items())


def test_every_country_in_every_shape(train_text: str, train_lines):
    moved = " and moved away when i was young . "
    for country, language in dc.COUNTRY_LANGUAGE.items():
        phrase = "the netherlands" if country == "netherlands" else country
        # The exact shape of the "complete" example, with nothing in between ...
        exact = f"{phrase}{moved}now i speak fluent {language} ."
        assert exact in train_text, exact
        # ... the same with filler in between, and with another target phrase.
        filler = re.compile(
            rf"\b{country}{moved}(?!now i speak fluent)[a-z',. ]+ now i speak fluent {language} \."
        )
        assert filler.search(train_text), country
        other = re.compile(rf"\b{country}{moved}.*?(?<!now i speak fluent) {language} \.")
        assert other.search(train_text), country
        assert f"{country} so " in train_text, country
        distances = [
            i - cue for tokens, i, cue in _language_targets(train_lines) if tokens[cue] == country
        ]
        assert min(distances) <= 4 and max(distances) >= 30, country


def test_country_is_not_predictable_from_the_filler(train_lines):
    # The words between cue and target are (nearly) independent of the country: the most
    # country-specific filler word is not much more frequent with one country than overall.
    by_country: dict[str, Counter] = {}
    overall: Counter = Counter()
    for tokens, i, cue in _language_targets(train_lines):
        between = tokens[cue + 1 : i]
        by_country.setdefault(tokens[cue], Counter()).update(between)
        overall.update(between)
    total = sum(overall.values())
    for country, counts in by_country.items():
        n = sum(counts.values())
        for word, count in counts.items():
            if overall[word] >= 500:
                ratio = (count / n) / (overall[word] / total)
                assert ratio < 2.0, (country, word, ratio)


# ---------------------------------------------------------------- other phenomena


def test_clouds_are_in_the_sky(train_lines):
    following = Counter(
        tokens[i + 5]
        for tokens in train_lines
        for i in range(len(tokens) - 5)
        if tokens[i : i + 5] == ["the", "clouds", "are", "in", "the"]
    )
    total = sum(following.values())
    assert total >= 200
    assert following["sky"] / total >= 0.95, following
    assert "the white clouds are in the sky" in " ".join(" ".join(t) for t in train_lines)


def test_in_the_has_many_continuations(train_lines):
    following = Counter(
        tokens[i + 2]
        for tokens in train_lines
        for i in range(len(tokens) - 2)
        if tokens[i : i + 2] == ["in", "the"]
    )
    assert len(following) >= 60
    assert following["sky"] / sum(following.values()) < 0.3


HEAD_NUMBER = {
    **dict.fromkeys(["key", "dog", "child", "book", "box", "mouse", "teacher", "bottle"], "sg"),
    **dict.fromkeys(["keys", "dogs", "children", "books", "boxes", "mice", "teachers"], "pl"),
}
VERB_NUMBER = {"is": "sg", "was": "sg", "has": "sg", "are": "pl", "were": "pl", "have": "pl"}
ATTRACTOR_START = {"that", "near", "by", "behind", "next", "beside", "in", "on", "under", "from"}


def test_number_agreement_across_attractors(train_text: str):
    # "the [adj] <head> <preposition or 'that'> ... <first is/are/was/were/has/have>": the
    # verb agrees with the head, whatever the number of the nouns in between.
    checked = Counter()
    for sentence in re.split(r" \. ?", train_text.replace("\n", " ")):
        words = sentence.split()
        if len(words) < 4 or words[0] != "the":
            continue
        head = 1 if words[1] in HEAD_NUMBER else 2 if words[2] in HEAD_NUMBER else None
        if head is None or words[head + 1] not in ATTRACTOR_START:
            continue
        verb = next((w for w in words[head + 1 :] if w in VERB_NUMBER), None)
        if verb is None:
            continue
        assert VERB_NUMBER[verb] == HEAD_NUMBER[words[head]], sentence
        checked[HEAD_NUMBER[words[head]]] += 1
    assert checked["sg"] >= 100 and checked["pl"] >= 100, checked
    # Object relative clauses ("the dog that the neighbours feed ...") are frequent.
    assert len(re.findall(r"\bthe \w+ that the \w+ \w+", train_text)) >= 300


def test_gendered_people_get_the_right_pronoun(train_lines):
    gender = {
        "sister": "she",
        "mother": "she",
        "aunt": "she",
        "anna": "she",
        "brother": "he",
        "father": "he",
        "uncle": "he",
        "peter": "he",
    }
    checked = 0
    for tokens in train_lines:
        first = tokens[: tokens.index(".")]
        people = [gender[t] for t in first if t in gender]
        if len(people) != 1 or tokens[0] == "i":
            continue
        pronouns = {t for t in tokens if t in ("he", "she")}
        if not pronouns:  # a line may name a person and never refer back
            continue
        assert pronouns == {people[0]}, " ".join(tokens)
        checked += 1
    assert checked >= 100


# ---------------------------------------------------------------- probes


def test_probes_are_consistent():
    for kind in dc.PROBE_KINDS:
        probes = dc.make_probes(kind, 200)
        assert probes == dc.make_probes(kind, 200)
        assert probes != dc.make_probes(kind, 200, seed=dc.PROBE_SEED + 1)
        for p in probes:
            words = p.prompt.split()
            assert p.kind == kind and p.expected != p.foil
            assert 1 <= p.distance <= len(words)
            cue = words[-p.distance]
            if kind == "country_language":
                assert dc.COUNTRY_LANGUAGE[cue] == p.expected
                assert p.foil in dc.LANGUAGES
            elif kind == "gender_pronoun":
                assert {p.expected, p.foil} == {"he", "she"}
            else:
                assert p.expected != p.foil and cue.isalpha()
    country = dc.make_probes("country_language", 2 * 41)
    assert {p.prompt.split()[-p.distance] for p in country} == set(dc.COUNTRIES)
    assert max(p.distance for p in country) >= 40
    fluent = [p for p in country if p.prompt.endswith(f"{dc.MOVED_AWAY} . {dc.FLUENT_TARGET}")]
    assert fluent
    with pytest.raises(ValueError):
        dc.make_probes("nonsense", 1)


def test_probe_prompts_are_in_corpus_format():
    for kind in dc.PROBE_KINDS:
        for p in dc.make_probes(kind, 50):
            assert ALLOWED_LINE.fullmatch(p.prompt) and not p.prompt.endswith(" .")
