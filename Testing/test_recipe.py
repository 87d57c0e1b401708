"""Recipes: validated before anything runs; the same steps as the tool functions."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SegTruthLogic import SegTruthError
from SegTruthLogic.cli import main
from SegTruthLogic.workflow.recipe import Recipe


def write(path, text):
    path.write_text(text)
    return path


def test_recipe_runs_steps_and_writes_every_output(tmp_path, two_boxes):
    recipe = write(
        tmp_path / "r.yaml",
        """
labels:
  - {name: dim, value: 3, color: "#ff0000"}
  - {name: bright, value: 9}
steps:
  - threshold: {segment: dim, low: 50, high: 150}
  - threshold: {segment: bright, low: 150, high: 250, options: {editable_area: outside_all, overwrite: none}}
outputs: [labels.nii.gz, labels.seg.nrrd]
""",
    )
    assert main(["run", str(recipe), str(two_boxes), "-o", str(tmp_path / "out"), "-q"]) == 0
    values = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "labels.nii.gz")))
    assert dict(zip(*np.unique(values, return_counts=True))) == {0: 40 * 50 * 60 - 8000, 3: 2000, 9: 6000}
    assert (tmp_path / "out" / "labels.seg.nrrd").is_file()


def test_json_recipe(tmp_path, two_boxes):
    recipe = write(
        tmp_path / "r.json", '{"steps": [{"threshold": {"segment": "x", "low": 200}}], "outputs": ["x.nrrd"]}'
    )
    assert main(["run", str(recipe), str(two_boxes), "-o", str(tmp_path), "-q"]) == 0
    assert int(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "x.nrrd"))).sum()) == 6000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [{thresold: {segment: x}}]", r"r\.yaml, step 1: unknown recipe step 'thresold'"),
        ("steps: [{threshold: {segment: x, rang: [1, 2]}}]", "unknown parameters \\['rang'\\]"),
        (
            "steps: [{threshold: {segment: x, options: {editable_area: nowhere}}}]",
            "editable_area must be one of .everywhere.",
        ),
        ("steps: {threshold: {}}", "list of steps"),
        ("steps: []\nextra: 1", "unknown recipe keys"),
        ("steps: [threshold]", "write each step as"),
        ("steps: [{threshold: {low: 1}}]", "missing parameters \\['segment'\\]"),
        ("steps: [{threshold: {segment: x}}\n", r"not valid YAML \(line 2, column 1: expected ',' or ']'"),
        (
            "steps: [{threshold: {segment: x, low: two hundred}}]",
            r"step 1 \(threshold\): low must be a number or null, not 'two hundred'",
        ),
        (
            "steps: [{paint: {segment: x, radius_mm: 2, ras: [1, 2, a]}}]",
            r"ras must be a list of numbers or a list of lists of numbers",
        ),
        (
            "steps: [{margin: {segment: x, margin_mm: 1}}, {margin: {segment: 7, margin_mm: 1}}]",
            r"step 2 \(margin\): segment must be text, not 7",
        ),
        (
            "steps: [{keep_largest_island: {segment: x, fully_connected: 'yes'}}]",
            "fully_connected must be true or false",
        ),
        (
            "steps: [{threshold: {segment: x, options: {intensity_range: [1]}}}]",
            r"intensity_range must be a list of 2 values",
        ),
        ("steps: [{threshold: {segment: x, options: {editable: inside}}}]", r"unknown options \['editable'\]"),
        ("steps: [{threshold: {segment: x, options: [1]}}]", "options must be a mapping"),
        ("steps: [{threshold: {segment: x, mode: replace}}]", "mode must be one of 'set', 'add', 'remove'"),
    ],
)
def test_bad_recipes_fail_before_running(tmp_path, text, message):
    with pytest.raises(SegTruthError, match=message) as error:
        Recipe.read(write(tmp_path / "r.yaml", text))
    assert "\n" not in str(error.value)


def test_failing_step_writes_nothing(tmp_path, two_boxes, capsys):
    recipe = write(
        tmp_path / "r.yaml",
        "steps:\n  - threshold: {segment: x, low: 5, high: 1}\noutputs: [a.nii.gz, b.seg.nrrd]\n",
    )
    out = tmp_path / "out"
    assert main(["run", str(recipe), str(two_boxes), "-o", str(out), "-q"]) == 1
    assert "step 1 (threshold)" in capsys.readouterr().err
    assert not out.exists()  # the output folder it would have made is not left behind
