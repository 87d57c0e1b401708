"""What SegTruth records on a volume node about the file it came from, so exports land on that file's grid.

Slicer flips a left-handed file on load; the file's own grid, kept as a node attribute, is where exports go back.
"""

from __future__ import annotations

from .geometry import Grid

SOURCE_FILE_ATTRIBUTE = "SegTruth.SourceFile"
SOURCE_GRID_ATTRIBUTE = "SegTruth.SourceGrid"


def source_grid(volume_node) -> Grid:
    """The grid of the file a volume came from (its own grid when it came from DICOM or from memory)."""
    text = volume_node.GetAttribute(SOURCE_GRID_ATTRIBUTE)
    return Grid.from_json(text) if text else Grid.from_node(volume_node)
