"""The label table: the one place label values come from (never from segment order).

A table is a list of labels (name, value, color, DICOM terminology). Value 0 is background and never a
label; names and values are unique. Tables are read from and written to JSON or CSV, and built from a
segmentation's segments when none is given.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SegTruthError
from .terminology import Code, Terminology
from .textfile import parse_json, read_text

CSV_COLUMNS = ["name", "value", "color", "category", "type", "type_modifier", "region", "region_modifier"]
MAX_LABEL_VALUE = 65535


def parse_color(color: Any, where: str) -> tuple[float, float, float]:
    """Accept ``#rrggbb``, ``[r, g, b]`` in 0-255, or ``[r, g, b]`` in 0-1; return 0-1 floats."""
    if isinstance(color, str):
        text = color.strip().lstrip("#")
        if len(text) != 6:
            raise SegTruthError(f"{where}: color {color!r} is not #rrggbb.")
        try:
            return tuple(int(text[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
        except ValueError:
            raise SegTruthError(f"{where}: color {color!r} is not #rrggbb.") from None
    try:
        rgb = [float(c) for c in color]
    except (TypeError, ValueError):
        raise SegTruthError(f"{where}: color {color!r} is not #rrggbb or three numbers.") from None
    if len(rgb) != 3 or min(rgb) < 0 or max(rgb) > 255:
        raise SegTruthError(f"{where}: color {color!r} is not three numbers in 0-1 or 0-255.")
    scale = 255.0 if max(rgb) > 1.0 else 1.0
    return (rgb[0] / scale, rgb[1] / scale, rgb[2] / scale)


def color_hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


# A qualitative palette for labels that come without a color (Slicer's generic anatomy look).
_PALETTE = [
    (0.5, 0.68, 0.5),
    (0.95, 0.84, 0.57),
    (0.69, 0.48, 0.4),
    (0.44, 0.72, 0.82),
    (0.85, 0.4, 0.31),
    (0.87, 0.51, 0.73),
    (0.56, 0.93, 0.56),
    (0.9, 0.86, 0.27),
    (0.8, 0.31, 0.8),
    (0.3, 0.5, 0.9),
]


def default_color(value: int) -> tuple[float, float, float]:
    return _PALETTE[(value - 1) % len(_PALETTE)]


@dataclass(frozen=True)
class Label:
    """One label: the value written in exported labelmaps, and what it means."""

    name: str
    value: int
    color: tuple[float, float, float]
    terminology: Terminology = field(default_factory=Terminology)
    # other names of the same structure in source annotations (RT Structure Set ROI names: "femur left")
    synonyms: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        t = self.terminology
        entry: dict[str, Any] = {"name": self.name, "value": self.value, "color": color_hex(self.color)}
        for key, code in (
            ("category", t.category),
            ("type", t.type),
            ("type_modifier", t.type_modifier),
            ("region", t.region),
            ("region_modifier", t.region_modifier),
        ):
            if code is not None:
                entry[key] = str(code)
        if self.synonyms:
            entry["synonyms"] = list(self.synonyms)
        return entry

    def names(self) -> tuple[str, ...]:
        """The label's name and synonyms, as written."""
        return (self.name, *self.synonyms)


def name_key(name: str) -> str:
    """How names are matched to synonyms: case and runs of spaces ignored, nothing else guessed."""
    return " ".join(name.split()).casefold()


def _synonyms(value: Any, where: str) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    items = value.split("|") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise SegTruthError(f"{where}: synonyms must be a list of names (or names separated by |).")
    return tuple(item.strip() for item in items if item.strip())


def label_from_mapping(entry: dict[str, Any], where: str) -> Label:
    name = str(entry.get("name", "")).strip()
    if not name:
        raise SegTruthError(f"{where}: a label has no name.")
    try:
        value = int(str(entry.get("value", "")).strip())
    except ValueError:
        raise SegTruthError(f"{where}: label {name!r} has no integer value.") from None
    color_text = entry.get("color")
    color = (
        parse_color(color_text, f"{where}, label {name!r}") if color_text not in (None, "") else default_color(value)
    )
    try:
        codes = {key: Code.parse(entry.get(key)) for key in CSV_COLUMNS[3:]}
    except SegTruthError as error:
        raise SegTruthError(f"{where}, label {name!r}: {error}") from None
    terminology = Terminology()
    if codes["category"] and codes["type"]:
        terminology = Terminology(
            codes["category"], codes["type"], codes["type_modifier"], codes["region"], codes["region_modifier"]
        )
    elif codes["category"] or codes["type"]:
        raise SegTruthError(f"{where}, label {name!r}: give both category and type codes, or neither.")
    return Label(name, value, color, terminology, _synonyms(entry.get("synonyms"), f"{where}, label {name!r}"))


class LabelTable:
    """An ordered, validated list of labels."""

    def __init__(self, labels: Iterable[Label], source: str = "label table") -> None:
        self.labels: list[Label] = list(labels)
        self.source = source
        self._validate()

    def _validate(self) -> None:
        names: dict[str, int] = {}
        values: dict[int, str] = {}
        for label in self.labels:
            if label.value == 0:
                raise SegTruthError(f"{self.source}: label {label.name!r} has value 0, which is background.")
            if not 0 < label.value <= MAX_LABEL_VALUE:
                raise SegTruthError(f"{self.source}: label {label.name!r} has value {label.value}, outside 1-65535.")
            if label.value in values:
                raise SegTruthError(
                    f"{self.source}: labels {values[label.value]!r} and {label.name!r} share the value {label.value}."
                )
            if label.name in names:
                raise SegTruthError(f"{self.source}: the name {label.name!r} is used twice.")
            names[label.name] = label.value
            values[label.value] = label.name
        keys: dict[str, str] = {}
        for label in self.labels:
            for name in dict.fromkeys(name_key(n) for n in label.names()):
                if name in keys and keys[name] != label.name:
                    raise SegTruthError(
                        f"{self.source}: the name or synonym {name!r} belongs to both {keys[name]!r} and {label.name!r}."
                    )
                keys[name] = label.name

    def __iter__(self) -> Iterator[Label]:
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelTable) and self.labels == other.labels

    def by_name(self, name: str) -> Label | None:
        return next((label for label in self.labels if label.name == name), None)

    def match(self, name: str) -> Label | None:
        """The label called ``name`` or listing it as a synonym (case and spacing aside); None when none does."""
        found = self.by_name(name)
        if found is not None:
            return found
        key = name_key(name)
        return next((label for label in self.labels if key in {name_key(n) for n in label.names()}), None)

    def by_value(self, value: int) -> Label | None:
        return next((label for label in self.labels if label.value == value), None)

    @property
    def max_value(self) -> int:
        return max((label.value for label in self.labels), default=0)

    def with_label(self, name: str, value: int | None = None, color: Any = None) -> LabelTable:
        """A copy with one more label (next free value by default)."""
        value = self.max_value + 1 if value is None else value
        rgb = parse_color(color, self.source) if color is not None else default_color(value)
        return LabelTable([*self.labels, Label(name, value, rgb)], self.source)

    # -- files ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> LabelTable:
        """Read a ``.json`` or ``.csv`` label table."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".csv", ".tsv") and path.is_file():
            raise SegTruthError(f"{path}: a label table must be .json or .csv.")
        text = read_text(path, "label table")
        if suffix == ".json":
            return cls.from_json(text, str(path))
        if suffix in (".csv", ".tsv"):
            return cls.from_csv(text, str(path), delimiter="\t" if suffix == ".tsv" else ",")
        raise SegTruthError(f"{path}: a label table must be .json or .csv.")

    @classmethod
    def from_json(cls, text: str, source: str = "label table") -> LabelTable:
        data = parse_json(text, source)
        entries = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise SegTruthError(f'{source}: expected a list of labels or {{"labels": [...]}}.')
        return cls([label_from_mapping(entry, source) for entry in entries], source)

    @classmethod
    def from_csv(cls, text: str, source: str = "label table", delimiter: str = ",") -> LabelTable:
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        if reader.fieldnames is None or not {"name", "value"} <= {f.strip() for f in reader.fieldnames}:
            raise SegTruthError(f"{source}: the CSV header must have at least the columns name,value.")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
        return cls([label_from_mapping(row, f"{source} line {i + 2}") for i, row in enumerate(rows)], source)

    def to_json(self) -> str:
        return json.dumps({"labels": [label.as_dict() for label in self.labels]}, indent=2) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        columns = CSV_COLUMNS + (["synonyms"] if any(label.synonyms for label in self.labels) else [])
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for label in self.labels:
            entry = label.as_dict()
            if label.synonyms:
                entry["synonyms"] = "|".join(label.synonyms)
            writer.writerow(entry)
        return out.getvalue()

    def write(self, path: str | Path) -> Path:
        from .atomic import atomic_write_text

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".csv"):
            raise SegTruthError(f"{path}: a label table must be .json or .csv.")
        return atomic_write_text(path, self.to_json() if suffix == ".json" else self.to_csv())
