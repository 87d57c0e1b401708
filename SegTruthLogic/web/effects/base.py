"""What every web effect is made of, as trame-slicer organises its own: a state dataclass (the panel's
settings), a UI function (the widgets bound to that state), and a logic class (the ``Effect``: inputs checked
on the main thread, heavy part in a worker, result written into a copy of the case).

An ``EffectSpec`` ties the three together; ``registry.EFFECTS`` lists them and the app iterates that list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Optional, TypeVar

from ...core.errors import SegTruthError
from ...core.progress import CancelToken, ProgressCallback
from ..workspace import Workspace

if TYPE_CHECKING:
    from ..app import SegTruthWebApp

Work = Callable[[Optional[ProgressCallback], CancelToken], None]
"""The heavy part of an effect: reports progress, checks the token, touches no MRML node."""

S = TypeVar("S")


class Effect(ABC):
    """One configured use of a SegTruth tool."""

    key: ClassVar[str]
    title: ClassVar[str]

    def start(self, ws: Workspace) -> Work | None:
        """Main thread: check the inputs and capture what the heavy part needs (None when there is none)."""
        return None

    @abstractmethod
    def write(self, ws: Workspace, node) -> list[str]:
        """Main thread: write the result into ``node`` (a copy of the case's segmentation); the IDs it changed."""

    def update_preview(self, ws: Workspace, node) -> list[str] | None:
        """Main thread: bring ``node``, which holds this effect's last ``write``, up to date in place (only what
        changed) and return the IDs shown; None when it cannot (the preview is then rebuilt with ``write``)."""
        return None

    def summary(self) -> str:
        return f"{self.title}: preview ready."


def names(ws: Workspace, ids: Sequence[str]) -> list[str]:
    return [ws.segment_name(sid) for sid in ids]


def number(value, name: str) -> float:
    """A number typed in a text field (they arrive as text); a clear error for anything else."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise SegTruthError(f"{name} must be a number, not {value!r}.") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise SegTruthError(f"{name} must be a finite number, not {value!r}.")
    return result


class BoundState(Generic[S]):
    """A settings dataclass kept in the trame state, one key per field: ``<prefix>_<field>``.

    The widgets bind to ``name(field)``; the logic reads ``get()``, a typed snapshot, and writes with ``set``.
    """

    def __init__(self, state, prefix: str, state_type: type[S], initial: S | None = None) -> None:
        self.state, self.prefix, self.type = state, prefix, state_type
        for f in fields(state_type):  # type: ignore[arg-type]
            state[self.name(f.name)] = getattr(initial if initial is not None else state_type(), f.name)

    def name(self, field_name: str) -> str:
        return f"{self.prefix}_{field_name}"

    def get(self) -> S:
        return self.type(**{f.name: self.state[self.name(f.name)] for f in fields(self.type)})  # type: ignore[arg-type]

    def set(self, **values: Any) -> None:
        for key, value in values.items():
            self.state[self.name(key)] = value


@dataclass(frozen=True)
class ViewInput:
    """What a click or a drag in a slice view gives a tool while it is picked: the points of one of its settings
    (then the preview is recomputed), as in Slicer's effects that take clicks or an outline in the views."""

    setting: str  # the settings field the points go into
    outline: bool = False  # a drag draws an outline (a polygon); otherwise a click places a point
    adds: bool = False  # Shift+click adds a point to those already there (the setting holds several)
    normal_setting: str | None = None  # the settings field that takes the view's normal (a polygon's plane)


@dataclass(frozen=True)
class EffectSpec(Generic[S]):
    """One SegTruth tool in the web app: its button, its settings and how they become an ``Effect``.

    settings: the state's values checked and turned into the effect's arguments; while they stay equal the
    app keeps the same effect object (a grow preview stays incremental). make: the effect from them.
    on_case / on_select: hooks when a case opens / the tool is picked. follows_edits: whether the preview
    is recomputed after each paint stroke. view_input: what clicks or drags in the slice views give it.
    """

    key: str
    title: str
    icon: str
    prefix: str
    state_type: type[S]
    ui: Callable[[BoundState[S], SegTruthWebApp], None]
    settings: Callable[[S, SegTruthWebApp], tuple]
    make: Callable[[tuple, SegTruthWebApp], Effect]
    initial: Callable[[SegTruthWebApp], S] | None = None
    on_case: Callable[[BoundState[S], SegTruthWebApp], None] | None = None
    on_select: Callable[[BoundState[S], SegTruthWebApp], None] | None = None
    follows_edits: Callable[[S], bool] | None = None
    view_input: ViewInput | None = None
