"""The segtruth command: exit codes, messages, outputs on the image's exact grid, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from SegTruthLogic.cli import main


def run(*args: str) -> int:
    return main([str(a) for a in args])


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_threshold_writes_label_one_on_the_image_grid(tmp_path, two_boxes):
    out = tmp_path / "out.nii.gz"
    assert run("threshold", two_boxes, "--range", 150, 250, "-o", out) == 0
    written, source = sitk.ReadImage(str(out)), sitk.ReadImage(str(two_boxes))
    assert written.GetSize() == source.GetSize()
    assert np.allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-5)
    assert np.allclose(written.GetSpacing(), source.GetSpacing(), atol=1e-6)
    assert np.allclose(written.GetDirection(), source.GetDirection(), atol=1e-6)
    values = sitk.GetArrayFromImage(written)
    expected = (sitk.GetArrayFromImage(source) >= 150) & (sitk.GetArrayFromImage(source) <= 250)
    assert set(np.unique(values)) == {0, 1}
    assert np.array_equal(values == 1, expected)
    assert int(values.sum()) == 6000


def test_threshold_to_seg_nrrd_is_read_by_slicerio(tmp_path, two_boxes):
    out = tmp_path / "out.seg.nrrd"
    assert run("threshold", two_boxes, "--range", 50, 150, "--name", "box a", "-o", out) == 0
    segmentation = slicerio.read_segmentation(str(out))
    assert [s["name"] for s in segmentation["segments"]] == ["box a"]
    assert segmentation["segments"][0]["labelValue"] == 1
    assert int((segmentation["voxels"] == 1).sum()) == 2000


def test_export_keeps_label_table_values(tmp_path, two_boxes):
    labels = tmp_path / "labels.csv"
    labels.write_text("name,value\nbright,42\n")
    out = tmp_path / "bright.nrrd"
    assert run("threshold", two_boxes, "--range", 200, 200, "--name", "bright", "--labels", labels, "-o", out) == 0
    assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(out))))) == {0, 42}
    again = tmp_path / "again.nii.gz"
    assert run("export", two_boxes, out, "--labels", labels, "-o", again) == 0
    assert int((sitk.GetArrayFromImage(sitk.ReadImage(str(again))) == 42).sum()) == 6000


def test_info_prints_geometry_and_segments(capsys, ct_chest):
    assert run("info", ct_chest[1]) == 0
    text = capsys.readouterr().out
    assert "128 x 128 x 34" in text
    assert "right lung" in text and "left lung" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["threshold", "{img}", "--range", "1", "2", "-o", "{out}/x.txt"], "unknown output extension"),
        (["threshold", "{out}/missing.nii.gz", "--range", "1", "2", "-o", "{out}/x.nii.gz"], "file not found"),
        (["threshold", "{img}", "--range", "5", "1", "-o", "{out}/x.nii.gz"], "low end above"),
        (["export", "{img}", "{out}/nothing.seg.nrrd", "-o", "{out}/x.nii.gz"], "not found"),
    ],
)
def test_bad_input_is_one_clear_error_and_no_output(tmp_path, two_boxes, capsys, args, message):
    outdir = tmp_path / "out"
    outdir.mkdir()
    argv = [a.format(img=two_boxes, out=outdir) for a in args]
    assert run(*argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("segtruth: error:") and message in err
    assert len(err.splitlines()) == 1
    assert files(outdir) == []


def test_no_overwrite_protects_an_existing_annotation(tmp_path, two_boxes, capsys):
    out = tmp_path / "mask.nii.gz"
    out.write_bytes(b"precious")
    assert run("threshold", two_boxes, "--range", 1, 300, "-o", out, "--no-overwrite") == 1
    assert out.read_bytes() == b"precious"
    assert "refusing to overwrite" in capsys.readouterr().err


def test_console_entry_point_exit_codes(tmp_path, two_boxes):
    ok = subprocess.run([sys.executable, "-m", "SegTruthLogic", "info", str(two_boxes)], capture_output=True, text=True)
    assert ok.returncode == 0 and "60 x 50 x 40" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "SegTruthLogic", "info", str(tmp_path / "no.nrrd")], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"segtruth: error: {tmp_path / 'no.nrrd'}: file not found."


def seeds_file(tmp_path, two_boxes, values=(3, 8), shape=(40, 50, 60), spacing=(0.8, 0.9, 1.5)):
    """A seed labelmap on the boxes' grid: value a in box A, value b in box B (k, j, i)."""
    seeds = np.zeros(shape, dtype=np.uint8)
    if values:
        seeds[8:10, 14:16, 18:20] = values[0]
        seeds[26:28, 34:36, 38:40] = values[1]
        seeds[0, 0, 0], seeds[-1, -1, -1] = values  # corners: the region to grow is the whole volume
    image = sitk.GetImageFromArray(seeds)
    reference = sitk.ReadImage(str(two_boxes))
    image.SetOrigin(reference.GetOrigin())
    image.SetSpacing(spacing)
    image.SetDirection(reference.GetDirection())
    path = tmp_path / "seeds.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


def test_grow_keeps_each_seed_value(tmp_path, two_boxes):
    out = tmp_path / "grown.nii.gz"
    assert run("grow", two_boxes, "--seeds", seeds_file(tmp_path, two_boxes, (3, 8)), "-o", out, "-q") == 0
    grown = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    boxes = sitk.GetArrayFromImage(sitk.ReadImage(str(two_boxes)))
    assert set(np.unique(grown)) == {3, 8}
    # Box B (200) is its own region: the cheapest paths from the 8-seed fill it exactly.
    assert np.array_equal(grown[boxes == 200], np.full(6000, 8))
    assert np.array_equal(grown[boxes == 100], np.full(2000, 3))


@pytest.mark.parametrize(
    ("kind", "message"),
    [("empty", "at least two non-empty"), ("one", "at least two non-empty"), ("grid", "not the grid of")],
)
def test_grow_rejects_bad_seed_maps_and_writes_nothing(tmp_path, two_boxes, capsys, kind, message):
    seeds = {
        "empty": lambda: seeds_file(tmp_path, two_boxes, ()),
        "one": lambda: seeds_file(tmp_path, two_boxes, (5, 5)),
        "grid": lambda: seeds_file(tmp_path, two_boxes, (1, 2), spacing=(1.0, 0.9, 1.5)),
    }[kind]()
    out = tmp_path / "out" / "grown.nii.gz"
    out.parent.mkdir()
    assert run("grow", two_boxes, "--seeds", seeds, "-o", out, "-q") == 1
    assert message in capsys.readouterr().err
    assert files(out.parent) == []


def test_islands_and_fill_between_commands(tmp_path, two_boxes):
    labels = np.zeros((40, 50, 60), dtype=np.uint8)
    labels[2:5, 2:5, 2:5] = 1  # 27 voxels
    labels[30:32, 40:42, 50:52] = 1  # 8 voxels
    labels[10, 10, 10] = 1  # 1 voxel
    source = sitk.ReadImage(str(two_boxes))
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(source)
    seg = tmp_path / "islands.nrrd"
    sitk.WriteImage(image, str(seg))
    counts = {}
    for flag in (["--keep-largest"], ["--min-size", "5"]):
        out = tmp_path / f"{flag[0][2:]}.nrrd"
        assert run("islands", two_boxes, seg, *flag, "-o", out) == 0
        counts[flag[0]] = int(sitk.GetArrayFromImage(sitk.ReadImage(str(out))).sum())
    assert counts == {"--keep-largest": 27, "--min-size": 35}
    split = tmp_path / "split.seg.nrrd"
    assert run("islands", two_boxes, seg, "--split", "-o", split) == 0
    assert [s["name"] for s in slicerio.read_segmentation(str(split))["segments"]] == [
        "Label 1",
        "Label 1_2",
        "Label 1_3",
    ]

    drawn = np.zeros((40, 50, 60), dtype=np.uint8)
    for k in (5, 10, 15):  # a 10x10 square drawn on three slices
        drawn[k, 20:30, 20:30] = 1
    image = sitk.GetImageFromArray(drawn)
    image.CopyInformation(source)
    sitk.WriteImage(image, str(tmp_path / "drawn.nii.gz"))
    filled = tmp_path / "filled.nii.gz"
    assert run("fill-between", two_boxes, tmp_path / "drawn.nii.gz", "-o", filled, "-q") == 0
    result = sitk.GetArrayFromImage(sitk.ReadImage(str(filled)))
    assert int(result.sum()) == 11 * 100  # slices 5..15 filled with the square


def test_a_closed_stdout_ends_quietly(ct_chest):
    """`segtruth info ... | head -1`: the reader goes away; no BrokenPipeError traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "SegTruthLogic", "info", "--json", str(ct_chest[1])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # as head does once it has its line
    _, err = process.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert process.returncode == 1


def test_an_unexpected_error_is_one_sentence_and_its_traceback_is_logged(tmp_path, two_boxes, capsys, monkeypatch):
    from SegTruthLogic.tools import threshold

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(threshold, "threshold", broken)
    out = tmp_path / "out.nii.gz"
    assert run("threshold", two_boxes, "--range", 1, 2, "-o", out) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("segtruth: error: SegTruth failed unexpectedly (ZeroDivisionError: division by zero)")
    assert len(err.splitlines()) == 1
    log = Path(err.split("the traceback is in ")[1].rstrip("."))
    assert "Traceback" in log.read_text() and "def broken" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [two_boxes]
    monkeypatch.setenv("SEGTRUTH_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run("threshold", two_boxes, "--range", 1, 2, "-o", out)


def test_argument_errors_exit_one_with_one_line(capsys):
    assert run("threshold", "--range", "a", "b") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("segtruth: error: argument --range: invalid float value: 'a'")
    assert sum(line.startswith("segtruth: error:") for line in lines) == 1
    assert run("--help") == 0
    assert "COMMAND" in capsys.readouterr().out
