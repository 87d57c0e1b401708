"""Points drawn in a slice view, as the browser sends them, turned into RAS on the plane the person saw.

The browser sends the points as fractions of the view (y down) together with the view geometry it showed when
the drawing started (Slicer's XY-to-RAS matrix and the view size in pixels). RAS is computed from that
geometry, not from the view's geometry when the message arrives, so a click or an outline lands on the slice
the person saw even when the slice moved meanwhile. The brush's strokes, the tools' clicks and the scissors'
outlines are all read this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import SegTruthError

MAX_POINTS = 2000  # a trace longer than this is cut (a person's stroke or outline has tens to hundreds)


@dataclass(frozen=True)
class ViewTrace:
    """Points drawn in one slice view."""

    points: tuple[tuple[float, float], ...]  # (x, y) as fractions of the view, y down (the browser's)
    xy_to_ras: np.ndarray  # 4x4: the slice view's XY (pixels, y up) to RAS when the points were drawn
    size: tuple[int, int]  # the view's render size in pixels (width, height)

    @staticmethod
    def read(message: dict) -> tuple[tuple[tuple[float, float], ...], np.ndarray, tuple[int, int]]:
        """The points, matrix and size of a message; one sentence for anything malformed."""
        try:
            points = tuple((float(x), float(y)) for x, y in message["points"][:MAX_POINTS])
            matrix = np.array([float(v) for v in message["xy_to_ras"]], float).reshape(4, 4)
            size = (int(message["width"]), int(message["height"]))
        except (KeyError, TypeError, ValueError):
            raise SegTruthError("The browser sent points the server cannot read; reload the page.") from None
        if not points:
            raise SegTruthError("Nothing was drawn: no points.")
        if not np.all(np.isfinite(matrix)) or min(size) < 1 or not all(np.isfinite(points).ravel()):
            raise SegTruthError("The view geometry the browser sent is out of range; reload the page.")
        return points, matrix, size

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> ViewTrace:
        return cls(*cls.read(message))

    def ras_points(self) -> np.ndarray:
        """The points in RAS (N x 3), on the slice plane they were drawn on."""
        xy = np.array(self.points, float)
        pixels = np.column_stack(
            [xy[:, 0] * self.size[0], (1.0 - xy[:, 1]) * self.size[1], np.zeros(len(xy)), np.ones(len(xy))]
        )
        return (pixels @ self.xy_to_ras.T)[:, :3]

    def normal(self) -> np.ndarray:
        """The unit normal of the slice plane."""
        column = self.xy_to_ras[:3, 2]
        length = float(np.linalg.norm(column))
        if length == 0:
            in_plane = np.cross(self.xy_to_ras[:3, 0], self.xy_to_ras[:3, 1])
            return in_plane / np.linalg.norm(in_plane)
        return column / length
