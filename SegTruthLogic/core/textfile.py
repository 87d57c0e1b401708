"""Reading the small text files a user hands SegTruth (recipes, label tables, manifests, cards).

A binary file, a folder or a file in another encoding given where text is expected is one sentence naming the
file, never a UnicodeDecodeError; JSON syntax errors say where they are, on one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import SegTruthError


def read_text(path: str | Path, what: str) -> str:
    """The file's text (UTF-8, a byte-order mark allowed); ``what`` names the kind of file in errors."""
    path = Path(path)
    if path.is_dir():
        raise SegTruthError(f"{path}: is a folder, not a {what}.")
    if not path.is_file():
        raise SegTruthError(f"{path}: {what} not found.")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SegTruthError(f"{path}: is not a text file (not UTF-8), so not a {what}.") from None
    except OSError as error:
        raise SegTruthError(f"{path}: cannot be read ({error.strerror or type(error).__name__}).") from None


def parse_json(text: str, source: str) -> Any:
    """JSON from ``text``; a syntax error is one sentence with its line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SegTruthError(
            f"{source}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from None
