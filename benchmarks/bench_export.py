"""Export of a 512x512x300 labelmap: SegTruth beside a bare SimpleITK write and Slicer's own export.

Prints figures (seconds, ratios against the references measured in the same run); asserts nothing.
Run: .venv/bin/python benchmarks/bench_export.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from timing import best

from SegTruthLogic import Session
from SegTruthLogic.core.labels import Label, LabelTable
from SegTruthLogic.scene.export import export
from SegTruthLogic.scene.segments import add_segment, new_segmentation, set_segment_mask
from SegTruthLogic.scene.session import quiet_vtk
from SegTruthLogic.scene.volumes import load_volume


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, nargs=3, default=(512, 512, 300), metavar=("I", "J", "K"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ni, nj, nk = args.size
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        image = sitk.GetImageFromArray(rng.integers(-1000, 1000, size=(nk, nj, ni), dtype=np.int16))
        image.SetSpacing((0.7, 0.7, 1.25))
        image.SetOrigin((-180.0, -170.0, -400.0))
        sitk.WriteImage(image, str(folder / "ct.nrrd"))
        session = Session.new_headless()
        volume = load_volume(session, folder / "ct.nrrd")
        seg = new_segmentation(session, volume)
        k, j, i = np.ogrid[:nk, :nj, :ni]
        table = LabelTable([Label(f"organ {n}", 10 * n, (0.2 * n, 0.5, 0.5)) for n in range(1, 6)])
        labels = np.zeros((nk, nj, ni), np.uint8)
        for n, label in enumerate(table, start=1):
            centre = (nk * n / 6, nj / 2, ni * (n % 3 + 1) / 4)
            ball = (k - centre[0]) ** 2 / 40**2 + (j - centre[1]) ** 2 / 90**2 + (i - centre[2]) ** 2 / 70**2 <= 1
            ball &= labels == 0
            labels[ball] = label.value
            set_segment_mask(session, seg, add_segment(seg, label), ball, volume)
        print(f"labelmap {ni}x{nj}x{nk} = {labels.size / 1e6:.1f} M voxels, 5 labels, best of {args.repeats}")

        for suffix in (".nii.gz", ".nrrd"):
            ours = best(lambda s=suffix: export(session, seg, volume, folder / f"ours{s}", table), args.repeats)

            def bare_sitk(s: str = suffix) -> None:
                out = sitk.GetImageFromArray(labels)
                out.CopyInformation(image)
                sitk.WriteImage(out, str(folder / f"sitk{s}"), useCompression=True)

            bare = best(bare_sitk, args.repeats)

            def slicer_export(s: str = suffix) -> None:
                labelmap = session.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
                ids = vtk.vtkStringArray()
                seg.GetSegmentation().GetSegmentIDs(ids)
                slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(seg, ids, labelmap, volume)
                storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
                storage.SetFileName(str(folder / f"slicer{s}"))
                storage.SetUseCompression(True)
                with quiet_vtk():
                    storage.WriteData(labelmap)
                session.remove(labelmap)

            reference = best(slicer_export, args.repeats)
            same = np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"ours{suffix}"))), labels)
            print(
                f"{suffix:8s} SegTruth export {ours:6.2f} s | bare SimpleITK write {bare:6.2f} s "
                f"(SegTruth/bare {ours / bare:4.2f}x) | Slicer export+write {reference:6.2f} s "
                f"(SegTruth/Slicer {ours / reference:4.2f}x) | voxels equal to the truth: {same}"
            )


if __name__ == "__main__":
    main()
