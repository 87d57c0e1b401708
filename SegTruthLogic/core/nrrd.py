"""A completeness check for NRRD files before Slicer or ITK read them.

Teem (inside ITK and Slicer) does not verify the gzip checksum, so a corrupted ``.nrrd`` loads as wrong
voxels without a word, and Slicer's segmentation reader aborts the whole process on a truncated
``.seg.nrrd``. Python's gzip and bz2 readers do check, so the data is streamed through them once.
"""

from __future__ import annotations

import bz2
import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SegTruthError

_HEADER_LIMIT = 1 << 20
_TYPE_SIZES = {
    1: "signed char|int8|int8_t|uchar|unsigned char|uint8|uint8_t",
    2: "short|short int|signed short|signed short int|int16|int16_t|ushort|unsigned short|unsigned short int|uint16|"
    "uint16_t",
    4: "int|signed int|int32|int32_t|uint|unsigned int|uint32|uint32_t|float",
    8: "longlong|long long|long long int|signed long long|signed long long int|int64|int64_t|ulonglong|"
    "unsigned long long|unsigned long long int|uint64|uint64_t|double",
}
_SIZE_OF = {name: size for size, names in _TYPE_SIZES.items() for name in names.split("|")}


@dataclass
class NrrdHeader:
    """The fields (``key: value``) and key/value pairs (``key:=value``) of a NRRD header."""

    fields: dict[str, str] = field(default_factory=dict)
    key_values: dict[str, str] = field(default_factory=dict)
    data_offset: int = 0


def read_header(path: str | Path) -> NrrdHeader:
    """Parse a NRRD header; a clear error when the file is not NRRD or its header is cut off."""
    path = Path(path)
    with open(path, "rb") as stream:
        head = stream.read(_HEADER_LIMIT)
    if not head.startswith(b"NRRD000"):
        raise SegTruthError(f"{path}: is not a NRRD file (no NRRD magic line).")
    blank = re.search(rb"\n\r?\n", head)  # a header ends at its first empty line
    end = blank.start() if blank else len(head)  # a detached header (.nhdr) may end without one
    header = NrrdHeader(data_offset=blank.end() if blank else len(head))
    # a header is text: a control byte (a NUL makes Slicer's segmentation reader crash) is damage
    control = re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", head[:end])
    if control:
        line = head[: control.start()].count(b"\n") + 1
        raise SegTruthError(f"{path}: has a damaged NRRD header (control byte {control.group()!r} in line {line}).")
    # teem ends a header line at "\n" only: splitlines() would also split at "\x85" (and the control bytes
    # refused above), reading a header that Slicer's reader rejects by aborting the process as a valid one
    for line in head[:end].decode("latin-1").split("\n")[1:]:
        line = line[:-1] if line.endswith("\r") else line
        if not line or line.startswith("#"):
            continue
        if ":=" in line:
            key, value = line.split(":=", 1)
            header.key_values[key] = value
        elif ": " in line:
            key, value = line.split(": ", 1)
            header.fields[key.strip().lower()] = value.strip()
        else:
            raise SegTruthError(f"{path}: has a malformed NRRD header line {line[:60]!r}.")
    return header


def check_nrrd_complete(path: str | Path) -> NrrdHeader:
    """Check that a NRRD file holds all its voxel bytes, uncorrupted where compressed; return its header."""
    path = Path(path)
    header = read_header(path)
    fields = header.fields
    try:
        sizes = [int(s) for s in fields["sizes"].split()]
        encoding = fields.get("encoding", "raw").lower()
        item = int(fields["block size"]) if fields.get("type") == "block" else _SIZE_OF[fields["type"].lower()]
        skip_lines = int(fields.get("line skip", fields.get("lineskip", "0")))
        skip_bytes = int(fields.get("byte skip", fields.get("byteskip", "0")))
    except (KeyError, ValueError):
        raise SegTruthError(f"{path}: has an incomplete or invalid NRRD header (sizes, type or encoding).") from None
    data_file = fields.get("data file", fields.get("datafile"))
    if data_file is not None:
        if data_file.split()[0] == "LIST" or "%" in data_file or len(data_file.split()) > 1:
            return header  # a multi-file series: left to ITK
        source, offset = path.parent / data_file, 0
        if not source.is_file():
            raise SegTruthError(f"{path}: its data file {data_file!r} is missing.")
    else:
        source, offset = path, header.data_offset
    if skip_lines or skip_bytes < 0 or encoding not in ("raw", "gz", "gzip", "bz2", "bzip2"):
        return header  # text encodings and skipped preambles: left to ITK
    expected = skip_bytes + int(np.prod(sizes, dtype=np.int64)) * item
    total = _data_bytes(source, offset, encoding, path)
    if total < expected:
        raise SegTruthError(f"{path}: is truncated ({total} of {expected} data bytes).")
    return header


def _data_bytes(source: Path, offset: int, encoding: str, path: Path) -> int:
    """How many bytes the data holds once decompressed (checksums verified on the way)."""
    with open(source, "rb") as stream:
        stream.seek(offset)
        if encoding == "raw":
            return len(stream.read())
        total = 0
        try:
            with (
                gzip.GzipFile(fileobj=stream, mode="rb") if encoding in ("gz", "gzip") else bz2.BZ2File(stream, "rb")
            ) as data:
                while chunk := data.read(1 << 22):
                    total += len(chunk)
        except (EOFError, OSError, zlib.error, ValueError):
            raise SegTruthError(f"{path}: is truncated or corrupt (the compressed data fails its check).") from None
        return total
