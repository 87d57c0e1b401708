"""Reading a PyTorch checkpoint safely, with errors that say what is wrong with the file.

``torch.load(weights_only=True)`` runs no code from the file, but it reports every unreadable file the same
way, as an unpickling failure that suggests ``weights_only=False``; random bytes would be called unsafe. The
file's first bytes tell a real checkpoint (a zip archive, or a legacy pickle) from anything else, so a damaged
or foreign file is named as such, and only a real checkpoint holding code or objects is refused for safety.
Every model file SegTruth reads (state dicts, nnU-Net checkpoints, TorchScript) comes through here, and a zip
archive is checked against its CRC-32s first, which torch's own reader skips.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..core.errors import SegTruthError

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOLS = tuple(bytes([0x80, p]) for p in range(2, 6))  # a legacy torch.save file starts as a pickle


def load_weights(path: Path, what: str, safe_globals: Iterable[Any] = ()) -> Any:
    """Unpickle ``path`` with ``weights_only=True`` (tensors and plain data only); ``what`` names what needs it."""
    if not path.is_file():
        raise SegTruthError(f"{path}: missing weights ({what} needs this file).")
    with open(path, "rb") as stream:
        head = stream.read(4)
    unreadable = _unreadable(path, "PyTorch checkpoint")
    if head == _ZIP_MAGIC:
        _check_archive(path, unreadable)
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
    except Exception:  # whatever torch's unpickler trips over in damaged bytes, the file is not a checkpoint
        raise unreadable from None


def load_scripted(path: Path, what: str) -> torch.jit.ScriptModule:
    """A TorchScript archive on the CPU, its zip checked whole first; ``what`` names what needs it."""
    if not path.is_file():
        raise SegTruthError(f"{path}: missing weights ({what} needs this TorchScript file).")
    unreadable = _unreadable(path, "TorchScript model")
    with open(path, "rb") as stream:
        if stream.read(4) != _ZIP_MAGIC:
            raise unreadable
    _check_archive(path, unreadable)
    try:
        with warnings.catch_warnings():  # torch 2.x marks TorchScript deprecated; the catalog's models are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception:  # torch's archive reader raises RuntimeError, ValueError or worse on damaged data
        raise unreadable from None


def _unreadable(path: Path, kind: str) -> SegTruthError:
    return SegTruthError(f"{path}: is not a readable {kind} (corrupt, truncated or another kind of file).")


def _check_archive(path: Path, unreadable: SegTruthError) -> None:
    """Every member of the zip archive matches its CRC-32: torch's own reader checks none, so a flipped byte
    in the weights would load as a different network without a word."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except Exception:  # BadZipFile, zlib.error, EOFError, NotImplementedError...: a damaged archive all the same
        raise unreadable from None
    if damaged is not None:
        raise unreadable
