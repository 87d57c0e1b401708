"""Cases from a DICOM tree: each image series paired with the RT Structure Set or DICOM SEG that refers to it.

The tree is indexed from its headers (``scene.dicom_index``); an annotation names the series it was drawn on
(Referenced Series), so pairing needs no file-name convention. With a label table, each ROI or segment name
is looked up as a label's name or synonym; names the table does not know are reported (and left out of the
labels), never matched by a guess. Refused, naming the files: an annotation whose series is not in the tree,
two annotations of one series, a folder holding several annotated image series (a case is read from its
series' folder), a case none of whose names the table knows.

Image series that no annotation refers to are not cases (they are listed by ``segtruth info``).

A case edited in ``segtruth serve TREE`` is saved at the tree's root as ``CASE.seg.nrrd`` (a DICOM folder is
left as the archive wrote it); from then on that save is the case's segmentation here too, so a dataset made
from the tree holds the edits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.formats import IMAGE_SUFFIXES
from ..core.labels import LabelTable
from ..scene.dicom_index import SeriesEntry, index_tree, referring
from .manifest import MANIFEST_NAMES, SEGMENTATION_SUFFIX, CaseEntry, check_case_id


@dataclass
class TreeCases:
    """The cases found, and the annotation names the label table does not map (name -> case ids)."""

    entries: list[CaseEntry]
    unmapped: dict[str, list[str]] = field(default_factory=dict)
    unannotated: int = 0

    def report(self) -> list[str]:
        """Lines for the command's output: what was left out, and why."""
        lines = []
        if self.unmapped:
            listing = "; ".join(f"{name!r} ({', '.join(cases)})" for name, cases in sorted(self.unmapped.items()))
            lines.append(f"names not in the label table, left out: {listing}")
        if self.unannotated:
            lines.append(f"{self.unannotated} image series without an RTSTRUCT or SEG were not used")
        return lines


def is_dicom_tree(folder: str | Path) -> bool:
    """A folder given as cases that holds no manifest and no image files (``CASE.nrrd`` pairs), but DICOM files.

    ``.seg.nrrd`` files at its root alone (edits saved by ``segtruth serve``) leave it a tree.
    """
    folder = Path(folder)
    if not folder.is_dir() or any((folder / name).is_file() for name in MANIFEST_NAMES):
        return False
    top = [p for p in folder.iterdir() if p.is_file()]
    if any(full_suffix(p) in IMAGE_SUFFIXES and not p.name.endswith(SEGMENTATION_SUFFIX) for p in top):
        return False
    return bool(index_tree(folder))


def _case_id(entry: SeriesEntry, root: Path) -> str:
    folder = entry.folders[0]
    try:
        relative = folder.relative_to(root).as_posix()
    except ValueError:
        relative = folder.name
    if relative in ("", "."):
        relative = entry.first.patient_id or root.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", relative).strip("._-") or "case"


def cases_from_dicom_tree(root: str | Path, table: LabelTable | None = None, unannotated: bool = False) -> TreeCases:
    """One case per annotated image series under ``root``; see the module's notes for what is refused.

    ``unannotated`` also lists each image series no annotation refers to, without a segmentation (cases to
    label in the web app), when it alone fills its folder; a dataset leaves them out.
    """
    root = Path(root)
    entries = index_tree(root)
    by_uid = {entry.uid: entry for entry in entries}
    for annotation in (e for e in entries if e.is_annotation):
        missing = [uid for h in annotation.headers for uid in h.references if uid not in by_uid]
        if missing:
            raise SegTruthError(
                f"{annotation.files[0]}: refers to image series {missing[0]}, which is not in {root}; "
                "add that series or remove the file."
            )
    images = [e for e in entries if e.is_image]
    annotated = [(image, referring(entries, image)) for image in images]
    found = TreeCases([], unannotated=sum(1 for _, refs in annotated if not refs))
    folders: dict[Path, SeriesEntry] = {}
    seen: dict[str, str] = {}
    in_folder: dict[Path, int] = {}
    for image in images:
        for folder in image.folders:
            in_folder[folder] = in_folder.get(folder, 0) + 1
    for image, refs in annotated:
        if not refs:
            if unannotated and len(image.folders) == 1 and in_folder[image.folders[0]] == 1:
                case = _case_id(image, root)
                case = f"{case}_{image.number or len(seen)}" if case in seen else case
                check_case_id(case, image.folders[0])
                seen[case] = image.uid
                saved = root / f"{case}{SEGMENTATION_SUFFIX}"
                segmentation = saved if saved.is_file() else None
                found.entries.append(CaseEntry(case, (image.folders[0],), segmentation, str(image.folders[0])))
            continue
        files = [path for annotation in refs for path in annotation.files]
        if len(files) > 1:
            raise SegTruthError(
                f"{root}: {len(files)} annotations refer to series {image.uid} ({', '.join(map(str, files))}); "
                "keep one per series."
            )
        if len(image.folders) != 1:
            raise SegTruthError(f"{root}: series {image.uid} is spread over several folders; keep it in one.")
        folder = image.folders[0]
        if folder in folders:
            raise SegTruthError(
                f"{folder}: holds two annotated image series ({folders[folder].uid} and {image.uid}); "
                "a case is read from its series' folder, so give each series its own folder."
            )
        folders[folder] = image
        case = _case_id(image, root)
        if case in seen:
            case = f"{case}_{image.number or len(seen)}"
        check_case_id(case, folder)
        seen[case] = image.uid
        names = list(refs[0].first.names)
        rois = None
        if table is not None:
            mapped = [name for name in names if table.match(name) is not None]
            for name in names:
                if name not in mapped:
                    found.unmapped.setdefault(name, []).append(case)
            if not mapped:
                raise SegTruthError(
                    f"{files[0]}: none of its names {names} are in the {table.source}; add them (or as synonyms)."
                )
            rois = tuple(mapped)
        saved = root / f"{case}{SEGMENTATION_SUFFIX}"  # an edit saved by ``segtruth serve`` wins
        if saved.is_file():
            found.entries.append(CaseEntry(case, (folder,), saved, _relative(saved, root)))
        else:
            found.entries.append(CaseEntry(case, (folder,), files[0], _relative(files[0], root), rois=rois))
    if not found.entries:
        raise SegTruthError(f"{root}: holds no image series that an RTSTRUCT or DICOM SEG refers to.")
    return found


def with_rois(entries: list[CaseEntry], rois: Sequence[str] | None) -> list[CaseEntry]:
    """The cases with ``--roi``'s structures picked from each labelled case's RTSTRUCT or SEG (None: as they are).

    The names replace those a label table mapped; a case whose segmentation is not an RTSTRUCT or SEG is refused
    when it is read, naming the file.
    """
    if not rois:
        return entries
    return [replace(entry, rois=tuple(rois)) if entry.segmentation is not None else entry for entry in entries]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
