"""The demo: rebuild lungs and bone on the sample chest CT and score them against its reference.

The steps are the recipe ``Resources/Recipes/chest_ct_demo.yaml``: what a person does in Slicer's Segment
Editor (threshold the air, keep the island under a click in the lung, paint a stroke in each lung and a
few background seeds, grow from seeds inside the air to split the lungs, threshold bone and remove small
islands), with RAS points standing in for the clicks.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..core.atomic import Outputs
from ..core.metrics import dice
from ..core.progress import ProgressCallback
from ..core.sample_data import ct_chest_paths
from ..scene.case import Case
from ..scene.segmentation_io import load_segmentation
from ..scene.segments import find_segment, segment_mask
from ..scene.session import RESOURCES
from .recipe import Recipe

RECIPE = RESOURCES / "Recipes" / "chest_ct_demo.yaml"
REFERENCE_BONE = ["ribs", "cervical vertebral column", "thoracic vertebral column", "lumbar vertebral column"]


def score(case: Case, reference_path: Path) -> dict[str, float]:
    """Dice of each rebuilt structure against slicerio's reference segmentation."""
    s, ct = case.session, case.volume
    reference = load_segmentation(s, reference_path, ct)

    def mask(node, names: list[str]):
        result = None
        for name in names:
            part = segment_mask(s, node, find_segment(node, name), ct)
            result = part if result is None else result | part
        return result

    ours = case.segmentation
    scores = {lung: dice(mask(ours, [lung]), mask(reference, [lung])) for lung in ("right lung", "left lung")}
    scores["bone"] = dice(mask(ours, ["bone"]), mask(reference, REFERENCE_BONE))
    s.remove(reference)
    return scores


def run_demo(outdir: Path, progress: ProgressCallback | None = None) -> dict[str, float]:
    """Run the demo, write its outputs into ``outdir`` and print what it did."""
    image, reference = ct_chest_paths()
    start = time.perf_counter()
    recipe = Recipe.read(RECIPE)
    case = Case.open(image, table=recipe.table)
    print(f"loaded {image.name}: {'x'.join(map(str, case.volume.GetImageData().GetDimensions()))} voxels")
    recipe.run(case.session, case.segmentation, case.volume, progress)
    with Outputs() as outputs:
        outputs.make_folder(outdir)
        for staged in [outputs.file(outdir / name) for name in recipe.outputs]:
            case.save(staged)
    for target in outputs.targets:
        print(f"wrote {target}")
    scores = score(case, reference)
    print(f"Dice against {reference.name} (slicerio's reference):")
    for name, value in scores.items():
        print(f"  {name:10s} {value:.3f}")
    print(f"took {time.perf_counter() - start:.1f} s")
    return scores
