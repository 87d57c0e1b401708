"""SegTruth's public API: what a script, the Slicer Python console and the front ends call.

One import gives every step of a case, from loading to a training dataset::

    from SegTruthLogic.api import export_case, keep_largest_island, open_case, threshold

    case = open_case("ct.nrrd")                         # inside Slicer: into the application's scene
    s, seg, ct = case.session, case.segmentation, case.volume
    threshold(s, seg, ct, "bone", 100, 3071)
    keep_largest_island(s, seg, ct, "bone")
    case.save("bone.nii.gz")                            # on ct.nrrd's exact grid
    export_case(s, ct, seg, "out", "case01")            # or as the panel's Export: QC picture, nnU-Net entry

Every tool, ``segment`` included, takes ``(session, segmentation_node, volume, ...)`` and works on MRML nodes, so a script does what
the GUI does. Model inference (``segment``, ``load_model``) loads torch on first use only.
"""

from __future__ import annotations

from pathlib import Path

from . import inference, training
from .core.errors import Cancelled, SegTruthError
from .core.formats import ExportFormat
from .core.labels import Label, LabelTable
from .core.progress import CancelToken, ProgressCallback
from .dataset.case_export import ExportResult, NnunetTarget, export_case
from .dataset.compare import compare_segmentations
from .dataset.dicom_tree import cases_from_dicom_tree
from .dataset.manifest import CaseEntry, read_cases
from .dataset.monai_datalist import export_monai
from .dataset.nnunet import export_nnunet
from .dataset.report import dataset_report
from .dataset.rtstruct_export import write_rtstruct
from .scene.case import Case
from .scene.dicom_index import index_tree
from .scene.editing import EditOptions
from .scene.export import export, write_segment_masks
from .scene.segments import add_segment, remove_segment
from .scene.session import Session
from .tools.fast_marching import FastMarchingResult, fast_marching, set_marched_volume
from .tools.fill_between import fill_between_slices
from .tools.flood_fill import flood_fill
from .tools.grow import grow_from_seeds
from .tools.hollow import hollow
from .tools.islands import (
    keep_island_at,
    keep_largest_island,
    remove_border_islands,
    remove_island_at,
    remove_small_islands,
    split_islands,
)
from .tools.local_threshold import local_threshold
from .tools.logical import clear, copy, fill, intersect, invert, subtract, union
from .tools.margin import grow, margin, shrink
from .tools.paint import erase, paint
from .tools.scissors import scissors
from .tools.smoothing import joint_smooth, smooth
from .tools.threshold import threshold
from .tools.watershed import watershed
from .workflow.recipe import Recipe


def open_case(
    image: str | Path,
    segmentation: str | Path | None = None,
    labels: LabelTable | str | Path | None = None,
    session: Session | None = None,
    rois: list[str] | None = None,
) -> Case:
    """Load an image (a file or a DICOM series folder) and, if given, its segmentation and label table.

    Args:
        image: NIfTI, NRRD or MHA file, or a folder holding one DICOM series (and RTSTRUCT/SEG files of it).
        segmentation: a ``.seg.nrrd`` or a labelmap on the image's grid (never resampled), or an RT Structure
            Set or DICOM SEG file (rasterised on the image's grid; see docs/dicom.md).
        labels: a label table (or its ``.csv``/``.json`` file) the segments must follow.
        session: where to load; default: the Slicer application's scene inside Slicer, else a new headless one.
        rois: names or globs of the RTSTRUCT/SEG structures to read (default: all).
    """
    return Case.open(image, segmentation, labels, session, rois)


def segment(session, segmentation, volume, model, **options):
    """Segment ``volume`` with ``model`` (a catalog name, a model folder or a loaded model) into ``segmentation``.

    The same ``(session, segmentation, volume, ...)`` as every tool; ``segmentation`` None makes a new node,
    which is returned. The segments get the model's label names, values, colours and terminology, on the
    image's exact voxels. ``options``: ``device`` ("auto", "cpu", "cuda"), ``tta``, ``batch_size``,
    ``progress``, ``cancel``; see ``SegTruthLogic.inference.segment``.
    """
    return inference.segment(session, segmentation, volume, model, **options)


def load_model(name_or_path: str | Path, **options):
    """A model from the catalog or a folder, loaded once and reusable for many ``segment`` calls."""
    return inference.load_model(name_or_path, **options)


def train(dataset: str | Path, output: str | Path, **options):
    """Train a model on labelled cases (an nnU-Net raw folder, a cases folder or a manifest) into the folder ``output``.

    ``options``: ``epochs``, ``minutes``, ``device``, ``seed``, ``init`` (fine-tune), ``dimensions`` (2: axial
    slices), ``sparse`` (only slices holding a label are annotated), ``progress``, ``cancel``; see
    ``SegTruthLogic.training.train``. The folder loads in ``segment``/``load_model`` like any catalog model.
    """
    return training.train(dataset, output, **options)


def bootstrap(dataset: str | Path, output: str | Path, **options):
    """Cases labelled on a few axial slices -> a 2D model -> its predictions -> a 3D model (``output``)."""
    return training.bootstrap(dataset, output, **options)


__all__ = [
    "CancelToken",
    "Cancelled",
    "Case",
    "CaseEntry",
    "EditOptions",
    "ExportFormat",
    "ExportResult",
    "FastMarchingResult",
    "Label",
    "LabelTable",
    "NnunetTarget",
    "ProgressCallback",
    "Recipe",
    "SegTruthError",
    "Session",
    "add_segment",
    "bootstrap",
    "cases_from_dicom_tree",
    "clear",
    "compare_segmentations",
    "copy",
    "dataset_report",
    "erase",
    "export",
    "export_case",
    "export_monai",
    "export_nnunet",
    "fast_marching",
    "fill",
    "fill_between_slices",
    "flood_fill",
    "grow",
    "grow_from_seeds",
    "hollow",
    "index_tree",
    "intersect",
    "invert",
    "joint_smooth",
    "keep_island_at",
    "keep_largest_island",
    "load_model",
    "local_threshold",
    "margin",
    "open_case",
    "paint",
    "read_cases",
    "remove_border_islands",
    "remove_island_at",
    "remove_segment",
    "remove_small_islands",
    "scissors",
    "segment",
    "set_marched_volume",
    "shrink",
    "smooth",
    "split_islands",
    "subtract",
    "threshold",
    "train",
    "union",
    "watershed",
    "write_rtstruct",
    "write_segment_masks",
]
