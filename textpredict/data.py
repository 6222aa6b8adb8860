"""Which text is for training, which for validation, which for testing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from textpredict.errors import CorpusError
from textpredict.text import check_text_file, corpus_files, count_lines, read_lines

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "default"
HELD_OUT_FRACTION = 0.1  # of the corpus lines, half validation, half test, when none is given


@dataclass
class DataSplit:
    """Where the training, validation and test text comes from."""

    train: list[Path]
    valid: list[Path]
    test: list[Path]
    held_out: tuple[int, int, int] | None = None  # (train_end, valid_end, total) line numbers
    encoding: str = "utf-8"  # of every file, as --encoding named it
    errors: str = "strict"  # "replace": bytes that are not text are read as U+FFFD

    def lines(self, part: str) -> tf.data.Dataset:
        if self.held_out is None:
            return read_lines(getattr(self, part), encoding=self.encoding, errors=self.errors)
        train_end, valid_end, total = self.held_out
        start, stop = {"train": (0, train_end), "valid": (train_end, valid_end)}.get(
            part, (valid_end, total)
        )
        return read_lines(self.train, start, stop, self.encoding, self.errors)

    @classmethod
    def from_description(cls, data: dict) -> DataSplit:
        """The split that ``describe()`` wrote, read as it was read for training; an
        error if its files are gone or are no longer text."""
        paths = {part: [Path(p) for p in data.get(part, [])] for part in ("train", "valid", "test")}
        reading = {
            "encoding": data.get("encoding", "utf-8"),  # (what models before --encoding read)
            "errors": data.get("errors", "strict"),
        }
        for path in dict.fromkeys(p for part in paths.values() for p in part):
            if not path.is_file():
                raise CorpusError(f"the held-out text of this model ({path}) is gone; pass --file")
            check_text_file(path, **reading)
        held_out = data.get("held_out_lines")
        return cls(**paths, held_out=tuple(held_out) if held_out else None, **reading)

    def describe(self) -> dict:
        return {
            "train": [str(p.resolve()) for p in self.train],
            "valid": [str(p.resolve()) for p in self.valid],
            "test": [str(p.resolve()) for p in self.test],
            "held_out_lines": self.held_out,
            "encoding": self.encoding,
            "errors": self.errors,
        }


def split_data(
    corpus: Sequence[str | Path] | None,
    valid: Sequence[str | Path] | None = None,
    test: Sequence[str | Path] | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
) -> DataSplit:
    """Checks every file and decides the split.

    Every file is text in ``encoding``; ``errors="replace"`` reads bytes that are not
    as U+FFFD instead of refusing the file.

    With no corpus, the embedded default corpus and its own validation and test files.
    A single folder holding ``train.txt`` and ``valid.txt`` (and ``test.txt``), or
    Mikolov's ``ptb.train.txt`` … names, is read as those splits (its other files,
    such as a README, are ignored); ``valid`` and ``test`` replace its own.
    With a corpus but no validation file, the last 10 % of its lines are held out:
    the first half of those for validation, the second for testing.
    """
    if not corpus:
        if not DEFAULT_CORPUS.is_dir():
            raise CorpusError(f"the default corpus is missing ({DEFAULT_CORPUS}); pass --corpus")
        corpus = [DEFAULT_CORPUS]
    if len(corpus) == 1 and (parts := split_folder(Path(corpus[0]))):
        # --valid and --test replace the folder's own; its held-out text is never trained on.
        corpus, valid = [parts["train"]], valid or [parts["valid"]]
        if not test and "test" in parts:
            test = [parts["test"]]
    reading = {"encoding": encoding, "errors": errors}
    train_files = corpus_files(corpus, **reading)
    valid_files = corpus_files(valid, **reading) if valid else []
    test_files = corpus_files(test, **reading) if test else valid_files
    if valid_files:
        return DataSplit(train_files, valid_files, test_files, **reading)
    total = count_lines(train_files)
    held = max(2, round(total * HELD_OUT_FRACTION))
    if total - held < 1:
        raise CorpusError(f"the corpus has {total} lines, too few to hold some out; pass --valid")
    return DataSplit(
        train_files, train_files, train_files, (total - held, total - held // 2, total), **reading
    )


def split_folder(folder: Path) -> dict[str, Path]:
    """``{"train": …, "valid": …[, "test": …]}`` if ``folder`` is a split corpus, else {}."""
    for prefix in ("", "ptb."):
        parts = {p: folder / f"{prefix}{p}.txt" for p in ("train", "valid", "test")}
        if folder.is_dir() and parts["train"].is_file() and parts["valid"].is_file():
            return {p: path for p, path in parts.items() if path.is_file()}
    return {}
