"""Label tables: JSON/CSV round trips, validation, tables built from segments."""

from __future__ import annotations

import pytest

from SegTruthLogic import SegTruthError
from SegTruthLogic.core.labels import Label, LabelTable
from SegTruthLogic.core.terminology import Code, Terminology
from SegTruthLogic.scene.segments import add_segment, new_segmentation, table_from_segmentation
from SegTruthLogic.scene.volumes import load_volume

CSV = """name,value,color,category,type,type_modifier
right lung,5,#16c547,SCT^123037004^Anatomical Structure,SCT^39607008^Lung,SCT^24028007^Right
bone,2,#f1d691,SCT^85756007^Tissue,SCT^272673000^Bone,
"""


def test_csv_and_json_round_trip(tmp_path):
    table = LabelTable.from_csv(CSV)
    assert [(label.name, label.value) for label in table] == [("right lung", 5), ("bone", 2)]
    lung = table.by_name("right lung")
    assert lung.terminology.type == Code("SCT", "39607008", "Lung")
    assert lung.terminology.type_modifier == Code("SCT", "24028007", "Right")
    for name in ("t.json", "t.csv"):
        table.write(tmp_path / name)
        assert LabelTable.read(tmp_path / name) == table


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,value\na,1\nb,1\n", "share the value 1"),
        ("name,value\na,1\na,2\n", "used twice"),
        ("name,value\na,0\n", "background"),
        ("name,value\na,x\n", "no integer value"),
        ("name,value,color\na,1,#12\n", "not #rrggbb"),
        ("name,value,category\na,1,SCT^1\n", r"SCHEME\^VALUE\^MEANING"),
        ("label,number\na,1\n", "columns name,value"),
    ],
)
def test_bad_tables_are_clear_errors(text, message):
    with pytest.raises(SegTruthError, match=message):
        LabelTable.from_csv(text)


def test_unreadable_table_files(tmp_path):
    with pytest.raises(SegTruthError, match="not found"):
        LabelTable.read(tmp_path / "missing.csv")
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(SegTruthError, match="not valid JSON"):
        LabelTable.read(tmp_path / "t.json")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(SegTruthError, match=r"\.json or \.csv"):
        LabelTable.read(tmp_path / "t.txt")


def test_terminology_serialization_round_trip():
    terminology = Terminology(
        Code("SCT", "123037004", "Anatomical Structure"),
        Code("SCT", "39607008", "Lung"),
        Code("SCT", "7771000", "Left"),
    )
    assert Terminology.deserialize(terminology.serialize()) == terminology
    assert Terminology.deserialize("garbage") is None


def test_table_from_segments_uses_recorded_values_not_order(session, two_boxes):
    volume = load_volume(session, two_boxes)
    seg = new_segmentation(session, volume)
    add_segment(seg, Label("liver", 7, (1.0, 0.0, 0.0)))
    add_segment(seg, "untagged")
    add_segment(seg, Label("kidney", 3, (0.0, 1.0, 0.0)))
    table = table_from_segmentation(seg)
    values = {label.name: label.value for label in table}
    assert values["liver"] == 7
    assert values["kidney"] == 3
    assert values["untagged"] not in (3, 7)
