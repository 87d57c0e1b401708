"""Which cases make a dataset: a CSV or JSON manifest, or a folder of ``CASE.nrrd`` + ``CASE.seg.nrrd`` pairs.

A manifest has the columns ``case,image,segmentation`` (several channels: ``image_0000,image_0001,...``
instead of ``image``); a JSON manifest is a list of objects with the same keys. Paths are relative to the
manifest's folder, so a manifest travels with its data. An empty segmentation makes an unlabelled (test)
case. Everything a later step would trip over (a missing file, a duplicate case id, channel columns out of
order) is refused here, before any case is converted.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.formats import IMAGE_SUFFIXES
from ..core.textfile import parse_json, read_text

MANIFEST_NAMES = ("manifest.csv", "manifest.json")
SEGMENTATION_SUFFIX = ".seg.nrrd"
# Case ids become file names in every trainer's layout: keep them to characters no tool misreads.
CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_case_id(case: str, where: str | Path, becomes: str = "a file name") -> None:
    """A case id names files and folders: letters, digits, '.', '_' and '-' only."""
    if not CASE_ID.fullmatch(case):
        raise SegTruthError(
            f"{where}: case id {case!r} may only hold letters, digits, '.', '_' and '-' (it becomes {becomes})."
        )


_CHANNEL = re.compile(r"image_(\d{4})")


@dataclass(frozen=True)
class CaseEntry:
    """One case: its id, one image per channel, and its segmentation (None for an unlabelled case).

    The one case record of datasets, batches and the web editor; ``where`` says where it was listed.
    """

    case: str
    images: tuple[Path, ...]
    segmentation: Path | None = None
    where: str = ""
    problem: str | None = None  # why it cannot be read (a missing file), where a listing records it instead of raising
    rois: tuple[str, ...] | None = None  # the structures of an RTSTRUCT/SEG segmentation to read (None: all)

    @property
    def labelled(self) -> bool:
        return self.segmentation is not None

    def describe(self) -> str:
        """``Case 'a' (manifest.csv line 2)``: how error messages start when they name the case."""
        return f"Case {self.case!r}" + (f" ({self.where})" if self.where else "")


def read_cases(path: str | Path) -> list[CaseEntry]:
    """Cases from a manifest file, or from a folder (its manifest, else its image + ``.seg.nrrd`` pairs)."""
    path = Path(path)
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return read_manifest(path / name)
        return cases_in_folder(path)
    return read_manifest(path)


def list_manifest(path: str | Path) -> list[CaseEntry]:
    """A manifest's cases, with a missing image or segmentation recorded as the case's ``problem`` instead of raising.

    A batch runs every other case and the web editor serves them, so one missing file stops neither; everything
    else wrong with the manifest (columns, case ids) is still an error.
    """
    path = Path(path)
    if not path.is_file():
        raise SegTruthError(f"{path}: manifest not found.")
    try:
        entries = read_manifest(path)
        return entries
    except SegTruthError:
        pass  # some row is unusable: read row by row below so that only the rows with missing files fail
    text = read_text(path, "manifest")
    rows = _csv_rows(text, path) if path.suffix.lower() == ".csv" else _json_rows(text, path)
    if not rows:
        raise SegTruthError(f"{path}: lists no cases.")
    cases: list[CaseEntry] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        case = row.get("case", "")
        if not CASE_ID.fullmatch(case or "-"):
            _entries([(where, row)], path.parent)  # raises the manifest's own message for a bad case id
        if case in seen:
            raise SegTruthError(f"{where}: case id {case!r} is used twice (also at {seen[case]}).")
        seen[case] = where
        columns = ["image"] if "image" in row else channel_columns(list(row))
        if not all(row.get(column) for column in columns):
            _entries([(where, row)], path.parent)  # raises the manifest's own message for a missing image
        missing = _missing(row, path.parent)
        if missing:
            column, file = missing
            images = tuple(_resolve(row[column], path.parent) for column in columns)
            segmentation = _resolve(row["segmentation"], path.parent) if row.get("segmentation") else None
            problem = f"Case {case!r} ({where}): {column} {file} not found."
            cases.append(CaseEntry(case, images, segmentation, where, problem))
            continue
        cases.extend(_entries([(where, row)], path.parent))  # the manifest's checks for everything else
    return cases


def _resolve(text: str, folder: Path) -> Path:
    """A manifest's path as the manifest resolves it: relative to the manifest's folder."""
    file = Path(text).expanduser()
    return file if file.is_absolute() else folder / file


def _missing(row: dict[str, str], folder: Path) -> tuple[str, Path] | None:
    """The first column whose file does not exist."""
    columns = ["image"] if "image" in row else channel_columns(list(row))
    for column in [*columns, "segmentation"]:
        text = row.get(column) or ""
        if text and not _resolve(text, folder).exists():
            return column, _resolve(text, folder)
    return None


def read_manifest(path: str | Path) -> list[CaseEntry]:
    """Read a ``.csv`` or ``.json`` manifest and check every row."""
    path = Path(path)
    text = read_text(path, "manifest")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(text, path)
    elif suffix == ".json":
        rows = _json_rows(text, path)
    else:
        raise SegTruthError(f"{path}: a manifest must be .csv or .json.")
    if not rows:
        raise SegTruthError(f"{path}: lists no cases.")
    return _entries(rows, path.parent)


def _csv_rows(text: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise SegTruthError(f"{path}: is empty; the first line must be the header case,image,segmentation.")
    fields = [(f or "").strip() for f in reader.fieldnames]
    _check_columns(fields, f"{path}")
    rows = []
    for number, row in enumerate(reader, start=2):
        values = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            raise SegTruthError(f"{path} line {number}: has more values than the header has columns.")
        if any(values.values()):
            rows.append((f"{path.name} line {number}", values))
    return rows


def _json_rows(text: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    data = parse_json(text, str(path))
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise SegTruthError(
            f'{path}: expected a list of objects like {{"case": ..., "image": ..., "segmentation": ...}}.'
        )
    rows = []
    for number, item in enumerate(data, start=1):
        where = f"{path.name} item {number}"
        item = dict(item)
        if isinstance(item.get("image"), list):  # JSON may list channels under "image"
            channels = item.pop("image")
            item.update({f"image_{c:04d}": value for c, value in enumerate(channels)})
        _check_columns(list(item), where)
        rows.append((where, {k: "" if v is None else str(v).strip() for k, v in item.items()}))
    return rows


def _check_columns(fields: list[str], where: str) -> None:
    """``case``, ``segmentation`` and either ``image`` or ``image_0000..`` numbered from 0 without gaps."""
    missing = [name for name in ("case", "segmentation") if name not in fields]
    channels = channel_columns(fields)
    if "image" not in fields and not channels:
        missing.insert(1, "image")
    if missing:
        raise SegTruthError(
            f"{where}: lacks the column(s) {', '.join(missing)} (expected case,image,segmentation or "
            "case,image_0000,image_0001,...,segmentation)."
        )
    if "image" in fields and channels:
        raise SegTruthError(f"{where}: has both an image column and image_NNNN channel columns; use one or the other.")
    numbers = [int(_CHANNEL.fullmatch(name).group(1)) for name in channels]  # type: ignore[union-attr]
    if numbers != list(range(len(numbers))):
        raise SegTruthError(
            f"{where}: channel columns must be image_0000, image_0001, ... without gaps (got {channels})."
        )


def channel_columns(fields: list[str]) -> list[str]:
    """The ``image_NNNN`` columns in channel order."""
    return sorted((f for f in fields if _CHANNEL.fullmatch(f)), key=lambda f: int(f[6:]))


def _entries(rows: list[tuple[str, dict[str, Any]]], folder: Path) -> list[CaseEntry]:
    entries: list[CaseEntry] = []
    seen: dict[str, str] = {}
    channel_count = None
    for where, row in rows:
        case = row.get("case", "")
        if not case:
            raise SegTruthError(f"{where}: has no case id.")
        check_case_id(case, where)
        if case in seen:
            raise SegTruthError(f"{where}: case id {case!r} is used twice (also at {seen[case]}).")
        seen[case] = where
        columns = ["image"] if "image" in row else channel_columns(list(row))
        if channel_count is not None and len(columns) != channel_count:
            raise SegTruthError(
                f"{where}: case {case!r} has {len(columns)} channels, the cases before it {channel_count}."
            )
        channel_count = len(columns)
        images = []
        for column in columns:
            if not row.get(column):
                raise SegTruthError(f"{where}: case {case!r} has no {column}.")
            images.append(_existing(folder, row[column], f"{where}: case {case!r}: {column}"))
        segmentation = row.get("segmentation") or None
        seg_path = _existing(folder, segmentation, f"{where}: case {case!r}: segmentation") if segmentation else None
        entries.append(CaseEntry(case, tuple(images), seg_path, where))
    return entries


def _existing(folder: Path, text: str, where: str) -> Path:
    path = Path(text).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.exists():
        raise SegTruthError(f"{where} {path} not found.")
    return path


def cases_in_folder(folder: str | Path) -> list[CaseEntry]:
    """Pair each ``CASE.seg.nrrd`` with the one image ``CASE.<nrrd|nii.gz|nii|mha>`` beside it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SegTruthError(f"{folder}: folder not found.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    segmentations = {p.name[: -len(SEGMENTATION_SUFFIX)]: p for p in files if full_suffix(p) == SEGMENTATION_SUFFIX}
    images: dict[str, list[Path]] = {}
    for path in files:
        suffix = full_suffix(path)
        if suffix in IMAGE_SUFFIXES:
            images.setdefault(path.name[: -len(suffix)], []).append(path)
    if not segmentations:
        raise SegTruthError(
            f"{folder}: holds no manifest.csv/manifest.json and no CASE.seg.nrrd files to pair with images."
        )
    unpaired = sorted(set(images) - set(segmentations))
    if unpaired:
        raise SegTruthError(
            f"{folder}: images {unpaired} have no CASE.seg.nrrd beside them; list the cases in a manifest.csv."
        )
    entries = []
    for case, segmentation in sorted(segmentations.items()):
        found = images.get(case, [])
        if len(found) != 1:
            what = "no image" if not found else f"{len(found)} images ({', '.join(p.name for p in found)})"
            raise SegTruthError(f"{folder}: {segmentation.name} has {what} named {case}.<nrrd|nii.gz|nii|mha>.")
        check_case_id(case, folder)
        entries.append(CaseEntry(case, (found[0],), segmentation, f"{folder.name}/{segmentation.name}"))
    return entries


def write_manifest(entries: list[CaseEntry], path: str | Path) -> Path:
    """Write a CSV manifest with paths relative to its folder where possible."""
    from ..core.atomic import atomic_write_text

    path = Path(path)
    channels = max((len(e.images) for e in entries), default=1)
    columns = ["image"] if channels == 1 else [f"image_{c:04d}" for c in range(channels)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["case", *columns, "segmentation"])
    base = path.parent.resolve()

    def rel(p: Path | None) -> str:
        if p is None:
            return ""
        try:
            return str(p.resolve().relative_to(base))
        except ValueError:
            return str(p.resolve())

    for entry in entries:
        writer.writerow([entry.case, *(rel(p) for p in entry.images), rel(entry.segmentation)])
    return atomic_write_text(path, out.getvalue())
