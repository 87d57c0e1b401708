"""One grow, three front ends: ``segtruth grow``, a recipe step and the web app's effect give the same voxels.

All three prepare seeds and the editable area with ``tools.grow.grow_inputs``; these tests hold them to it on
the real chest CT, voxel for voxel. "Inside a segment" is Slicer's editable area "inside segment X": the seeds
outside X are ignored (they keep their voxels) and nothing grows outside X.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from isolated import run_cli

pytest.importorskip(
    "trame_slicer", reason="the web front end needs trame-slicer (pip install 'trame-slicer[standalone]')"
)

from SegTruthLogic.scene.case import Case
from SegTruthLogic.scene.editing import EditOptions
from SegTruthLogic.scene.segments import find_segment, remove_segment, segment_ids, segment_mask
from SegTruthLogic.tools.paint import paint
from SegTruthLogic.tools.threshold import threshold
from SegTruthLogic.web.cases import read_web_cases
from SegTruthLogic.web.effects import GrowEffect, Previewer
from SegTruthLogic.web.workspace import Workspace
from SegTruthLogic.workflow.recipe import Step

AIR = (-1100.0, -400.0)
OVERLAP = EditOptions(overwrite="none")  # seeds painted inside the air keep the air under them
STROKES = {
    "right lung": [[63, -15, -140], [51, -15, -80]],
    "left lung": [[-74, -21, -140], [-65, -15, -80]],
    "body": [[0, 40, -140], [0, 30, -80]],
}


def masks(case_or_ws) -> dict[str, np.ndarray]:
    """Every segment's voxels by name, on the CT's grid."""
    node, session, volume = case_or_ws.segmentation, case_or_ws.session, case_or_ws.volume
    segmentation = node.GetSegmentation()
    return {
        segmentation.GetSegment(sid).GetName(): segment_mask(session, node, sid, volume) for sid in segment_ids(node)
    }


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, ct_chest) -> dict[str, Path]:
    """The chest CT with an air segment and a stroke in each lung and in the body (the strokes overlap the
    air), saved twice: with the air (``inside``) and without it (``plain``)."""
    folder = tmp_path_factory.mktemp("grow-paths")
    image = folder / "chest.nrrd"
    shutil.copyfile(ct_chest[0], image)
    case = Case.open(image)
    threshold(case.session, case.segmentation, case.volume, "air", *AIR)
    for name, points in STROKES.items():
        paint(case.session, case.segmentation, case.volume, name, points, 6.0, options=OVERLAP, stroke=True)
    paths = {"image": image}
    for kind in ("inside", "plain"):
        if kind == "plain":
            remove_segment(case.session, case.segmentation, case.volume, "air")
        (folder / kind).mkdir()
        shutil.copyfile(image, folder / kind / "chest.nrrd")
        paths[kind] = case.save(folder / kind / "chest.seg.nrrd")
    return paths


def web_grow(seeds: Path, inside: str | None) -> dict[str, np.ndarray]:
    """The web effect on the case as the server opens it: preview, apply."""
    ws = Workspace()
    ws.open_case(read_web_cases(seeds.parent)[0])
    previewer = Previewer(ws)
    previewer.preview(GrowEffect(inside=find_segment(ws.segmentation, inside) if inside else None))
    previewer.apply()
    return masks(ws)


def recipe_grow(seeds: Path, image: Path, **params) -> dict[str, np.ndarray]:
    case = Case.open(image, seeds)
    Step("grow", params).run(case.session, case.segmentation, case.volume, case.label_table())
    return masks(case)


def test_cli_recipe_and_web_grow_the_same_voxels(seeded, tmp_path):
    out = tmp_path / "grown.seg.nrrd"
    outcome = run_cli(["grow", str(seeded["image"]), "--seeds", str(seeded["plain"]), "-o", str(out), "-q"], 300)
    assert outcome.returncode == 0, outcome.describe()
    cli = masks(Case.open(seeded["image"], out))
    recipe = recipe_grow(seeded["plain"], seeded["image"])
    web = web_grow(seeded["plain"], None)
    assert_same(cli, recipe)
    assert_same(cli, web)
    assert all(cli[name].sum() > 1000 for name in STROKES)


def test_inside_a_segment_means_what_slicer_means_in_a_recipe_and_on_the_web(seeded):
    before = Case.open(seeded["image"], seeded["inside"])
    painted = masks(before)
    recipe = recipe_grow(seeded["inside"], seeded["image"], inside_segment="air")
    web = web_grow(seeded["inside"], "air")
    assert_same(recipe, web)
    air = painted["air"]
    np.testing.assert_array_equal(recipe["air"], air)  # the area itself is not a seed and stays
    for name in STROKES:  # outside the air every segment keeps exactly its painted voxels
        np.testing.assert_array_equal(recipe[name] & ~air, painted[name] & ~air, err_msg=name)
    assert np.count_nonzero(painted["body"] & ~air) > 50  # seeds outside the air: ignored, kept as painted
    for name in ("right lung", "left lung"):  # the lungs grew from their strokes through the air
        assert recipe[name].sum() > 10 * painted[name].sum()
