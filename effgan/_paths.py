"""Path checks shared by the command-line tools, made before any long work writes to a path."""
from __future__ import annotations

import os


def nearest_existing(path: str | os.PathLike) -> str:
    """The absolute ``path`` if it exists, else its nearest existing ancestor: what decides whether the
    missing folders can be created (a file there makes every ``makedirs`` below it fail)."""
    existing = os.path.abspath(os.fspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing
