"""The label table as the panel edits it: rows of text cells, checked as a whole, applied to segments.

Cells are kept as typed (a half-edited table is normal while someone types), and ``table()`` turns them into a
validated ``LabelTable`` or one clear error. Rows remember the segment they came from, so renaming a label in
the table renames its segment instead of adding a new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..core.errors import SegTruthError
from ..core.labels import LabelTable, color_hex, default_color
from ..scene.segments import LABEL_VALUE_TAG, TERMINOLOGY_TAG, add_segment, segment_ids, table_from_segmentation

COLUMNS = ("name", "value", "color", "terminology")
TERMINOLOGY_HELP = "category | type [| modifier], each SCHEME^VALUE^MEANING (e.g. SCT^39607008^Lung)"


@dataclass
class LabelRow:
    """One row: the four visible cells, the anatomic region (kept, not shown) and the segment it names."""

    name: str = ""
    value: str = ""
    color: str = ""
    terminology: str = ""
    region: str = ""
    region_modifier: str = ""
    segment_id: str | None = None

    def cell(self, column: int) -> str:
        return str(getattr(self, COLUMNS[column]))


def _terminology_text(label) -> str:
    entry = label.as_dict()
    return " | ".join(entry[key] for key in ("category", "type", "type_modifier") if key in entry)


def rows_from_table(table: LabelTable, segment_ids_: list[str | None] | None = None) -> list[LabelRow]:
    ids = segment_ids_ or [None] * len(table)
    rows = []
    for label, sid in zip(table, ids):
        entry = label.as_dict()
        rows.append(
            LabelRow(
                label.name,
                str(label.value),
                color_hex(label.color),
                _terminology_text(label),
                entry.get("region", ""),
                entry.get("region_modifier", ""),
                sid,
            )
        )
    return rows


class LabelTableEditor:
    """The rows behind the panel's label table widget."""

    def __init__(self) -> None:
        self.rows: list[LabelRow] = []

    # -- editing ---------------------------------------------------------------------------------------------
    def set_cell(self, row: int, column: int, text: str) -> None:
        setattr(self.rows[row], COLUMNS[column], text.strip())

    def add_row(self) -> int:
        """A new row with the next free value and its default color; returns its index."""
        values = [int(r.value) for r in self.rows if r.value.strip().isdigit()]
        value = max(values, default=0) + 1
        self.rows.append(LabelRow(f"label {value}", str(value), color_hex(default_color(value))))
        return len(self.rows) - 1

    def remove_row(self, row: int) -> None:
        del self.rows[row]

    # -- checking --------------------------------------------------------------------------------------------
    def table(self) -> LabelTable:
        """The rows as a validated label table; a SegTruthError naming the row and the problem otherwise."""
        if not self.rows:
            raise SegTruthError("The label table is empty; add labels or take them from the segments.")
        entries = []
        for number, row in enumerate(self.rows, start=1):
            parts = [p.strip() for p in row.terminology.split("|")] if row.terminology.strip() else []
            if len(parts) not in (0, 2, 3):
                raise SegTruthError(
                    f"Label table row {number}: terminology {row.terminology!r} must be {TERMINOLOGY_HELP}."
                )
            parts += [""] * (3 - len(parts))
            entries.append(
                {
                    "name": row.name,
                    "value": row.value,
                    "color": row.color,
                    "category": parts[0],
                    "type": parts[1],
                    "type_modifier": parts[2],
                    "region": row.region,
                    "region_modifier": row.region_modifier,
                }
            )
        return LabelTable.from_json(json.dumps({"labels": entries}), "label table")

    def problem(self) -> str | None:
        """What is wrong with the table now, or None."""
        try:
            self.table()
        except SegTruthError as error:
            return str(error)
        return None

    # -- loading and saving ----------------------------------------------------------------------------------
    def load_table(self, table: LabelTable) -> None:
        self.rows = rows_from_table(table)

    def load_segments(self, segmentation_node) -> None:
        """Rows from the segments: names, colors, terminology and recorded values (next free value otherwise)."""
        ids: list[str | None] = list(segment_ids(segmentation_node))
        self.rows = rows_from_table(table_from_segmentation(segmentation_node), ids)

    def merge_table(self, table: LabelTable) -> None:
        """Take a model's labels: rows of the same name are replaced, others kept, new ones appended."""
        by_name = {row.name: n for n, row in enumerate(self.rows)}
        for new in rows_from_table(table):
            if new.name in by_name:
                new.segment_id = self.rows[by_name[new.name]].segment_id
                self.rows[by_name[new.name]] = new
            else:
                self.rows.append(new)

    def to_json(self) -> str:
        return json.dumps([asdict(row) for row in self.rows])

    def load_json(self, text: str) -> None:
        """Rows saved by ``to_json`` (in the parameter node); empty text gives no rows."""
        if not text.strip():
            self.rows = []
            return
        try:
            self.rows = [
                LabelRow(**{k: v for k, v in item.items() if k in LabelRow.__annotations__})
                for item in json.loads(text)
            ]
        except (json.JSONDecodeError, TypeError, AttributeError):
            raise SegTruthError("The label table saved in this scene is unreadable; load or rebuild it.") from None

    # -- segments ----------------------------------------------------------------------------------------------
    def apply(self, segmentation_node) -> tuple[int, int, list[str]]:
        """Give each row's segment its name, color, terminology and value, adding missing segments.

        Returns (segments updated, segments added, names of segments the table does not list).
        """
        table = self.table()
        segmentation = segmentation_node.GetSegmentation()
        ids: list[str | None] = []
        for row, label in zip(self.rows, table):
            sid = row.segment_id if row.segment_id and segmentation.GetSegment(row.segment_id) else None
            sid = sid or segmentation.GetSegmentIdBySegmentName(label.name) or None
            ids.append(None if sid in ids else sid)
        for label, sid in zip(table, ids):
            named = segmentation.GetSegmentIdBySegmentName(label.name)
            if named and named != sid and named not in ids:
                raise SegTruthError(
                    f"Another segment is already named {label.name!r}; rename or remove it before applying the table."
                )
        updated = added = 0
        for row, label, sid in zip(self.rows, table, ids):
            if sid is None:
                sid = add_segment(segmentation_node, label)
                added += 1
            else:
                updated += 1
            segment = segmentation.GetSegment(sid)
            segment.SetName(label.name)
            segment.SetColor(*label.color)
            segment.SetTag(TERMINOLOGY_TAG, label.terminology.serialize())
            segment.SetTag(LABEL_VALUE_TAG, str(label.value))
            row.segment_id = sid
        listed = {row.segment_id for row in self.rows}
        others = [segmentation.GetSegment(s).GetName() for s in segment_ids(segmentation_node) if s not in listed]
        return updated, added, others
