"""A self-contained HTML quality report of a dataset: geometry, label volumes, empty labels, grid mismatches, pictures.

It reads what a trainer will read (an nnU-Net raw dataset folder, a MONAI datalist, or a manifest) and checks
what trainers' own checkers miss: nnU-Net's ``verify_dataset_integrity`` only warns about a label whose origin
is shifted from its image, and passes it. Label files are read on their own grids and compared with their
image's grid; a mismatch is reported with how far it is off, and its picture shows the labels where the file
puts them in space (resampled with nearest neighbour for display only). Pictures are inline PNG (base64), so
the report is one file that can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..core.atomic import Outputs, atomic_folder, atomic_write_text, full_suffix
from ..core.errors import SegTruthError
from ..core.formats import SEGMENTATION_SUFFIX
from ..core.geometry import LPS_TO_RAS, Grid, grid_difference, index_map, move_array
from ..core.labels import Label, LabelTable, color_hex, default_color
from ..core.progress import CancelToken, ProgressCallback, report
from ..scene.dicom_annotations import is_dicom_annotation
from ..scene.session import Session
from ..scene.volumes import check_image_file
from .cases import read_case
from .dicom_tree import cases_from_dicom_tree, is_dicom_tree, with_rois
from .manifest import CaseEntry, read_cases
from .nnunet import read_dataset_json
from .qc import case_picture, overview_picture, png_bytes

THUMBNAIL_SIZE = 128
DETAIL_SIZE = 128
DETAIL_LIMIT = 40  # cases whose per-label picture is embedded (about 0.3 MB each); beyond, use ``pictures``


@dataclass
class ReportCase:
    """What the report says about one case."""

    case: str
    split: str
    images: list[str]
    label: str | None
    geometry: dict = field(default_factory=dict)
    label_grid: str = ""
    voxels: dict[int, int] = field(default_factory=dict)
    volumes_mm3: dict[int, float] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    thumbnail: bytes | None = None
    detail: bytes | None = None


@dataclass
class ReportSource:
    """The cases to report on, where they came from, and the label table when the source has one."""

    title: str
    cases: list[tuple[CaseEntry, str]]  # (entry, split)
    table: LabelTable | None


# -- sources ----------------------------------------------------------------------------------------------------------
def open_source(path: str | Path) -> ReportSource:
    """An nnU-Net raw dataset folder, a MONAI datalist (.json with "training"), or a manifest / case folder."""
    path = Path(path)
    if path.is_dir() and (path / "dataset.json").is_file():
        return _nnunet_source(path)
    if path.is_file() and path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise SegTruthError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}).") from None
        if isinstance(data, dict) and "training" in data:
            return _datalist_source(path, data)
    entries = cases_from_dicom_tree(path).entries if is_dicom_tree(path) else read_cases(path)
    return ReportSource(str(path), [(entry, "training" if entry.labelled else "test") for entry in entries], None)


def _table_beside(folder: Path, names: dict[int, str], source: str) -> LabelTable:
    """The SegTruth label table saved with an export (colors, codes), else one from the trainer's names."""
    saved = folder / "labels.json"
    if saved.is_file():
        table = LabelTable.read(saved)
        if {label.value: label.name for label in table} == names:
            return table
    return LabelTable([Label(name, value, default_color(value)) for value, name in sorted(names.items())], source)


def _nnunet_source(folder: Path) -> ReportSource:
    data = read_dataset_json(folder)
    ending = data["file_ending"]
    channels = len(data["channel_names"])
    names = {int(v): name for name, v in data["labels"].items() if not isinstance(v, list) and int(v) != 0}
    table = _table_beside(folder, names, f"labels of {folder / 'dataset.json'}")
    cases = []
    for split, images_folder in (("training", "imagesTr"), ("test", "imagesTs")):
        if not (folder / images_folder).is_dir():
            continue
        ids = sorted({p.name[: -len(ending) - 5] for p in (folder / images_folder).glob(f"*{ending}")})
        for case in ids:
            images = tuple(folder / images_folder / f"{case}_{c:04d}{ending}" for c in range(channels))
            label = folder / "labelsTr" / f"{case}{ending}" if split == "training" else None
            cases.append((CaseEntry(case, images, label, f"{images_folder}/{case}"), split))
    if not cases:
        raise SegTruthError(f"{folder}: holds no images in imagesTr/ or imagesTs/.")
    return ReportSource(f"{folder.name} (nnU-Net)", cases, table)


def _datalist_source(path: Path, data: dict) -> ReportSource:
    base = path.parent
    names = {int(value): name for value, name in data.get("labels", {}).items() if int(value) != 0}
    table = _table_beside(path.with_name(path.name[: -len(".json")]), names, f"labels of {path}") if names else None
    cases = []
    for split in ("training", "validation", "testing"):
        for number, item in enumerate(data.get(split) or []):
            item = {"image": item} if isinstance(item, str) else item
            images = item["image"] if isinstance(item["image"], list) else [item["image"]]
            first = Path(images[0]).name
            case = first[: -len(full_suffix(first))] if full_suffix(first) else first
            label = base / item["label"] if item.get("label") else None
            entry = CaseEntry(case, tuple(base / image for image in images), label, f"{split} item {number + 1}")
            cases.append((entry, split))
    return ReportSource(f"{path.name} (MONAI datalist)", cases, table)


# -- one case -----------------------------------------------------------------------------------------------------------
def _orientation(grid: Grid) -> str:
    """Anatomical direction each voxel axis runs toward, e.g. ``LPS``; lower case when oblique."""
    letters = []
    for axis in range(3):
        direction = grid.direction_ras[:, axis]
        dominant = int(np.argmax(np.abs(direction)))
        letter = ("LR", "PA", "IS")[dominant][int(direction[dominant] > 0)]
        letters.append(letter if abs(direction[dominant]) > 0.999 else letter.lower())
    return "".join(letters)


def _geometry(grid: Grid, image: np.ndarray) -> dict:
    origin_lps = (LPS_TO_RAS @ grid.ijk_to_ras)[:3, 3]
    finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image
    return {
        "size": list(grid.size),
        "spacing": [round(float(s), 4) for s in grid.spacing],
        "origin_lps": [round(float(o), 2) for o in origin_lps],
        "orientation": _orientation(grid),
        "right_handed": grid.right_handed,
        "type": str(image.dtype),
        "range": [float(finite.min()), float(finite.max())] if finite.size else None,
    }


def _read_labelmap(path: Path) -> tuple[np.ndarray, Grid]:
    image = check_image_file(path)
    values = sitk.GetArrayFromImage(image)
    if values.dtype.kind == "f":
        if not np.array_equal(values, np.round(values)) or (values < 0).any():
            raise SegTruthError(f"{path}: holds non-integer or negative values; a labelmap holds whole label values.")
        values = values.astype(np.uint16)
    elif values.dtype.kind not in "iu" or (values.size and values.min() < 0):
        raise SegTruthError(f"{path}: holds negative or non-integer values; a labelmap holds whole label values.")
    return values.astype(np.uint16 if values.max(initial=0) > 255 else np.uint8), Grid.from_sitk(image)


def _resampled(labels: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Labels where the file puts them in space, on the image's grid (nearest neighbour; for pictures only)."""
    image = source.apply_to_sitk(sitk.GetImageFromArray(labels))
    reference = target.apply_to_sitk(sitk.Image([int(s) for s in target.size], image.GetPixelID()))
    return sitk.GetArrayFromImage(sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0))


def analyse_case(session: Session, entry: CaseEntry, split: str, table: LabelTable | None) -> ReportCase:
    """Geometry, label volumes, empty labels, grid agreement and pictures of one case; problems never raise."""
    result = ReportCase(entry.case, split, [str(p) for p in entry.images], str(entry.segmentation or "") or None)
    try:
        if entry.segmentation is not None and (
            full_suffix(entry.segmentation) == SEGMENTATION_SUFFIX or is_dicom_annotation(entry.segmentation)
        ):
            # Slicer's reader (refusing masks off the image's voxels); an RTSTRUCT is rasterised on the series' grid
            case = read_case(session, entry, table)
            image, grid, labels, own = case.channels[0], case.grid, case.labels, case.grid
            table = table or case.table
            result.label_grid = "same as image"
        else:
            first = check_image_file(entry.images[0])
            image, grid = sitk.GetArrayFromImage(first), Grid.from_sitk(first)
            for path in entry.images[1:]:
                other = Grid.from_sitk(check_image_file(path))
                if not other.same_as(grid):
                    result.problems.append(f"channel {path.name} is on another grid ({grid_difference(other, grid)}).")
            labels = own = None
            if entry.segmentation is not None:
                labels, own = _read_labelmap(entry.segmentation)
    except SegTruthError as error:
        result.problems.append(str(error))
        return result
    result.geometry = _geometry(grid, image)
    shown = labels
    if labels is not None and own is not None and result.label_grid == "":
        if own.same_as(grid):
            result.label_grid = "same as image"
        else:
            try:
                index_map(own, grid)
                shown = move_array(labels, own, grid)
                result.label_grid = "same voxels as image, other axis order"
            except SegTruthError:
                difference = grid_difference(own, grid)
                if own.size == grid.size and not difference.startswith("origin"):
                    difference += f", corners up to {own.offset(grid):.3g} mm apart"
                result.label_grid = f"MISMATCH: differs in {difference}"
                result.problems.append(
                    f"the label's grid is not the image's (differs in {difference}); the pictures show the labels "
                    "where the label file puts them."
                )
                shown = _resampled(labels, own, grid)
    if labels is not None and own is not None:
        counts = np.bincount(labels.ravel())
        voxel_mm3 = float(abs(np.linalg.det(own.ijk_to_ras[:3, :3])))
        result.voxels = {int(v): int(c) for v, c in enumerate(counts) if v and c}
        result.volumes_mm3 = {v: c * voxel_mm3 for v, c in result.voxels.items()}
        if table is not None:
            result.empty = [label.name for label in table if label.value not in result.voxels]
            unknown = sorted(v for v in result.voxels if table.by_value(v) is None)
            if unknown:
                result.problems.append(f"label values {unknown} are not in the label table.")
    result.thumbnail = png_bytes(overview_picture(image, grid, shown, table, THUMBNAIL_SIZE))
    if shown is not None and np.any(shown):
        result.detail = png_bytes(case_picture(image, grid, shown, table, entry.case, DETAIL_SIZE))
    return result


# -- the report -----------------------------------------------------------------------------------------------------------
def check_report_path(output: str | Path) -> Path:
    """The report's file name: an ``.html`` file."""
    if full_suffix(output) not in (".html", ".htm"):
        raise SegTruthError(f"{output}: the report must be an .html file.")
    return Path(output)


def dataset_report(
    session: Session,
    source: str | Path,
    output: str | Path,
    pictures: str | Path | None = None,
    overwrite: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    rois: Sequence[str] | None = None,
) -> list[ReportCase]:
    """Write the HTML report of a dataset (and, with ``pictures``, one QC PNG per case into that folder).

    ``rois`` picks the structures of the cases' RTSTRUCT or SEG files (``--roi``).
    """
    with Outputs(overwrite) as outputs:
        html = outputs.file(check_report_path(output))  # both outputs checked before any case is read
        pictures_folder = outputs.folder(pictures) if pictures is not None else None
        opened = open_source(source)
        if rois:
            entries = with_rois([entry for entry, _ in opened.cases], rois)
            opened.cases = [(entry, split) for entry, (_, split) in zip(entries, opened.cases)]
        cases = []
        for number, (entry, split) in enumerate(opened.cases):
            if cancel is not None:
                cancel.raise_if_cancelled("report")
            report(progress, number / len(opened.cases), f"case {entry.case} ({number + 1}/{len(opened.cases)})")
            cases.append(analyse_case(session, entry, split, opened.table))
        table = opened.table or _table_from_cases(cases)
        embed = len(cases) <= DETAIL_LIMIT
        if pictures_folder is not None:
            with atomic_folder(pictures_folder) as temp:
                for case in cases:
                    if case.detail is not None:
                        (temp / f"{case.case}.png").write_bytes(case.detail)
        atomic_write_text(html, render_html(opened.title, cases, table, embed))
    report(progress, 1.0, f"report of {len(cases)} cases written to {output}")
    return cases


def _table_from_cases(cases: Sequence[ReportCase]) -> LabelTable:
    values = sorted({v for case in cases for v in case.voxels})
    return LabelTable([Label(f"label {v}", v, default_color(v)) for v in values], "label values found")


def _image(data: bytes | None, alt: str) -> str:
    if data is None:
        return ""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _fmt_volume(mm3: float) -> str:
    return f"{mm3 / 1000:,.2f} ml" if mm3 >= 1000 else f"{mm3:,.1f} mm³"


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;font-size:13px;vertical-align:top;text-align:left}
th{background:#f0f0f0}.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}.muted{color:#777}
.swatch{display:inline-block;width:12px;height:12px;border:1px solid #555;margin-right:6px;vertical-align:-1px}
.case{background:#fff;border:1px solid #ddd;margin:14px 0;padding:10px}
.case h3{margin:0 0 6px 0;font-size:15px}img{image-rendering:pixelated;display:block;margin-top:6px}
details summary{cursor:pointer;color:#0b57d0;font-size:13px;margin-top:6px}
"""


def render_html(title: str, cases: Sequence[ReportCase], table: LabelTable, details: bool = True) -> str:
    """The whole report as one HTML page; ``details`` embeds each case's per-label picture too."""
    e = html.escape
    problems = [(case.case, problem) for case in cases for problem in case.problems]
    mismatched = [case.case for case in cases if case.label_grid.startswith("MISMATCH")]
    labelled = [case for case in cases if case.label]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)} - SegTruth report</title>"]
    parts.append(f"<style>{_STYLE}</style></head><body><h1>{e(title)}: dataset report</h1>")
    parts.append(
        f"<p>{len(cases)} cases ({len(labelled)} labelled), {len(table)} labels. "
        + (
            f"<span class='bad'>{len(problems)} problem(s) in {len({c for c, _ in problems})} case(s).</span>"
            if problems
            else "<span class='ok'>No problems found.</span>"
        )
        + "</p>"
    )
    if mismatched:
        parts.append(f"<p class='bad'>Image/label grid mismatch: {e(', '.join(mismatched))}.</p>")
    if problems:
        parts.append("<h2>Problems</h2><table><tr><th>case</th><th>problem</th></tr>")
        parts.extend(f"<tr><td>{e(c)}</td><td class='bad'>{e(p)}</td></tr>" for c, p in problems)
        parts.append("</table>")

    parts.append("<h2>Labels</h2><table><tr><th>value</th><th>name</th><th>cases with it</th>")
    parts.append("<th class='num'>median volume</th><th class='num'>total volume</th><th>empty in</th></tr>")
    for label in table:
        volumes = [case.volumes_mm3[label.value] for case in labelled if label.value in case.volumes_mm3]
        empty_in = [case.case for case in labelled if label.value not in case.voxels and case.geometry]
        parts.append(
            f"<tr><td class='num'>{label.value}</td><td><span class='swatch' style='background:{color_hex(label.color)}'>"
            f"</span>{e(label.name)}</td><td class='num'>{len(volumes)} / {len(labelled)}</td>"
            f"<td class='num'>{_fmt_volume(float(np.median(volumes))) if volumes else '-'}</td>"
            f"<td class='num'>{_fmt_volume(sum(volumes)) if volumes else '-'}</td>"
            f"<td class='{'bad' if len(empty_in) == len(labelled) and labelled else 'muted'}'>"
            f"{e(', '.join(empty_in[:20]) + (' ...' if len(empty_in) > 20 else '')) or '-'}</td></tr>"
        )
    parts.append("</table>")

    parts.append("<h2>Geometry</h2><table><tr><th>case</th><th>split</th><th>size</th><th>spacing (mm)</th>")
    parts.append("<th>orientation</th><th>origin LPS (mm)</th><th>type</th><th>range</th><th>label grid</th></tr>")
    for case in cases:
        g = case.geometry
        if not g:
            parts.append(
                f"<tr><td>{e(case.case)}</td><td>{e(case.split)}</td><td colspan='7' class='bad'>unreadable</td></tr>"
            )
            continue
        orientation = g["orientation"] + ("" if g["right_handed"] else " (left-handed)")
        value_range = f"{g['range'][0]:g} .. {g['range'][1]:g}" if g["range"] else "-"
        grid_class = "bad" if case.label_grid.startswith("MISMATCH") else "ok"
        parts.append(
            f"<tr><td>{e(case.case)}</td><td>{e(case.split)}</td><td>{' x '.join(map(str, g['size']))}</td>"
            f"<td>{' x '.join(f'{s:g}' for s in g['spacing'])}</td><td>{e(orientation)}</td>"
            f"<td>{', '.join(f'{o:g}' for o in g['origin_lps'])}</td><td>{e(g['type'])}</td><td>{value_range}</td>"
            f"<td class='{grid_class}'>{e(case.label_grid or '-')}</td></tr>"
        )
    parts.append("</table>")

    parts.append("<h2>Cases</h2>")
    for case in cases:
        parts.append(
            f"<div class='case' id='{e(case.case)}'><h3>{e(case.case)} <span class='muted'>({e(case.split)})</span></h3>"
        )
        parts.append(
            f"<div class='muted'>{e(', '.join(case.images))}{' | ' + e(case.label) if case.label else ''}</div>"
        )
        for problem in case.problems:
            parts.append(f"<div class='bad'>{e(problem)}</div>")
        if case.voxels or case.empty:
            rows = []
            for value, voxels in sorted(case.voxels.items()):
                label = table.by_value(value)
                name, color = (label.name, label.color) if label else (f"label {value}", default_color(value))
                rows.append(
                    f"<tr><td><span class='swatch' style='background:{color_hex(color)}'></span>{e(name)}</td>"
                    f"<td class='num'>{voxels:,}</td><td class='num'>{_fmt_volume(case.volumes_mm3[value])}</td></tr>"
                )
            rows.extend(
                f"<tr><td class='muted'>{e(name)}</td><td colspan='2' class='muted'>empty</td></tr>"
                for name in case.empty
            )
            parts.append("<table><tr><th>label</th><th class='num'>voxels</th><th class='num'>volume</th></tr>")
            parts.extend(rows)
            parts.append("</table>")
        parts.append(_image(case.thumbnail, f"{case.case}: axial, coronal, sagittal"))
        if case.detail is not None and details:
            parts.append(
                f"<details><summary>each label</summary>{_image(case.detail, f'{case.case}: each label')}</details>"
            )
        parts.append("</div>")
    if not details:
        parts.append(
            f"<p class='muted'>Per-label pictures are embedded for up to {DETAIL_LIMIT} cases; write them all with "
            "<code>segtruth report ... --pictures DIR</code>.</p>"
        )
    parts.append(
        "<p class='muted'>Made by SegTruth. Slices are laid out the radiological way (patient right on the left, "
    )
    parts.append("anterior and superior up); slice numbers are the image file's voxel indices.</p></body></html>\n")
    return "".join(parts)
