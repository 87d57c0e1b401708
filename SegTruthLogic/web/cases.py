"""The cases a web session offers, and where each one is saved.

``segtruth serve CASES`` takes a manifest (``case,image,segmentation`` CSV or JSON, the ``segtruth dataset``
format), a folder (its manifest, else every image in it), or one image file. A case is saved beside its
image as ``CASE.seg.nrrd`` (the manifest's own ``.seg.nrrd`` when it names one), so a served folder is
itself a dataset ``segtruth dataset`` reads, and its labelmap export goes to ``labels/CASE.<ext>`` beside
the image: a subfolder, because an extra image next to the cases would be taken for another case.

A DICOM tree (or one series' folder with its RTSTRUCT or SEG) is read as ``segtruth dataset`` reads it: each
image series that an annotation refers to is a case starting from that annotation (a series without one
is a case starting empty, to be labelled). Its saves go to the
served folder's root (``ROOT/CASE.seg.nrrd``, ``ROOT/labels/CASE.nii.gz``), never among a series' files
elsewhere in the tree, and the tree's reading prefers them afterwards.

One bad case never keeps the others from being served: a file the manifest names but that is missing is
listed with its ``problem`` (read as a batch reads a manifest); a file that is there but unreadable is found
when the case is opened, through SegTruth's checked readers, and reported in one sentence.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.atomic import full_suffix
from ..core.errors import SegTruthError
from ..core.formats import IMAGE_SUFFIXES
from ..core.sample_data import ct_chest_paths
from ..dataset.dicom_tree import cases_from_dicom_tree, is_dicom_tree
from ..dataset.manifest import MANIFEST_NAMES, CaseEntry, check_case_id, list_manifest
from ..scene.session import RESOURCES

SEGMENTATION_SUFFIX = ".seg.nrrd"
LABELS_FOLDER = "labels"
SAMPLE_FOLDER = "segtruth-sample"
SAMPLE_LABELS = RESOURCES / "Labels" / "chest_ct.csv"


@dataclass(frozen=True)
class WebCase:
    """A case as the dataset lists it (``CaseEntry``), with the two files the editor's Save writes for it."""

    entry: CaseEntry
    seg_output: Path
    labelmap_output: Path

    @property
    def case(self) -> str:
        return self.entry.case

    @property
    def image(self) -> Path:
        """The image the editor shows: the first channel of a multi-channel case."""
        return self.entry.images[0]

    @property
    def segmentation(self) -> Path | None:
        return self.entry.segmentation

    @property
    def problem(self) -> str | None:
        """Why the case cannot be opened, known when the list was read (a file its manifest names is missing)."""
        return self.entry.problem

    def start_from(self) -> Path | None:
        """The annotation to open: this app's own save when there is one, else the listed segmentation."""
        if self.seg_output.is_file():
            return self.seg_output
        return self.segmentation


def outputs_for(case: str, image: Path, segmentation: Path | None = None) -> tuple[Path, Path]:
    """``.seg.nrrd`` and labelmap paths of a case: beside its image, the labelmap in ``labels/``."""
    folder = image.parent
    seg = segmentation if segmentation is not None and full_suffix(segmentation) == SEGMENTATION_SUFFIX else None
    labelmap_suffix = ".nii.gz" if full_suffix(image) in (".nii", ".nii.gz") else ".nrrd"
    return seg or folder / f"{case}{SEGMENTATION_SUFFIX}", folder / LABELS_FOLDER / f"{case}{labelmap_suffix}"


def web_case(entry: CaseEntry) -> WebCase:
    """The case with its save paths; its id is checked because it names the saved files."""
    check_case_id(entry.case, entry.where or entry.images[0], "the name of the saved files")
    return WebCase(entry, *outputs_for(entry.case, entry.images[0], entry.segmentation))


def dicom_tree_cases(root: Path) -> list[WebCase]:
    """Each annotated image series of a DICOM tree, saved at the tree's root (see the module's notes)."""
    cases = []
    for entry in cases_from_dicom_tree(root, unannotated=True).entries:
        check_case_id(entry.case, entry.where or entry.images[0], "the name of the saved files")
        seg = root / f"{entry.case}{SEGMENTATION_SUFFIX}"
        cases.append(WebCase(entry, seg, root / LABELS_FOLDER / f"{entry.case}.nii.gz"))
    return cases


def make_case(case: str, image: Path, segmentation: Path | None = None, where: str = "") -> WebCase:
    return web_case(CaseEntry(case, (image,), segmentation, where))


def _image_stem(path: Path) -> str:
    suffix = full_suffix(path)
    return path.name[: -len(suffix)] if suffix else path.name


def images_in_folder(folder: Path) -> list[WebCase]:
    """Every image ``CASE.<nrrd|nii.gz|nii|mha>`` of a folder, with ``CASE.seg.nrrd`` when it is there."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    cases: dict[str, Path] = {}
    for path in files:
        if full_suffix(path) == SEGMENTATION_SUFFIX or full_suffix(path) not in IMAGE_SUFFIXES:
            continue
        stem = _image_stem(path)
        if stem in cases:
            raise SegTruthError(
                f"{folder}: {cases[stem].name} and {path.name} are both case {stem!r}; keep one image per case name."
            )
        cases[stem] = path
    if not cases:
        raise SegTruthError(
            f"{folder}: holds no manifest.csv/manifest.json and no images (.nrrd, .nii.gz, .nii, .mha)."
        )
    out = []
    for stem, image in cases.items():
        seg = folder / f"{stem}{SEGMENTATION_SUFFIX}"
        out.append(make_case(stem, image, seg if seg.is_file() else None, f"{folder}/{image.name}"))
    return out


def read_web_cases(source: str | Path) -> list[WebCase]:
    """Cases from a manifest file, a folder (its manifest, else its images) or a single image file."""
    path = Path(source).expanduser()
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return _from_manifest(path / name)
        if is_dicom_tree(path):
            return dicom_tree_cases(path)
        return images_in_folder(path)
    if not path.exists():
        raise SegTruthError(f"{path}: not found; give a folder of cases, a manifest (.csv/.json) or an image file.")
    if path.suffix.lower() in (".csv", ".json"):
        return _from_manifest(path)
    if full_suffix(path) in IMAGE_SUFFIXES:
        return [make_case(_image_stem(path), path, None)]
    raise SegTruthError(f"{path}: is neither a manifest (.csv/.json), a folder of cases nor an image file.")


def _from_manifest(path: Path) -> list[WebCase]:
    return [web_case(entry) for entry in list_manifest(path)]


def sample_cases(folder: str | Path = SAMPLE_FOLDER) -> list[WebCase]:
    """The sample chest CT copied into ``folder`` (made if absent), so saving never writes into site-packages."""
    folder = Path(folder)
    image, _reference = ct_chest_paths()
    target = folder / "chest.nrrd"
    if not target.is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / ".chest.nrrd.part"
            shutil.copyfile(image, partial)
            partial.replace(target)
        except OSError as error:
            raise SegTruthError(f"{folder}: cannot copy the sample CT there ({error.strerror}).") from None
    return images_in_folder(folder)
