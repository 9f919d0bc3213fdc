"""Path checks shared by the command-line tools, made before any long work writes to a path."""
from __future__ import annotations

import os
import secrets


def file_in_the_way(folder: str | os.PathLike) -> str | None:
    """The file that keeps ``folder`` from being a folder, if one does: ``folder`` itself or, when it is
    missing, its nearest existing ancestor (a file there makes every ``makedirs`` below it fail)."""
    existing = os.path.abspath(os.fspath(folder))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return None if os.path.isdir(existing) else existing


def create_temp_file(folder: str | os.PathLike, *, prefix: str, suffix: str) -> tuple[int, str]:
    """(descriptor, path) of a new, empty file in ``folder`` under a name no other writer has.

    Files written there and then renamed into place (checkpoints, caches) are meant for whoever may
    read the folder: the file is created with mode 0o666 less the umask, as ``open`` would, and not
    with ``tempfile.mkstemp``'s private 0o600.
    """
    for _ in range(100):
        path = os.path.join(os.fspath(folder), f"{prefix}{secrets.token_hex(8)}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {os.fspath(folder)!r} after 100 tries")


def probe_writable(path: str | os.PathLike) -> None:
    """Create ``path``'s missing folders and a file beside it, then remove that file: an OSError now, not
    after the minutes of work whose result goes there. A real write, since ``os.access`` says yes to
    root for folders no file can be created in (/proc, a read-only mount)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    fd, probe = create_temp_file(folder, prefix=".probe-", suffix=".tmp")
    os.close(fd)
    os.remove(probe)
