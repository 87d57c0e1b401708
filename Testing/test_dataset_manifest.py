"""Manifests: CSV and JSON, relative paths, channels, folders of CASE + CASE.seg.nrrd; bad ones refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from SegTruthLogic import SegTruthError
from SegTruthLogic.dataset.manifest import read_cases, read_manifest, write_manifest


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("a.nii.gz", "a_seg.nii.gz", "b_t1.nrrd", "b_t2.nrrd", "b.seg.nrrd", "c.nrrd"):
        (tmp_path / "data" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "data" / name).write_bytes(b"x")
    return tmp_path


def test_csv_paths_are_relative_to_the_manifest(files):
    manifest = files / "manifest.csv"
    manifest.write_text("case,image,segmentation\na,data/a.nii.gz,data/a_seg.nii.gz\nc,data/c.nrrd,\n")
    a, c = read_manifest(manifest)
    assert a.case == "a" and a.images == (files / "data" / "a.nii.gz",)
    assert a.segmentation == files / "data" / "a_seg.nii.gz" and a.labelled
    assert c.segmentation is None and not c.labelled
    assert a.where == "manifest.csv line 2"


def test_channels_in_csv_and_json(files):
    csv_manifest = files / "m.csv"
    csv_manifest.write_text(
        "case,image_0000,image_0001,segmentation\nb,data/b_t1.nrrd,data/b_t2.nrrd,data/b.seg.nrrd\n"
    )
    (entry,) = read_manifest(csv_manifest)
    assert [p.name for p in entry.images] == ["b_t1.nrrd", "b_t2.nrrd"]
    json_manifest = files / "m.json"
    json_manifest.write_text(
        json.dumps([{"case": "b", "image": ["data/b_t1.nrrd", "data/b_t2.nrrd"], "segmentation": "data/b.seg.nrrd"}])
    )
    assert read_manifest(json_manifest) == [
        entry.__class__(entry.case, entry.images, entry.segmentation, "m.json item 1")
    ]


def test_folder_reads_its_manifest_or_pairs_seg_nrrd(files):
    data = files / "data"
    with pytest.raises(SegTruthError, match=r"images \['a', 'a_seg', 'b_t1', 'b_t2', 'c'\] have no CASE.seg.nrrd"):
        read_cases(data)
    pairs = files / "pairs"
    pairs.mkdir()
    for name in ("one.nrrd", "one.seg.nrrd", "two.nii.gz", "two.seg.nrrd"):
        (pairs / name).write_bytes(b"x")
    entries = read_cases(pairs)
    assert [(e.case, e.images[0].name, e.segmentation.name) for e in entries] == [
        ("one", "one.nrrd", "one.seg.nrrd"),
        ("two", "two.nii.gz", "two.seg.nrrd"),
    ]
    write_manifest(entries[:1], pairs / "manifest.csv")
    assert (pairs / "manifest.csv").read_text() == "case,image,segmentation\none,one.nrrd,one.seg.nrrd\n"
    assert [e.case for e in read_cases(pairs)] == ["one"]  # the manifest wins over pairing


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "case,image,segmentation\na,data/a.nii.gz,\na,data/c.nrrd,\n",
            r"line 3: case id 'a' is used twice \(also at m.csv line 2\)",
        ),
        ("case,image\na,data/a.nii.gz\n", "lacks the column"),
        ("case,image_0000,image_0002,segmentation\n", "without gaps"),
        ("case,image,image_0000,segmentation\n", "both an image column"),
        ("case,image,segmentation\na,data/missing.nii.gz,\n", r"line 2: case 'a': image .*missing.nii.gz not found"),
        ("case,image,segmentation\na/b,data/a.nii.gz,\n", "may only hold letters"),
        ("case,image,segmentation\n", "lists no cases"),
        ("case,image,segmentation\n,data/a.nii.gz,\n", "has no case id"),
    ],
)
def test_bad_manifests(files, text, message):
    manifest = files / "m.csv"
    manifest.write_text(text)
    with pytest.raises(SegTruthError, match=message) as error:
        read_manifest(manifest)
    assert "m.csv" in str(error.value) and "\n" not in str(error.value)


def test_channel_counts_must_agree(files):
    manifest = files / "m.json"
    manifest.write_text(
        json.dumps(
            [
                {"case": "b", "image": ["data/b_t1.nrrd", "data/b_t2.nrrd"], "segmentation": ""},
                {"case": "c", "image": "data/c.nrrd", "segmentation": None},
            ]
        )
    )
    with pytest.raises(SegTruthError, match="item 2: case 'c' has 1 channels, the cases before it 2"):
        read_manifest(manifest)


def test_not_a_manifest(files):
    with pytest.raises(SegTruthError, match="manifest not found"):
        read_manifest(files / "nothing.csv")
    (files / "m.txt").write_text("case,image,segmentation\n")
    with pytest.raises(SegTruthError, match=r"must be \.csv or \.json"):
        read_manifest(files / "m.txt")
    (files / "m.json").write_text('{"case": "a"}')
    with pytest.raises(SegTruthError, match="expected a list of objects"):
        read_manifest(files / "m.json")
