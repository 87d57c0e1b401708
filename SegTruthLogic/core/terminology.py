"""DICOM code triplets and Slicer's serialized terminology entry (the segment's ``TerminologyEntry`` tag)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import SegTruthError

CONTEXT_NAME = "Segmentation category and type - SegTruth"
ANATOMIC_CONTEXT_NAME = "Anatomic codes - DICOM master list"


@dataclass(frozen=True)
class Code:
    """A coded concept: coding scheme designator (SCT, DCM, ...), code value, code meaning."""

    scheme: str
    value: str
    meaning: str

    @classmethod
    def parse(cls, text: str | dict[str, Any] | None) -> Code | None:
        """Read ``"SCT^39607008^Lung"`` or ``{"scheme":..., "value":..., "meaning":...}``; empty gives None."""
        if text is None or text == "" or text == {}:
            return None
        if isinstance(text, dict):
            try:
                return cls(str(text["scheme"]), str(text.get("value", text.get("code"))), str(text["meaning"]))
            except KeyError as missing:
                raise SegTruthError(f"Code {text!r} lacks the key {missing}.") from None
        parts = str(text).split("^")
        if len(parts) != 3 or not all(part.strip() for part in parts):
            raise SegTruthError(f"Code {text!r} is not of the form SCHEME^VALUE^MEANING.")
        return cls(*(part.strip() for part in parts))

    def __str__(self) -> str:
        return f"{self.scheme}^{self.value}^{self.meaning}"

    def as_dict(self) -> dict[str, str]:
        return {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}


TISSUE = Code("SCT", "85756007", "Tissue")
ANATOMICAL_STRUCTURE = Code("SCT", "123037004", "Anatomical Structure")


@dataclass(frozen=True)
class Terminology:
    """What a segment is: category and type (required), optional modifier and anatomic region."""

    category: Code = TISSUE
    type: Code = TISSUE
    type_modifier: Code | None = None
    region: Code | None = None
    region_modifier: Code | None = None
    context: str = CONTEXT_NAME

    def serialize(self) -> str:
        """Slicer's ``TerminologyEntry`` string: context~category~type~modifier~anatomic context~region~modifier."""

        def field(code: Code | None) -> str:
            return str(code) if code else "^^"

        return "~".join(
            [
                self.context,
                field(self.category),
                field(self.type),
                field(self.type_modifier),
                ANATOMIC_CONTEXT_NAME,
                field(self.region),
                field(self.region_modifier),
            ]
        )

    @classmethod
    def deserialize(cls, text: str) -> Terminology | None:
        """Parse a segment's ``TerminologyEntry`` tag; None when it holds no category and type."""
        parts = text.split("~")
        if len(parts) != 7:
            return None

        def code(part: str) -> Code | None:
            return None if part.strip("^") == "" else Code.parse(part)

        try:
            category, type_ = code(parts[1]), code(parts[2])
            if category is None or type_ is None:
                return None
            return cls(category, type_, code(parts[3]), code(parts[5]), code(parts[6]), parts[0] or CONTEXT_NAME)
        except SegTruthError:
            return None
