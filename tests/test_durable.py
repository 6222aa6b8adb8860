"""Files and model directories reach the disk before their names do.

A power cut cannot be simulated here, so these tests record, in order, every
``fsync`` (by the path of the descriptor it flushes) and every rename, and check
that what a name will point to was flushed before the rename gave it that name.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from textpredict.durable import replace_file
from textpredict.export import export_model
from textpredict.model import ModelConfig, replace_directory
from textpredict.training import TrainingConfig, train, training_directory

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="names a descriptor's file through /proc"
)


@pytest.fixture
def events(monkeypatch):
    """``("sync", path)`` per fsync and ``("rename", source, target, moved)`` per rename,
    in order; ``moved`` is the set of files the rename moves: the source, or every file
    under it."""
    log = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(descriptor):
        log.append(("sync", Path(os.readlink(f"/proc/self/fd/{descriptor}"))))
        real_fsync(descriptor)

    def renamer(real):
        def rename(source, target, *args, **kwargs):
            source = Path(source).absolute()
            moved = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [source]
            log.append(("rename", source, Path(target).absolute(), set(moved)))
            return real(source, target, *args, **kwargs)

        return rename

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", renamer(real_replace))
    monkeypatch.setattr(os, "rename", renamer(real_rename))  # what Path.rename calls
    return log


def synced_before(events, index):
    """The paths flushed before the event at ``index``."""
    return {event[1] for event in events[:index] if event[0] == "sync"}


def test_a_replaced_file_is_flushed_before_its_rename_and_the_rename_after(tmp_path, events):
    temporary, target = tmp_path / ".f.tmp", tmp_path / "f"
    target.write_text("old")
    temporary.write_text("new")
    replace_file(temporary, target)
    assert target.read_text() == "new"
    assert events == [
        ("sync", temporary),
        ("rename", temporary, target, {temporary}),
        ("sync", tmp_path),
    ]


def test_a_new_directory_is_flushed_before_it_replaces_the_old(tmp_path, events):
    target, new = tmp_path / "m", tmp_path / ".m.training"
    for path, text in ((target, "old"), (new, "new")):
        (path / "assets").mkdir(parents=True)
        (path / "config.json").write_text(text)
        (path / "assets" / "vocabulary.txt").write_text(text)
    files = {new / "config.json", new / "assets" / "vocabulary.txt"}
    replace_directory(new, target)

    assert (target / "assets" / "vocabulary.txt").read_text() == "new"
    renames = [i for i, event in enumerate(events) if event[0] == "rename"]
    assert [events[i][1:3] for i in renames] == [(target, tmp_path / ".m.previous"), (new, target)]
    assert events[renames[1]][3] == files
    assert files | {new, new / "assets"} <= synced_before(events, renames[0])
    assert events[renames[-1] + 1 :] == [("sync", tmp_path)]  # before the old is deleted


def test_training_and_export_flush_every_file_before_naming_it(tmp_path, events):
    """The checkpoint and the best model inside the run's directory, the whole
    directory before it becomes the model, and an export before it becomes a version:
    nothing is named before it is on disk."""
    corpus = tmp_path / "corpus.txt"
    words = np.random.default_rng(0).choice(["the", "cat", "sat", "on", "a", "mat"], (60, 6))
    corpus.write_text("".join(" ".join(line) + "\n" for line in words), encoding="utf-8")
    model = tmp_path.absolute() / "models" / "m"
    saved = train(
        [corpus],
        model=model,
        model_config=ModelConfig(units=4, embedding_dim=4),
        training_config=TrainingConfig(epochs=1, batch_size=4, seq_len=4),
        verbose=0,
    )
    version = export_model(saved)

    renames = [(i, *event[1:]) for i, event in enumerate(events) if event[0] == "rename"]
    workdir = training_directory(model)
    named = {target for _, _, target, _ in renames}
    assert {workdir / "checkpoint.npz", workdir / "model.keras", model, version} <= named
    for index, source, _, moved in renames:
        assert moved, f"renamed {source}, which holds no file"
        assert moved <= synced_before(events, index), f"renamed {source} before flushing it"
    for directory in (model, version):
        swap = next(i for i, _, target, _ in renames if target == directory)
        assert ("sync", directory.parent) in events[swap:]
