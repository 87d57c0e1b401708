"""Whether a DICOM file is whole: pydicom reads a truncated file without a word, ending its sequences early.

The element structure is walked (tag, VR, length; sequences and items of undefined length to their delimiters)
without decoding any value: a declared length that runs past the end of the file, or a file that ends inside a
sequence, is truncation. Bytes after the last whole element (padding some writers leave) are not checked.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ..core.errors import SegTruthError

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE00D), (0xFFFE, 0xE0DD)
_IMPLICIT_LE = "1.2.840.10008.1.2"
_CHECKED = {_IMPLICIT_LE, "1.2.840.10008.1.2.1"}  # deflated and big-endian files are left to the reader


class _Truncated(Exception):
    pass


def _elements(data: bytes, pos: int, explicit: bool, inside: bool) -> int:
    """Walk elements from ``pos``; in an undefined-length item, up to its delimiter. Returns the end."""
    size = len(data)
    while pos + 8 <= size:
        group, element = struct.unpack_from("<HH", data, pos)
        if (group, element) == _ITEM_END:
            return pos + 8
        if group == 0xFFFE:
            return pos  # a sequence delimiter or item: the caller's
        if explicit and group != 0xFFFE:
            vr = data[pos + 4 : pos + 6]
            if not vr.isalpha():
                if inside:
                    raise _Truncated
                return pos  # trailing padding or garbage after the last element
            if vr in _LONG_VRS:
                if pos + 12 > size:
                    raise _Truncated
                (length,) = struct.unpack_from("<I", data, pos + 8)
                pos += 12
            else:
                (length,) = struct.unpack_from("<H", data, pos + 6)
                pos += 8
        else:
            (length,) = struct.unpack_from("<I", data, pos + 4)
            pos += 8
        if length == _UNDEFINED:
            pos = _sequence(data, pos, explicit)
        else:
            if pos + length > size:
                raise _Truncated
            pos += length
    if inside or (pos < size and pos + 8 > size and any(data[pos:])):
        raise _Truncated
    return pos


def _sequence(data: bytes, pos: int, explicit: bool) -> int:
    """Items of an undefined-length sequence (or encapsulated pixel data) up to the sequence delimiter."""
    size = len(data)
    while True:
        if pos + 8 > size:
            raise _Truncated
        tag = struct.unpack_from("<HH", data, pos)
        (length,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise _Truncated
        if length == _UNDEFINED:
            pos = _elements(data, pos, explicit, inside=True)
        else:
            if pos + length > size:
                raise _Truncated
            pos += length


def check_complete(path: str | Path) -> None:
    """Raise one sentence when ``path`` is a truncated DICOM file."""
    path = Path(path)
    data = path.read_bytes()
    pos = 132 if data[128:132] == b"DICM" else 0
    try:
        meta_end = pos
        syntax = _IMPLICIT_LE
        while meta_end + 8 <= len(data) and struct.unpack_from("<H", data, meta_end)[0] == 0x0002:
            element = struct.unpack_from("<H", data, meta_end + 2)[0]
            vr = data[meta_end + 4 : meta_end + 6]
            if vr in _LONG_VRS:
                (length,) = struct.unpack_from("<I", data, meta_end + 8)
                start = meta_end + 12
            else:
                (length,) = struct.unpack_from("<H", data, meta_end + 6)
                start = meta_end + 8
            if start + length > len(data):
                raise _Truncated
            if element == 0x0010:
                syntax = data[start : start + length].decode("ascii", "replace").strip("\0 ")
            meta_end = start + length
        if syntax not in _CHECKED:
            return
        _elements(data, meta_end, syntax != _IMPLICIT_LE, inside=False)
    except (_Truncated, struct.error):
        raise SegTruthError(f"{path}: is truncated (the file ends inside a DICOM element).") from None
