"""Segmentation tools: each a function on (session, segmentation node, source volume, ...).

``RECIPE_STEPS`` names the recipe steps this package gives (step name -> "module:function"); the recipe
reader collects every feature's list, so a new tool registers its step here, beside its code.
"""

RECIPE_STEPS: dict[str, str] = {
    "threshold": "SegTruthLogic.tools.threshold:threshold",
    "paint": "SegTruthLogic.tools.paint:paint",
    "erase": "SegTruthLogic.tools.paint:erase",
    "grow": "SegTruthLogic.tools.grow:grow_from_seeds",
    "keep_largest_island": "SegTruthLogic.tools.islands:keep_largest_island",
    "keep_island_at": "SegTruthLogic.tools.islands:keep_island_at",
    "remove_island_at": "SegTruthLogic.tools.islands:remove_island_at",
    "remove_small_islands": "SegTruthLogic.tools.islands:remove_small_islands",
    "remove_border_islands": "SegTruthLogic.tools.islands:remove_border_islands",
    "split_islands": "SegTruthLogic.tools.islands:split_islands",
    "fill_between": "SegTruthLogic.tools.fill_between:fill_between_slices",
    "margin": "SegTruthLogic.tools.margin:margin",
    "logical": "SegTruthLogic.tools.logical:logical_operation",
    "remove_segment": "SegTruthLogic.scene.segments:remove_segment",
    "smooth": "SegTruthLogic.tools.smoothing:smooth",
    "joint_smooth": "SegTruthLogic.tools.smoothing:joint_smooth",
    "hollow": "SegTruthLogic.tools.hollow:hollow",
    "watershed": "SegTruthLogic.tools.watershed:watershed",
    "flood_fill": "SegTruthLogic.tools.flood_fill:flood_fill",
    "local_threshold": "SegTruthLogic.tools.local_threshold:local_threshold",
    "fast_marching": "SegTruthLogic.tools.fast_marching:fast_marching",
    "scissors": "SegTruthLogic.tools.scissors:scissors",
}
