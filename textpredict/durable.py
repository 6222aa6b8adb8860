"""Renames that survive a power cut, not only a killed process.

Writing a file under a temporary name and renaming it over the old one is atomic for
other processes: a ``kill -9`` leaves the old file or the new one. After a power cut
or a kernel crash it is not enough. The file system may have recorded the rename
before the file's contents, and the new name then holds a file that is empty or
partly written, while the old file is already gone. So before a rename, the new file
(or every file of a new directory) is flushed to disk with ``fsync``. After it, the
directory that holds the name is flushed as well, so that the rename itself is on disk.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def sync_file(path: Path) -> None:
    """Flushes a written file's contents to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_directory(path: Path) -> None:
    """Flushes a directory's entries (the names created, renamed or deleted in it) to
    disk. Windows cannot open a directory; there, the rename is left to the system."""
    with contextlib.suppress(PermissionError, IsADirectoryError):
        sync_file(path)


def sync_tree(directory: Path) -> None:
    """Flushes every file and directory under ``directory``, itself included."""
    for root, _, files in os.walk(directory):
        for name in files:
            sync_file(Path(root) / name)
        sync_directory(Path(root))


def replace_file(temporary: Path, target: Path) -> None:
    """Renames a written file over ``target``: on disk, the old file or the new one."""
    sync_file(temporary)
    os.replace(temporary, target)
    sync_directory(Path(target).parent)
