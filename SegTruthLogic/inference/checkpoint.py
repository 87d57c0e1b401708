"""Reading a PyTorch checkpoint safely, with errors that say what is wrong with the file.

``torch.load(weights_only=True)`` runs no code from the file, but it reports every unreadable file the same
way, as an unpickling failure that suggests ``weights_only=False``; random bytes would be called unsafe. The
file's first bytes tell a real checkpoint (a zip archive, or a legacy pickle) from anything else, so a damaged
or foreign file is named as such, and only a real checkpoint holding code or objects is refused for safety.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..errors import SegTruthError

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOLS = tuple(bytes([0x80, p]) for p in range(2, 6))  # a legacy torch.save file starts as a pickle


def load_weights(path: Path, what: str, safe_globals: Iterable[Any] = ()) -> Any:
    """Unpickle ``path`` with ``weights_only=True`` (tensors and plain data only); ``what`` names what needs it."""
    if not path.is_file():
        raise SegTruthError(f"{path}: missing weights ({what} needs this file).")
    with open(path, "rb") as stream:
        head = stream.read(4)
    unreadable = SegTruthError(
        f"{path}: is not a readable PyTorch checkpoint (corrupt, truncated or another kind of file)."
    )
    if head == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            raise unreadable from None
        if damaged is not None:
            raise unreadable
    elif not head.startswith(_PICKLE_PROTOCOLS):
        raise unreadable
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = next((line for line in str(error).splitlines() if "GLOBAL" in line), "")
        if not found:  # noise that reads like pickle opcodes, not a reference to code
            raise unreadable from None
        detail = found.split("GLOBAL")[-1].split()[0] if found.split("GLOBAL")[-1].split() else "a global"
        raise SegTruthError(f"{path}: holds code or objects besides weights ({detail}), refused for safety.") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile):
        raise unreadable from None
