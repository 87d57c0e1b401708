# ruff: noqa: N815  (setting names are mixedCase like the panel's parameter-node names)
"""SegTruth's own Fast Marching, Watershed, Local threshold and Flood fill in the Slicer panel, for a Slicer
without SegmentEditorExtraEffects (where it is installed the panel shows the extension's effects instead).

Qt-free like the rest of the panel: ``ToolParameters`` declares each control once (type, default, range,
label, the tool it belongs to), the module builds its widgets from it, and ``ExtraToolsController`` does what
each button does on the editor's segmentation, source volume and selected segment, with the editor's masking
settings (``scene.editing.options_from_editor_node``), through the same SegTruthLogic.tools functions the
Python console, recipes, the CLI and the web app run.

Points (where a tool needs clicks): the control points of a markups point list chosen in the section, or,
without one, the crosshair position (Shift + mouse move in a view), as Slicer's own modules take a position.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import Field, dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from ..core import slicer_deps
from ..core.errors import SegTruthError
from ..core.progress import CancelToken, ProgressCallback
from ..scene.editing import EditOptions, options_from_editor_node
from ..scene.segments import find_segment
from ..scene.session import Session
from ..tools.flood_fill import DEFAULT_NEIGHBOURHOOD_MM, DEFAULT_TOLERANCE, flood_fill
from ..tools.watershed import DEFAULT_OBJECT_SCALE_MM, watershed
from .options import EXTRA_EFFECTS

if TYPE_CHECKING:
    from ..tools.fast_marching import FastMarchingResult

# Fast Marching and Local threshold (through grow from seeds) run numba, which Slicer's Python lacks until the
# panel installs it: they are imported when used, so the panel loads without it. Their defaults are the tool
# functions' (Testing/test_module_extra_tools.py keeps them in step).
NEEDS_NUMBA = ("fast_marching", "local_threshold")

Point = Sequence[float]


class LocalThresholdAlgorithm(enum.Enum):
    """How Local threshold cuts the clicked structure out of the range (tools/local_threshold.py)."""

    MASKING = "masking"
    WATERSHED = "watershed"
    GROWCUT = "growcut"

    def label(self) -> str:
        return {"masking": "Masking", "watershed": "Watershed", "growcut": "Grow from seeds"}[self.value]


@dataclass(frozen=True)
class ExtraTool:
    """A tool of the section: ``key`` is its SegTruthLogic function, ``effect`` the ExtraEffects effect it stands in for."""

    key: str
    effect: str
    title: str
    action: str
    needs_points: bool
    help: str


_EFFECT_OF = {function: effect for effect, function in EXTRA_EFFECTS.items()}
EXTRA_TOOLS = (
    ExtraTool(
        "fast_marching",
        _EFFECT_OF["fast_marching"],
        "Fast Marching",
        "March",
        False,
        "Grows the selected segment's painted voxels through similar intensities; then slide the segment volume "
        "(no new march).",
    ),
    ExtraTool(
        "watershed",
        _EFFECT_OF["watershed"],
        "Watershed",
        "Apply watershed",
        False,
        "Floods the image's gradient from the visible segments (at least two), giving each its basin.",
    ),
    ExtraTool(
        "local_threshold",
        _EFFECT_OF["local_threshold"],
        "Local threshold",
        "Apply at the points",
        True,
        "Adds to the selected segment the structure at the points, in the range of values around the first point.",
    ),
    ExtraTool(
        "flood_fill",
        _EFFECT_OF["flood_fill"],
        "Flood fill",
        "Fill at the points",
        True,
        "Adds to the selected segment the voxels connected to each point within the intensity tolerance.",
    ),
)
TOOLS_BY_KEY = {tool.key: tool for tool in EXTRA_TOOLS}


def offered_tools(available: Iterable[str]) -> list[ExtraTool]:
    """The tools the panel offers itself: those whose SegmentEditorExtraEffects effect this Slicer lacks."""
    present = set(available)
    return [tool for tool in EXTRA_TOOLS if tool.effect not in present]


def _setting(
    tool: str, label: str, within: tuple[float, float], decimals: int = 1, step: float = 0.5, live: bool = False
) -> dict:
    """Field metadata: the tool it belongs to, its label, range, shown decimals and step; ``live`` controls
    act as they move (the Fast Marching segment volume) instead of waiting for the tool's button."""
    return {"tool": tool, "label": label, "range": within, "decimals": decimals, "step": step, "live": live}


@dataclass
class ToolParameters:
    """The section's settings; the module builds one widget per field (a slider, or a combo box for an enum)."""

    maxVolumePercent: float = field(
        default=5.0,
        metadata=_setting("fast_marching", "Maximum volume (% of the image)", (0.1, 100.0), 1, 0.5),
    )
    sigmaFactor: float = field(
        default=2.0,
        metadata=_setting("fast_marching", "Intensity spread (seed std. dev.)", (0.1, 10.0), 1, 0.1),
    )
    segmentVolumePercent: float = field(
        default=100.0,
        metadata=_setting("fast_marching", "Segment volume (% of the march)", (0.0, 100.0), 1, 1.0, live=True),
    )
    objectScaleMm: float = field(
        default=DEFAULT_OBJECT_SCALE_MM, metadata=_setting("watershed", "Object scale (mm)", (0.1, 50.0), 1, 0.1)
    )
    minimumDiameterMm: float = field(
        default=3.0,
        metadata=_setting("local_threshold", "Minimum diameter (mm)", (0.1, 50.0), 1, 0.5),
    )
    featureSizeMm: float = field(
        default=3.0,
        metadata=_setting("local_threshold", "Feature size (mm)", (0.1, 50.0), 1, 0.5),
    )
    brushMm: float = field(
        default=5.0,
        metadata=_setting("local_threshold", "Range from values within (mm)", (0.5, 50.0), 1, 0.5),
    )
    algorithm: LocalThresholdAlgorithm = field(
        default=LocalThresholdAlgorithm.MASKING,
        metadata={"tool": "local_threshold", "label": "Refinement"},
    )
    tolerance: float = field(
        default=DEFAULT_TOLERANCE, metadata=_setting("flood_fill", "Intensity tolerance", (0.0, 1000.0), 1, 1.0)
    )
    neighbourhoodMm: float = field(
        default=DEFAULT_NEIGHBOURHOOD_MM,
        metadata=_setting("flood_fill", "Neighbourhood size (mm)", (0.0, 20.0), 1, 0.5),
    )


def tool_fields(tool: str) -> list[Field]:
    """The declared settings of one tool, in declaration order."""
    return [f for f in fields(ToolParameters) if f.metadata["tool"] == tool]


def seed_points(markups=None, crosshair=None) -> list[tuple[float, float, float]]:
    """RAS points for the tools that need clicks: a markups point list's control points, else the crosshair."""
    if markups is not None and markups.GetNumberOfControlPoints() > 0:
        points = []
        for n in range(markups.GetNumberOfControlPoints()):
            ras = [0.0, 0.0, 0.0]
            markups.GetNthControlPointPositionWorld(n, ras)
            points.append((float(ras[0]), float(ras[1]), float(ras[2])))
        return points
    if crosshair is not None:
        ras = crosshair.GetCrosshairRAS()
        return [(float(ras[0]), float(ras[1]), float(ras[2]))]
    return []


@dataclass(frozen=True)
class _MarchTarget:
    segmentation: str
    volume: str
    segment: str
    options: EditOptions


class ExtraToolsController:
    """What the section's buttons do. ``say`` is the panel's status line (``PanelController.say``).

    Fast Marching keeps its last march: ``slide`` rewrites the segment from it with no new march, as long as
    the segmentation, volume, segment and masking are those it marched with.
    """

    def __init__(self, session: Session, say: Callable[[str, bool], None] | None = None) -> None:
        self.session = session
        self.say = say or (lambda text, error=False: None)
        self.march: FastMarchingResult | None = None
        self._target: _MarchTarget | None = None

    def run(
        self,
        tool: str,
        segmentation_node,
        volume,
        segment_id: str | None,
        p: ToolParameters,
        options: EditOptions,
        points: Sequence[Point] = (),
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> bool:
        """The tool's button; False (and one sentence in the status line) when it could not run."""
        try:
            if segmentation_node is None or volume is None:
                raise SegTruthError("Choose the source volume and a segmentation first.")
            if tool == "watershed":
                ids = self.watershed(segmentation_node, volume, p, options, progress, cancel)
                self.say(f"Watershed: {len(ids)} segment(s) set to their basins.", False)
                return True
            if not segment_id:
                raise SegTruthError(f"{TOOLS_BY_KEY[tool].title} works on the selected segment; select one first.")
            name = _segment_name(segmentation_node, segment_id)
            if tool == "fast_marching":
                count = self.fast_marching(segmentation_node, volume, segment_id, p, options, progress, cancel)
                text = f"Fast Marching reached {self.march.voxels} voxels; {name!r} holds the first {count}."  # type: ignore[union-attr]
            elif tool == "local_threshold":
                low, high = self.local_threshold(segmentation_node, volume, segment_id, p, options, points)
                text = f"Local threshold {low:g}..{high:g} added to {name!r} at {len(points)} point(s)."
            elif tool == "flood_fill":
                count = self.flood_fill(segmentation_node, volume, segment_id, p, options, points)
                text = f"Flood fill: {count} voxel(s) filled into {name!r}."
            else:
                raise SegTruthError(f"Unknown tool {tool!r}; use one of {', '.join(TOOLS_BY_KEY)}.")
        except SegTruthError as error:
            self.say(str(error), True)
            return False
        except ImportError as error:  # numba, when the panel's offer to install it was declined
            self.say(f"{TOOLS_BY_KEY[tool].title} needs the Python package {error.name or 'numba'} installed.", True)
            return False
        self.say(text, False)
        return True

    @staticmethod
    def missing_dependencies(tool: str) -> slicer_deps.Missing:
        """What the tool needs installed first (numba for Fast Marching and Local threshold)."""
        return slicer_deps.missing(["grow"]) if tool in NEEDS_NUMBA else slicer_deps.Missing()

    def run_in_editor(self, tool: str, p, editor_node, settings: ToolParameters, points: Sequence[Point] = ()) -> bool:
        """The button in the panel: the panel's volume and segmentation, the editor's selected segment and masking."""
        try:
            options = options_from_editor_node(editor_node)
        except SegTruthError as error:
            self.say(str(error), True)
            return False
        segment_id = editor_node.GetSelectedSegmentID() or None
        return self.run(tool, p.segmentation, p.inputVolume, segment_id, settings, options, points)

    def change_setting(self, settings: ToolParameters, name: str, value, p, editor_node) -> bool:
        """A control moved: keep the value; a live one (the segment volume) rewrites the marched segment at once.

        Returns whether the segmentation changed. Before any march the slider only keeps its value.
        """
        setattr(settings, name, value)
        live = {f.name for f in fields(ToolParameters) if f.metadata.get("live")}
        if name not in live or self.march is None:
            return False
        try:
            options = options_from_editor_node(editor_node)
            count = self.slide(
                p.segmentation, p.inputVolume, editor_node.GetSelectedSegmentID() or None, settings, options
            )
        except SegTruthError as error:
            self.say(str(error), True)
            return False
        self.say(f"Segment volume: the first {count} of the {self.march.voxels} voxels the front reached.", False)
        return True

    def forget(self) -> None:
        """The scene closed: the kept march belongs to nodes that are gone."""
        self.march, self._target = None, None

    # -- the tools ---------------------------------------------------------------------------------------------
    def fast_marching(
        self,
        segmentation_node,
        volume,
        segment_id: str,
        p: ToolParameters,
        options: EditOptions,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """March from the segment's voxels, keep the march, and set the segment to the slider's share of it."""
        from ..tools import fast_marching as fm

        self.march = fm.march(
            self.session,
            segmentation_node,
            volume,
            segment_id,
            p.maxVolumePercent,
            p.sigmaFactor,
            options,
            progress,
            cancel,
        )
        self._target = _MarchTarget(segmentation_node.GetID(), volume.GetID(), segment_id, options)
        return self.slide(segmentation_node, volume, segment_id, p, options)

    def slide(self, segmentation_node, volume, segment_id: str | None, p: ToolParameters, options: EditOptions) -> int:
        """The segment-volume slider: the segment becomes the march's first voxels, without marching again."""
        target = None
        if segmentation_node is not None and volume is not None and segment_id:
            target = _MarchTarget(segmentation_node.GetID(), volume.GetID(), segment_id, options)
        if self.march is None or target != self._target:
            raise SegTruthError("Press March first: the segment volume slides along the last march of this segment.")
        if not math.isfinite(float(p.segmentVolumePercent)):
            raise SegTruthError(f"The segment volume is a percentage, not {p.segmentVolumePercent!r}.")
        fraction = min(max(float(p.segmentVolumePercent) / 100.0, 0.0), 1.0)
        n = self.march.voxels_for_fraction(fraction)
        from ..tools import fast_marching as fm

        return fm.set_marched_volume(self.session, segmentation_node, volume, segment_id, self.march, n, options)

    def watershed(
        self,
        segmentation_node,
        volume,
        p: ToolParameters,
        options: EditOptions,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> list[str]:
        """The visible segments with voxels are the markers; each becomes its basin."""
        return watershed(
            self.session, segmentation_node, volume, None, p.objectScaleMm, options, progress=progress, cancel=cancel
        )

    def local_threshold(
        self, segmentation_node, volume, segment_id: str, p: ToolParameters, options: EditOptions, points
    ) -> tuple[float, float]:
        """The range picked within ``brushMm`` of the first point; the structure at the points is added."""
        from ..tools.local_threshold import local_threshold

        clicks = _checked_points(points, "Local threshold")
        return local_threshold(
            self.session,
            segmentation_node,
            volume,
            _segment_name(segmentation_node, segment_id),
            clicks,
            minimum_diameter_mm=p.minimumDiameterMm,
            feature_size_mm=p.featureSizeMm,
            algorithm=p.algorithm.value,
            brush_mm=p.brushMm,
            options=options,
        )

    def flood_fill(
        self, segmentation_node, volume, segment_id: str, p: ToolParameters, options: EditOptions, points
    ) -> int:
        """One fill per point (each from its own clicked value), added to the segment; returns the voxels added."""
        clicks = _checked_points(points, "Flood fill")
        name = _segment_name(segmentation_node, segment_id)
        total = 0
        for point in clicks:
            total += flood_fill(
                self.session,
                segmentation_node,
                volume,
                name,
                point,
                p.tolerance,
                p.neighbourhoodMm,
                "add",
                options,
            )
        return total


def _segment_name(segmentation_node, segment_id: str) -> str:
    """The tools that may add a segment take its name; the editor selects by ID."""
    return segmentation_node.GetSegmentation().GetSegment(find_segment(segmentation_node, segment_id)).GetName()


def _checked_points(points, tool: str) -> list[tuple[float, float, float]]:
    clicks = [tuple(float(v) for v in point) for point in points]
    if not clicks or any(len(c) != 3 or not all(math.isfinite(v) for v in c) for c in clicks):
        raise SegTruthError(
            f"{tool} needs points: place them in a point list chosen in the section, or set the crosshair "
            "(Shift + mouse move in a view)."
        )
    return np.asarray(clicks, dtype=float).tolist()  # type: ignore[return-value]
