"""The web front end without a browser: which cases it serves, where Save writes, what Save refuses, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SegTruthLogic import SegTruthError
from SegTruthLogic.web.cases import read_web_cases, sample_cases
from SegTruthLogic.web.commands import _is_loopback, add_commands, cmd_serve


def touch_image(path: Path) -> Path:
    image = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16))
    sitk.WriteImage(image, str(path))
    return path


def test_a_folder_lists_every_image_and_saves_beside_it(tmp_path):
    touch_image(tmp_path / "b.nii.gz")
    touch_image(tmp_path / "a.nrrd")
    (tmp_path / "a.seg.nrrd").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "labels").mkdir()
    touch_image(tmp_path / "labels" / "a.nrrd")  # a previous labelmap export is not a case
    cases = read_web_cases(tmp_path)
    assert [c.case for c in cases] == ["a", "b"]
    a, b = cases
    assert a.segmentation == tmp_path / "a.seg.nrrd" and b.segmentation is None
    assert a.seg_output == tmp_path / "a.seg.nrrd" and a.labelmap_output == tmp_path / "labels" / "a.nrrd"
    assert b.seg_output == tmp_path / "b.seg.nrrd" and b.labelmap_output == tmp_path / "labels" / "b.nii.gz"
    assert a.start_from() == tmp_path / "a.seg.nrrd" and b.start_from() is None


def test_a_manifest_names_the_cases_and_its_own_segmentation_file(tmp_path):
    (tmp_path / "img").mkdir()
    touch_image(tmp_path / "img" / "ct1.nii.gz")
    touch_image(tmp_path / "img" / "ct2.nii.gz")
    touch_image(tmp_path / "img" / "ct2_labels.nii.gz")
    (tmp_path / "ref.seg.nrrd").write_bytes(b"x")
    (tmp_path / "manifest.csv").write_text(
        "case,image,segmentation\ncase1,img/ct1.nii.gz,ref.seg.nrrd\ncase2,img/ct2.nii.gz,img/ct2_labels.nii.gz\n"
    )
    one, two = read_web_cases(tmp_path)  # a folder with a manifest is read through it
    assert one.seg_output == tmp_path / "ref.seg.nrrd"  # the manifest's own .seg.nrrd is saved back
    assert one.labelmap_output == tmp_path / "img" / "labels" / "case1.nii.gz"
    assert two.segmentation == tmp_path / "img" / "ct2_labels.nii.gz"  # a labelmap is read, never overwritten
    assert two.seg_output == tmp_path / "img" / "case2.seg.nrrd"
    assert two.start_from() == tmp_path / "img" / "ct2_labels.nii.gz"
    (tmp_path / "img" / "case2.seg.nrrd").write_bytes(b"x")
    assert two.start_from() == tmp_path / "img" / "case2.seg.nrrd"  # this app's own save wins once it exists
    data = [{"case": "j1", "image": "img/ct1.nii.gz", "segmentation": ""}]
    (tmp_path / "cases.json").write_text(json.dumps(data))
    assert [c.case for c in read_web_cases(tmp_path / "cases.json")] == ["j1"]


def test_one_image_and_bad_sources(tmp_path):
    image = touch_image(tmp_path / "scan.mha")
    (case,) = read_web_cases(image)
    assert case.case == "scan" and case.labelmap_output == tmp_path / "labels" / "scan.nrrd"
    with pytest.raises(SegTruthError, match="not found"):
        read_web_cases(tmp_path / "missing")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(SegTruthError, match="neither a manifest"):
        read_web_cases(tmp_path / "x.txt")
    touch_image(tmp_path / "scan.nrrd")
    with pytest.raises(SegTruthError, match="both case 'scan'"):
        read_web_cases(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SegTruthError, match="no images"):
        read_web_cases(empty)
    odd = tmp_path / "odd"
    odd.mkdir()
    touch_image(odd / "my scan.nrrd")
    with pytest.raises(SegTruthError, match="may only hold"):
        read_web_cases(odd)


def test_the_sample_is_copied_once(tmp_path):
    (case,) = sample_cases(tmp_path / "sample")
    assert case.image == tmp_path / "sample" / "chest.nrrd" and case.image.is_file()
    stamp = case.image.stat().st_mtime_ns
    sample_cases(tmp_path / "sample")
    assert case.image.stat().st_mtime_ns == stamp


def parser() -> argparse.ArgumentParser:
    """The same ``command(name, help, handler)`` helper as cli.build_parser."""
    main = argparse.ArgumentParser(prog="segtruth")
    sub = main.add_subparsers(dest="command", required=True)

    def command(name, help_text, handler):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add_commands(sub, command)
    return main


def test_serve_defaults_to_this_machine_only():
    args = parser().parse_args(["serve"])
    assert (args.cases, args.host, args.port, args.handler) == (None, "127.0.0.1", 8080, cmd_serve)
    args = parser().parse_args(["serve", "cases/", "--host", "0.0.0.0", "--port", "9000", "--labels", "l.csv"])
    assert (args.cases, args.host, args.port, args.labels) == ("cases/", "0.0.0.0", 9000, "l.csv")
    assert _is_loopback("127.0.0.1") and _is_loopback("localhost") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4") and not _is_loopback("server.lan")


def test_serve_refuses_bad_input_before_starting(tmp_path):
    pytest.importorskip("trame_slicer")
    with pytest.raises(SegTruthError, match="not a port"):
        cmd_serve(parser().parse_args(["serve", str(tmp_path), "--port", "70000"]))
    with pytest.raises(SegTruthError, match="no images"):
        cmd_serve(parser().parse_args(["serve", str(tmp_path)]))


# -- Save, and the app's own wiring, on the real classes (no browser) ----------------------------------------------
@pytest.fixture
def chest_folder(ct_chest, tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    shutil.copyfile(ct_chest[0], folder / "chest.nrrd")
    return folder


def test_save_writes_both_files_on_the_source_grid_and_never_overwrites_others(chest_folder):
    pytest.importorskip("trame_slicer")
    import slicerio

    from SegTruthLogic.core.labels import LabelTable
    from SegTruthLogic.scene.segments import find_segment, set_segment_mask
    from SegTruthLogic.web.cases import SAMPLE_LABELS
    from SegTruthLogic.web.workspace import Workspace

    ws = Workspace(table=LabelTable.read(SAMPLE_LABELS))
    (case,) = read_web_cases(chest_folder)
    (chest_folder / "chest.seg.nrrd").write_bytes(b"someone else's annotation")
    with pytest.raises(SegTruthError):
        ws.open_case(case)  # the foreign file is what this case starts from: it must be a real one
    (chest_folder / "chest.seg.nrrd").unlink()
    ws.open_case(case)
    values = sitk.GetArrayFromImage(sitk.ReadImage(str(case.image)))
    lungs = values < -400
    with ws.record():
        set_segment_mask(ws.session, ws.segmentation, find_segment(ws.segmentation, "left lung"), lungs, ws.volume)
    written = ws.save()
    assert written == [case.seg_output, case.labelmap_output]
    labelmap = sitk.ReadImage(str(case.labelmap_output))
    source = sitk.ReadImage(str(case.image))
    assert labelmap.GetSize() == source.GetSize()
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):  # the same grid, to the last bits NRRD keeps
        np.testing.assert_allclose(getattr(labelmap, get)(), getattr(source, get)(), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labelmap), np.where(lungs, 2, 0))
    seg = slicerio.read_segmentation(str(case.seg_output))
    assert [(s["name"], s["labelValue"]) for s in seg["segments"]] == [("right lung", 1), ("left lung", 2), ("bone", 3)]
    ws.save()  # its own file: replaced
    again = Workspace(table=LabelTable.read(SAMPLE_LABELS))  # a restarted server opens what it saved ...
    again.open_case(case)
    again.save()  # ... and may replace both files again
    ws.open_case(case)

    case.labelmap_output.write_bytes(b"changed by someone else")
    before = case.seg_output.read_bytes()
    with pytest.raises(SegTruthError, match="refusing to overwrite"):
        ws.save()
    assert case.seg_output.read_bytes() == before  # both or neither
    case.labelmap_output.unlink()

    ws.add_label("overlap")  # overlapping segments cannot share one labelmap: nothing is written
    with ws.record():
        set_segment_mask(ws.session, ws.segmentation, find_segment(ws.segmentation, "overlap"), lungs, ws.volume)
    with pytest.raises(SegTruthError, match="overlap"):
        ws.save()
    assert not case.labelmap_output.exists() and case.seg_output.read_bytes() == before
    assert [p.name for p in chest_folder.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_the_app_runs_a_whole_annotation_without_a_browser(chest_folder, monkeypatch):
    """The server's own methods, called as the browser's buttons call them."""
    pytest.importorskip("trame_slicer")
    monkeypatch.setenv("TRAME_ARGS", "")
    from trame.app import get_server

    from SegTruthLogic.core.labels import LabelTable
    from SegTruthLogic.web.app import SegTruthWebApp
    from SegTruthLogic.web.cases import SAMPLE_LABELS

    shutil.copyfile(chest_folder / "chest.nrrd", chest_folder / "copy.nrrd")
    app = SegTruthWebApp(read_web_cases(chest_folder), LabelTable.read(SAMPLE_LABELS), server=get_server("web-test"))
    state = app.state
    assert [c["id"] for c in state.st_cases] == ["chest", "copy"]
    assert state.st_case == "chest" and [r["name"] for r in state.st_rows] == ["right lung", "left lung", "bone"]
    state.st_new_name = "air"
    app.add_segment()
    assert [r["key"] for r in state.st_rows][-1] == "air" and state.st_selected == state.st_rows[-1]["segment_id"]
    app.set_tool("threshold")
    state.st_thr_low, state.st_thr_high = "", "-400"
    asyncio.run(app.preview())
    assert state.st_error and state.st_status == "Low must be a number, not ''."
    state.st_thr_low, state.st_thr_high = "-1100", "-400"  # text fields hand numbers over as text
    asyncio.run(app.preview())
    assert state.st_preview and not state.st_error
    asyncio.run(app.apply())
    assert state.st_rows[-1]["voxels"] == 263976 and state.st_can_undo
    app.undo()
    assert state.st_rows[-1]["voxels"] == 0
    app.redo()
    app.set_tool("grow")
    asyncio.run(app.preview())  # air is the only segment with voxels: one seed label is not enough
    assert state.st_error and "two" in state.st_status
    app.set_tool("paint")
    # SegTruth's brush (strokes drawn in the page, applied in order): trame-slicer's own paint effect stays off.
    assert state.st_tool == "paint" and app.ws.editor.active_effect_name.endswith("SegmentationEffectNoTool")
    app.set_tool("islands")
    assert app.ws.editor.active_effect_name.endswith("SegmentationEffectNoTool")
    app.delete_segment(state.st_rows[-1]["segment_id"])
    assert [r["name"] for r in state.st_rows] == ["right lung", "left lung", "bone"]
    app.save()
    assert not state.st_error and state.st_saved == [
        str(chest_folder / "chest.seg.nrrd"),
        str(chest_folder / "labels" / "chest.nrrd"),
    ]
    app.set_tool("threshold")
    asyncio.run(app.preview())
    assert state.st_preview
    app.open_case("copy")  # another case: a fresh scene, no preview, no undo history
    assert state.st_case == "copy" and not state.st_preview and not app.previewer.active
    assert [r["voxels"] for r in state.st_rows] == [0, 0, 0] and not state.st_can_undo
    state.st_busy = True
    app.open_case("chest")
    assert state.st_case == "copy" and "Wait for the running tool" in state.st_status
    state.st_busy = False
    app.open_case("chest")
    assert state.st_case_info == "from chest.seg.nrrd"  # what was saved above
    with pytest.raises(SegTruthError, match="No cases"):
        SegTruthWebApp([], server=get_server("web-test-empty"))


# -- one bad case among good ones: one sentence, and the server serves the others ------------------------------
BAD_KINDS = {
    # kind: what the middle case's message must say (the checked reader's sentence)
    "truncated-image": r"b\.nii\.gz: is truncated",
    "corrupt-image": r"b\.nrrd: is truncated or corrupt \(the compressed data fails its check\)\.",
    "damaged-seg-nrrd": r"b\.seg\.nrrd: is truncated",
    "labelmap-wrong-grid": r"b_labels\.nrrd: the labelmap's grid .* is not the grid of 'b'",
    "2d-image": r"b\.nrrd: is a 2D image \(14x12\); SegTruth needs one 3D volume\.",
    "missing-file": r"Case 'b' \(manifest\.csv line 3\): image .*gone/b\.nrrd not found\.",
}
SHAPE = (10, 12, 14)


def box_image(path: Path, value: int, origin: float = 0.0) -> np.ndarray:
    """A small int16 volume with a box of ``value`` (the voxels the tests label), compressed."""
    array = np.zeros(SHAPE, np.int16)
    array[2:7, 3:9, 4 : 6 + value % 5] = value
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 1.5))
    image.SetOrigin((origin, 2.0, -5.0))
    sitk.WriteImage(image, str(path), True)
    return array


def bad_middle_case(folder: Path, kind: str, reference_seg: Path) -> str:
    """Write case b of ``kind`` into ``folder``; return its manifest row."""
    if kind == "truncated-image":
        box_image(folder / "b.nii.gz", 70)
        data = (folder / "b.nii.gz").read_bytes()
        (folder / "b.nii.gz").write_bytes(data[: len(data) * 6 // 10])
        return "b,b.nii.gz,"
    if kind == "corrupt-image":
        box_image(folder / "b.nrrd", 70)
        data = bytearray((folder / "b.nrrd").read_bytes())
        start = data.index(b"\n\n") + 2
        data[start + 20 : start + 40] = b"x" * 20
        (folder / "b.nrrd").write_bytes(bytes(data))
        return "b,b.nrrd,"
    if kind == "damaged-seg-nrrd":
        box_image(folder / "b.nrrd", 70)
        data = reference_seg.read_bytes()
        start = data.index(b"\n\n") + 2
        (folder / "b.seg.nrrd").write_bytes(data[: start + (len(data) - start) // 2])  # aborts Slicer's reader
        return "b,b.nrrd,b.seg.nrrd"
    if kind == "labelmap-wrong-grid":
        box_image(folder / "b.nrrd", 70)
        box_image(folder / "b_labels.nrrd", 1, origin=5.0)
        return "b,b.nrrd,b_labels.nrrd"
    if kind == "2d-image":
        sitk.WriteImage(sitk.GetImageFromArray(np.zeros(SHAPE[1:], np.int16)), str(folder / "b.nrrd"))
        return "b,b.nrrd,"
    assert kind == "missing-file"
    return "b,gone/b.nrrd,"


def label_boxes(ws, array: np.ndarray) -> None:
    """Put the box into segment 'bone' (value 3 in the sample table) as one undoable edit."""
    from SegTruthLogic.scene.segments import find_segment, set_segment_mask

    with ws.record():
        set_segment_mask(ws.session, ws.segmentation, find_segment(ws.segmentation, "bone"), array > 0, ws.volume)


def seg_content(data: bytes, folder: Path) -> tuple[list, bytes]:
    """A .seg.nrrd's segments (name, value, layer) and voxels, as slicerio reads them."""
    import slicerio

    path = folder / "read.seg.nrrd"
    path.write_bytes(data)
    seg = slicerio.read_segmentation(str(path))
    return [(s["name"], s["labelValue"], s["layer"]) for s in seg["segments"]], seg["voxels"].tobytes()


@pytest.fixture(scope="module")
def clean_saves(tmp_path_factory) -> dict[str, bytes]:
    """Cases a and c saved by a server that never met a bad file: the bytes every save must match."""
    pytest.importorskip("trame_slicer")
    from SegTruthLogic.core.labels import LabelTable
    from SegTruthLogic.web.cases import SAMPLE_LABELS
    from SegTruthLogic.web.workspace import Workspace

    folder = tmp_path_factory.mktemp("clean")
    arrays = {"a": box_image(folder / "a.nrrd", 40), "c": box_image(folder / "c.nrrd", 90)}
    (folder / "manifest.csv").write_text("case,image,segmentation\na,a.nrrd,\nc,c.nrrd,\n")
    ws = Workspace(table=LabelTable.read(SAMPLE_LABELS))
    saved = {}
    for case in read_web_cases(folder):
        ws.open_case(case)
        label_boxes(ws, arrays[case.case])
        for path in ws.save():
            saved[str(path.relative_to(folder))] = path.read_bytes()
    return saved


@pytest.mark.parametrize("kind", list(BAD_KINDS))
def test_a_bad_case_shows_one_sentence_and_the_others_open_edit_and_save(
    tmp_path, ct_chest, clean_saves, kind, monkeypatch
):
    """Three cases, the middle one bad: the list is served, b says what is wrong, a and c save exact files."""
    pytest.importorskip("trame_slicer")
    monkeypatch.setenv("TRAME_ARGS", "")
    from trame.app import get_server

    from SegTruthLogic.core.labels import LabelTable
    from SegTruthLogic.web.app import SegTruthWebApp
    from SegTruthLogic.web.cases import SAMPLE_LABELS

    folder = tmp_path / "cases"
    folder.mkdir()
    arrays = {"a": box_image(folder / "a.nrrd", 40), "c": box_image(folder / "c.nrrd", 90)}
    row = bad_middle_case(folder, kind, ct_chest[1])
    (folder / "manifest.csv").write_text(f"case,image,segmentation\na,a.nrrd,\n{row}\nc,c.nrrd,\n")
    cases = read_web_cases(folder)  # the list is built whatever the files hold
    assert [case.case for case in cases] == ["a", "b", "c"]
    app = SegTruthWebApp(cases, LabelTable.read(SAMPLE_LABELS), server=get_server(f"web-bad-{kind}"))
    state, ws = app.state, app.ws
    listed = {entry["id"]: entry["problem"] for entry in state.st_cases}
    assert listed["a"] == listed["c"] == ""
    if kind == "missing-file":  # known from the list: said in it, and the open case stays open
        assert re.search(BAD_KINDS[kind], listed["b"])
    else:
        assert listed["b"] == ""  # found when the case is opened
    assert state.st_case == "a" and not state.st_error
    label_boxes(ws, arrays["a"])

    app.open_case("b")
    assert state.st_error and re.search(BAD_KINDS[kind], state.st_status), state.st_status
    message = state.st_status  # one sentence naming the file (or the case)
    assert message.startswith((str(folder), "Case 'b'")) and message.endswith(".") and "\n" not in message
    if kind == "missing-file":
        assert state.st_case == "a" and ws.case is not None and ws.case.case == "a"
    else:
        assert state.st_case == "" and state.st_rows == [] and ws.case is None
        assert ws.session.scene.GetNodesByClass("vtkMRMLScalarVolumeNode").GetNumberOfItems() == 0
        app.save()
        assert state.st_error and state.st_status == "Open a case first."
        app.open_case("a")
        label_boxes(ws, arrays["a"])
    app.save()
    assert not state.st_error, state.st_status
    app.open_case("c")
    assert state.st_case == "c" and not state.st_error
    label_boxes(ws, arrays["c"])
    app.save()
    assert not state.st_error, state.st_status
    for name in ("a", "c"):
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labels" / f"{name}.nrrd"))),
            np.where(arrays[name] > 0, 3, 0),
        )
    for relative, data in clean_saves.items():  # what a server that never met a bad file saves
        if relative.endswith(".seg.nrrd"):  # segment IDs are random: the same segments, values and voxels
            assert seg_content((folder / relative).read_bytes(), tmp_path) == seg_content(data, tmp_path), relative
        else:
            assert (folder / relative).read_bytes() == data, relative  # byte for byte
    assert sorted(p.name for p in (folder / "labels").iterdir()) == ["a.nrrd", "c.nrrd"]  # nothing saved for b
