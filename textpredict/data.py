"""Which text is for training, which for validation, which for testing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from textpredict.errors import CorpusError
from textpredict.text import check_text_file, corpus_files, count_lines, read_lines

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "default"
PARTS = ("train", "valid", "test")
HELD_OUT_FRACTION = 0.05  # of the corpus lines, for each of validation and test not given


@dataclass
class DataSplit:
    """Where the training, validation and test text comes from."""

    train: list[Path]
    valid: list[Path]
    test: list[Path]
    # (train_end, valid_end, total) line numbers of the corpus: lines [train_end, valid_end)
    # are validation text, [valid_end, total) test text; valid_end == total when the test
    # text is files of its own.
    held_out: tuple[int, int, int] | None = None
    encoding: str = "utf-8"  # of every file, as --encoding named it
    errors: str = "strict"  # "replace": bytes that are not text are read as U+FFFD

    def lines(self, part: str) -> tf.data.Dataset:
        """The lines of ``part``: "train", "valid" or "test"."""
        if self.held_out is None or (part == "test" and self.held_out[1] == self.held_out[2]):
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
        paths = {part: [Path(p) for p in data.get(part, [])] for part in PARTS}
        reading = {
            "encoding": data.get("encoding", "utf-8"),  # (what models before --encoding read)
            "errors": data.get("errors", "strict"),
        }
        sizes = data.get("sizes", {})  # {} for a model trained before sizes were kept
        for path in dict.fromkeys(p for part in paths.values() for p in part):
            if not path.is_file():
                raise CorpusError(f"the held-out text of this model ({path}) is gone; pass --file")
            # An edited corpus moves lines: the held-out line numbers would then pick
            # lines that were trained on, and a resumed run would train on other text.
            size = path.stat().st_size
            if sizes.get(str(path), size) != size:
                raise CorpusError(
                    f"{path} has changed since this model was trained ({sizes[str(path)]} "
                    f"bytes then, {size} now); pass --file"
                )
            check_text_file(path, **reading)
        held_out = data.get("held_out_lines")
        return cls(**paths, held_out=tuple(held_out) if held_out else None, **reading)

    def describe(self) -> dict:
        """What ``from_description`` reads back: the files (with their sizes, to
        notice a file that changed since), the held-out lines, how they are read."""
        files = {part: [str(p.resolve()) for p in getattr(self, part)] for part in PARTS}
        every_file = dict.fromkeys(path for paths in files.values() for path in paths)
        return {
            **files,
            "sizes": {path: Path(path).stat().st_size for path in every_file},
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
    Validation or test text that is not given is held out from the corpus: with
    neither, its last 10 % of lines, the first half for validation, the second for
    testing; with test files only, its last 5 % for validation. With validation files
    only, the model is tested on those (every corpus line is trained on).
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
    held_parts = 1 if test else 2
    held = max(held_parts, round(total * HELD_OUT_FRACTION * held_parts))
    if total - held < 1:
        lines = f"{total} line" + ("" if total == 1 else "s")
        raise CorpusError(f"the corpus has {lines}, too few to hold some out; pass --valid")
    valid_end = total if test else total - held // 2
    return DataSplit(
        train_files,
        train_files,
        test_files if test else train_files,
        (total - held, valid_end, total),
        **reading,
    )


def split_folder(folder: Path) -> dict[str, Path]:
    """``{"train": …, "valid": …[, "test": …]}`` if ``folder`` is a split corpus, else {}."""
    for prefix in ("", "ptb."):
        parts = {p: folder / f"{prefix}{p}.txt" for p in ("train", "valid", "test")}
        if folder.is_dir() and parts["train"].is_file() and parts["valid"].is_file():
            return {p: path for p, path in parts.items() if path.is_file()}
    return {}
