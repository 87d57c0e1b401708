"""``segtruth info`` on a DICOM tree or an RTSTRUCT/SEG file: every series from the headers, no pixel read.

For each series: modality, description, number, SeriesInstanceUID, files and folder, the image's size and
spacing (from the headers) with one sentence when its slices are unequally spaced; for RT Structure Sets and
DICOM SEG, their ROI or segment names and the series they refer to (and where that series is in the tree).
Imports nothing of Slicer, so a large tree is listed in the time it takes to read its headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import SegTruthError
from .dicom_index import SeriesEntry, index_tree, read_header


def _relative(path: Path, root: Path) -> str:
    try:
        text = str(path.relative_to(root))
    except ValueError:
        return str(path)
    return "." if text in ("", ".") else text


def _entry(entry: SeriesEntry, root: Path, by_uid: dict[str, SeriesEntry]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "modality": entry.modality,
        "description": entry.description,
        "series_number": entry.number,
        "series_uid": entry.uid,
        "study_uid": entry.first.study_uid,
        "patient_id": entry.first.patient_id,
        "files": len(entry.headers),
        "folders": [_relative(folder, root) for folder in entry.folders],
    }
    if entry.is_image:
        fields["size"] = list(entry.size() or ())
        spacing = entry.spacing()
        fields["spacing"] = [round(s, 6) for s in spacing] if spacing else None
        problem = entry.spacing_problem()
        if problem:
            fields["note"] = problem
    if entry.is_annotation:
        fields["names"] = [name for header in entry.headers for name in header.names]
        references = list(dict.fromkeys(r for header in entry.headers for r in header.references))
        fields["refers_to"] = [
            {
                "series_uid": uid,
                "present": uid in by_uid,
                **({"folders": [_relative(f, root) for f in by_uid[uid].folders]} if uid in by_uid else {}),
            }
            for uid in references
        ]
    return fields


def describe_tree(root: str | Path) -> dict[str, Any]:
    """Every series under ``root`` as plain data (for ``--json`` and for ``format_tree``)."""
    root = Path(root)
    entries = index_tree(root)
    if not entries:
        raise SegTruthError(f"{root}: holds no DICOM files.")
    by_uid = {entry.uid: entry for entry in entries}
    return {
        "file": str(root),
        "kind": "DICOM tree",
        "series": [_entry(entry, root, by_uid) for entry in entries],
    }


def describe_dicom_object(path: str | Path) -> dict[str, Any]:
    """One RTSTRUCT or SEG file: its names and the series it refers to (looked for in its own folder)."""
    path = Path(path)
    header = read_header(path)
    if header is None:
        raise SegTruthError(f"{path}: is not a DICOM file.")
    entry = SeriesEntry(header.series_uid, [header])
    try:
        neighbours = {e.uid: e for e in index_tree(path.parent, recursive=False) if e.is_image}
    except SegTruthError:  # a damaged neighbour is not this file's problem: the series is then not found
        neighbours = {}
    return {"file": str(path), "kind": header.modality, "series": [_entry(entry, path.parent, neighbours)]}


def format_tree(info: dict[str, Any]) -> str:
    """Human-readable lines: one block per series."""
    series = info["series"]
    lines = [f"{info['file']}: {info['kind']}, {len(series)} series"]
    for entry in series:
        number = f"series {entry['series_number']}" if entry["series_number"] else "no series number"
        description = entry["description"] or "no description"
        lines.append(
            f"  {entry['modality'] or '?':<8} {number}, {description!r}  ({entry['files']} file{'s' if entry['files'] != 1 else ''} in "
            f"{', '.join(entry['folders'])})"
        )
        lines.append(f"           {entry['series_uid']}")
        if "size" in entry:
            spacing = entry.get("spacing")
            shown = " x ".join(f"{s:g}" for s in spacing) + " mm" if spacing else "spacing unknown"
            lines.append(f"           {' x '.join(str(s) for s in entry['size'])} voxels, {shown}")
        if entry.get("note"):
            lines.append(f"           note: {entry['note']}")
        if "names" in entry:
            kind = "ROIs" if entry["modality"] == "RTSTRUCT" else "segments"
            lines.append(f"           {kind} ({len(entry['names'])}): {', '.join(entry['names']) or 'none'}")
            for reference in entry["refers_to"]:
                where = f"in {', '.join(reference['folders'])}" if reference["present"] else "not in this tree"
                lines.append(f"           refers to {reference['series_uid']} ({where})")
    return "\n".join(lines)
