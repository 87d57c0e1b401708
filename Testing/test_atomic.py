"""Atomic writes: one output, several outputs as one transaction, and folders that are only ever SegTruth's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from SegTruthLogic import SegTruthError
from SegTruthLogic.core import atomic
from SegTruthLogic.core.atomic import FOLDER_MARK, Outputs, atomic_folder, atomic_write_text, check_output_folder


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_outputs_appear_together(tmp_path):
    with Outputs() as outputs:
        a, b = outputs.file(tmp_path / "a.txt"), outputs.file(tmp_path / "b.txt")
        a.write_text("A")
        assert not (tmp_path / "a.txt").exists()  # nothing is in place before the block ends
        b.write_text("B")
    assert (tmp_path / "a.txt").read_text() == "A" and (tmp_path / "b.txt").read_text() == "B"
    assert listing(tmp_path) == ["a.txt", "b.txt"]


def test_an_error_publishes_nothing_and_keeps_what_was_there(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(SegTruthError, match="boom"), Outputs() as outputs:
        outputs.file(tmp_path / "a.txt").write_text("new")
        outputs.file(tmp_path / "b.txt").write_text("B")
        raise SegTruthError("boom")
    assert listing(tmp_path) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old"


def test_a_name_taken_while_the_command_ran_is_left_alone(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    with pytest.raises(SegTruthError, match=r"b\.txt: is a folder"), Outputs() as outputs:
        outputs.file(tmp_path / "a.txt").write_text("new a")
        outputs.file(tmp_path / "b.txt").write_text("new b")
        (tmp_path / "b.txt").mkdir()  # a user's folder takes the name after the check
        (tmp_path / "b.txt" / "x").write_text("a user's")
    assert (tmp_path / "a.txt").read_text() == "old a"  # nothing was published
    assert listing(tmp_path) == ["a.txt", "b.txt", "b.txt/x"]


def test_a_failed_publish_puts_back_the_outputs_already_moved(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old a")
    replace = os.replace

    def failing(source, target):
        if Path(target).name == "b.txt":
            raise OSError(28, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", failing)
    full = r"b\.txt: could not be written \(No space left on device\)"
    with pytest.raises(SegTruthError, match=full), Outputs() as outputs:
        outputs.file(tmp_path / "a.txt").write_text("new a")
        outputs.file(tmp_path / "b.txt").write_text("new b")
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert listing(tmp_path) == ["a.txt"]


def test_outputs_are_checked_before_any_work(tmp_path):
    (tmp_path / "exists.nii.gz").write_bytes(b"precious")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(SegTruthError, match=r"o\.txt: the command produced no such output"):  # noqa: SIM117
        with Outputs(overwrite=False, inputs=[tmp_path / "in.nrrd"]) as outputs:
            with pytest.raises(SegTruthError, match="already exists; refusing to overwrite it"):
                outputs.file(tmp_path / "exists.nii.gz")
            with pytest.raises(SegTruthError, match="is also an input of this command"):
                outputs.file(tmp_path / "in.nrrd")
            with pytest.raises(SegTruthError, match=r"a-file is a file, not a folder"):
                outputs.file(tmp_path / "a-file" / "out.nii.gz")
            with pytest.raises(SegTruthError, match="does not exist"):
                outputs.file(tmp_path / "missing" / "out.nii.gz")
            outputs.file(tmp_path / "o.txt")
            with pytest.raises(SegTruthError, match="named twice"):
                outputs.file(tmp_path / "o.txt")
    assert (tmp_path / "exists.nii.gz").read_bytes() == b"precious"
    assert listing(tmp_path) == ["a-file", "exists.nii.gz"]  # no staged leftovers


def test_a_folder_made_for_outputs_goes_when_nothing_is_published(tmp_path):
    with pytest.raises(SegTruthError), Outputs() as outputs:
        outputs.make_folder(tmp_path / "new" / "deeper")
        outputs.file(tmp_path / "new" / "deeper" / "a.txt").write_text("A")
        raise SegTruthError("the image is bad")
    assert listing(tmp_path) == []


def test_a_folder_segtruth_wrote_is_replaced_and_marked(tmp_path):
    target = tmp_path / "dataset"
    for text in ("first", "second"):
        with atomic_folder(target, overwrite=True) as temp:
            (temp / "sub").mkdir()
            (temp / "sub" / "case.txt").write_text(text)
    assert (target / "sub" / "case.txt").read_text() == "second"
    assert listing(target) == [FOLDER_MARK, "sub", "sub/case.txt"]
    assert "sub/case.txt" in (target / FOLDER_MARK).read_text()


def test_a_folder_with_a_users_file_is_never_replaced(tmp_path):
    target = tmp_path / "pictures"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(SegTruthError, match=r"holds files SegTruth did not write \(notes\.txt\)"):
        check_output_folder(target, overwrite=True)
    with pytest.raises(SegTruthError, match="holds files SegTruth did not write"), atomic_folder(target, True) as temp:
        (temp / "a.png").write_bytes(b"png")
    assert listing(target) == ["notes.txt"]


def test_a_users_file_added_to_or_changed_in_a_segtruth_folder_keeps_it(tmp_path):
    target = tmp_path / "dataset"
    with atomic_folder(target) as temp:
        (temp / "case.txt").write_text("labels")
    (target / "extra.txt").write_text("a user's")
    with pytest.raises(SegTruthError, match=r"\(extra\.txt\)"):
        check_output_folder(target, overwrite=True)
    (target / "extra.txt").unlink()
    (target / "case.txt").write_text("corrected by hand")
    with pytest.raises(SegTruthError, match=r"case\.txt changed since SegTruth wrote it"):
        check_output_folder(target, overwrite=True)
    check_output_folder(target / "empty-or-new", overwrite=False)


def test_a_file_where_writes_fail_is_one_sentence(tmp_path):
    if not os.path.isdir("/proc"):
        pytest.skip("needs /proc, a folder where no file can be created")
    with pytest.raises(SegTruthError, match=r"^/proc/out\.txt: could not be written \(.+\)\.$"):
        atomic_write_text("/proc/out.txt", "x")
