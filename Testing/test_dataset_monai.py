"""MONAI datalists: monai.data.load_decathlon_datalist plus LoadImaged read every exported pair, on one grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dataset_support import LEFT_HANDED, leftovers, run, synthetic_case

from SegTruthLogic import SegTruthError, Session
from SegTruthLogic.dataset.manifest import read_cases
from SegTruthLogic.dataset.monai_datalist import export_monai, split_cases

monai_data = pytest.importorskip("monai.data", reason="the MONAI checks need the monai package")
pytestmark = pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")  # MONAI's optional GPU decoder
monai_transforms = pytest.importorskip("monai.transforms")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, ct_chest):
    folder = tmp_path_factory.mktemp("monai")
    inputs = folder / "in"
    inputs.mkdir()
    rows = [f"chest,{ct_chest[0]},{ct_chest[1]}"]
    for n in range(5):
        geometry = {
            "spacing": (0.9, 0.8, 1.5),
            "origin": (n, 2.0, 3.0),
            "direction": LEFT_HANDED if n % 2 else (1, 0, 0, 0, 1, 0, 0, 0, 1),
        }
        image, labels, _, _ = synthetic_case(inputs, f"case{n}", n, geometry)
        rows.append(f"case{n},{image.name},{labels.name}")
    rows.append(f"unlabelled,{image.name},")
    (inputs / "manifest.csv").write_text("case,image,segmentation\n" + "\n".join(rows) + "\n")
    (inputs / "labels.csv").write_text(
        "name,value\nribs,1\ncervical vertebral column,2\nthoracic vertebral column,3\nlumbar vertebral column,4\n"
        "right lung,5\nleft lung,6\ntissue,7\n"
    )
    datalist = folder / "out" / "chest.json"
    code = run("dataset", "monai", inputs / "manifest.csv", "-o", datalist, "--labels", inputs / "labels.csv",
               "--validation", 0.34, "--folds", 2, "--seed", 7, "-q")  # fmt: skip
    return code, datalist


def test_monai_reads_every_pair_on_one_grid(exported):
    code, datalist = exported
    assert code == 0
    load = monai_transforms.LoadImaged(keys=["image", "label"], image_only=False)
    seen = []
    for key in ("training", "validation"):
        for item in monai_data.load_decathlon_datalist(str(datalist), True, key):
            loaded = load(item)
            assert loaded["image"].shape == loaded["label"].shape, item
            assert np.allclose(loaded["image"].affine, loaded["label"].affine, atol=1e-4), item
            assert set(np.unique(np.asarray(loaded["label"]))) <= set(range(8)), item
            seen.append(item["image"])
    assert len(seen) == 6
    testing = monai_data.load_decathlon_datalist(str(datalist), False, "testing")
    assert [t["image"].endswith("imagesTs/unlabelled.nii.gz") for t in testing] == [True]


def test_split_and_folds(exported):
    _, datalist = exported
    content = json.loads(datalist.read_text())
    training = [item["image"] for item in content["training"]]
    validation = [item["image"] for item in content["validation"]]
    assert len(validation) == 2 and len(training) == 4 and not set(training) & set(validation)
    assert sorted(item["fold"] for item in content["training"]) == [0, 0, 1, 1]
    assert content["labels"]["5"] == "right lung" and content["numTraining"] == 6
    assert content["split"] == {
        "seed": 7,
        "validation_fraction": 0.34,
        "folds": 2,
        "folds_requested": 2,
        "training_cases": 4,
    }
    cases = [f"c{n}" for n in range(10)]
    assert split_cases(cases, 0.2, None, 1) == split_cases(list(reversed(cases)), 0.2, None, 1)  # order-free
    assert split_cases(cases, 0.2, None, 1)[1] != split_cases(cases, 0.2, None, 2)[1]
    assert leftovers(datalist.parent) == []


def test_more_folds_than_training_cases_are_capped_with_a_note(tmp_path, capsys):
    """The README's command on the three sample cases: 1 validation case, 2 training cases, so 2 folds, said so."""
    assert run("dataset", "sample", tmp_path / "cases") == 0
    datalist = tmp_path / "chest.json"
    assert run("dataset", "monai", tmp_path / "cases", "-o", datalist, "--validation", 0.2, "--folds", 5, "-q") == 0
    out = capsys.readouterr().out
    assert "note: 5 folds were asked for but only 2 cases are left for training, so 2 folds were made." in out
    content = json.loads(datalist.read_text())
    assert content["split"]["folds"] == 2 and content["split"]["folds_requested"] == 5
    assert sorted(item["fold"] for item in content["training"]) == [0, 1] and len(content["validation"]) == 1
    assert [len(split_cases(list("abcdef"), 0.0, k)[2]) for k in (3, 6, 9)] == [6, 6, 6]
    assert sorted(set(split_cases(list("abcdef"), 0.0, 9)[2].values())) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(SegTruthError, match="5 folds need at least 2 training cases; there are 1 after"):
        split_cases(["a", "b"], 0.5, 5)
    with pytest.raises(SegTruthError, match="1 folds: cross-validation needs at least 2"):
        split_cases(list("abcdef"), 0.0, 1)
    capsys.readouterr()
    assert run("dataset", "monai", tmp_path / "cases", "-o", tmp_path / "one.json", "--validation", 0.5,
               "--folds", 5, "-q") == 1  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert error == "segtruth: error: 5 folds need at least 2 training cases; there are 1 after the validation split."
    assert not (tmp_path / "one.json").exists() and not (tmp_path / "one").exists()


def test_bad_input_leaves_neither_datalist_nor_folder(tmp_path, ct_chest):
    inputs = tmp_path / "in"
    inputs.mkdir()
    image, labels, _, _ = synthetic_case(inputs, "plain", 0)
    (inputs / "manifest.csv").write_text(
        f"case,image,segmentation\nplain,{image.name},{labels.name}\nchest,{ct_chest[0]},{ct_chest[1]}\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SegTruthError, match=r"Case 'chest' .* here but .* in the cases before it"):
        export_monai(Session.new_headless(), read_cases(inputs / "manifest.csv"), out / "d.json")
    assert list(out.iterdir()) == []
    with pytest.raises(SegTruthError, match="must be at least 0 and below 1"):
        split_cases(["a", "b"], 1.0)
    with pytest.raises(SegTruthError, match=r"a datalist must be a \.json file"):
        export_monai(Session.new_headless(), read_cases(inputs / "manifest.csv"), out / "d.txt")
