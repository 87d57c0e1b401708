"""Recipes: a YAML or JSON file listing steps, so one recipe serves many cases.

```yaml
labels: labels.csv            # optional: a label table file (relative to the recipe) or a list of labels
segmentation: null            # optional: start from this .seg.nrrd or labelmap instead of empty
steps:
  - threshold: {segment: lungs, low: -1024, high: -400}
  - keep_largest_island: {segment: lungs}
  - margin: {segment: lungs, margin_mm: 2}
outputs: [labels.nii.gz, segmentation.seg.nrrd]
```

Each step names a tool and its parameters, which are the tool function's own keyword arguments (an
``options`` mapping becomes Segment Editor masking options). Unknown tools or parameters are errors
before anything runs, so a typo never costs a half-processed batch.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import inference, tools
from ..core.errors import SegTruthError
from ..core.labels import LabelTable, label_from_mapping
from ..core.parameters import check_value, type_hints
from ..core.progress import CancelToken, ProgressCallback, report
from ..core.textfile import parse_json, read_text
from ..scene.editing import EditOptions

# Step name -> "module:function" of the tool, gathered from the features that give steps; each function takes
# (session, segmentation_node, volume, ...) and is imported only when a recipe uses it.
TOOLS: dict[str, str] = {**tools.RECIPE_STEPS, **inference.RECIPE_STEPS}
_INJECTED = {"session", "segmentation_node", "volume", "table", "progress", "cancel"}


def tool(name: str, where: str = "") -> Callable[..., Any]:
    """The function behind a recipe step name; ``where`` (file, step) starts the error for an unknown one."""
    key = name.replace("-", "_")
    if key not in TOOLS:
        raise SegTruthError(
            f"{where}{': ' if where else ''}unknown recipe step {name!r}; use one of {', '.join(TOOLS)}."
        )
    module, function = TOOLS[key].split(":")
    return getattr(importlib.import_module(module), function)


@dataclass
class Step:
    name: str
    params: dict[str, Any]

    def run(self, session, segmentation_node, volume, table, progress=None, cancel=None) -> None:
        function = tool(self.name)
        accepted = inspect.signature(function).parameters
        kwargs = dict(self.params)
        if "options" in kwargs:
            kwargs["options"] = EditOptions(**_tupled(kwargs["options"]))
        for name, value in (("table", table), ("progress", progress), ("cancel", cancel)):
            if name in accepted:
                kwargs[name] = value
        function(session, segmentation_node, volume, **kwargs)


@dataclass
class Recipe:
    steps: list[Step]
    outputs: list[str] = field(default_factory=list)
    table: LabelTable | None = None
    segmentation: Path | None = None
    source: str = "recipe"

    @classmethod
    def read(cls, path: str | Path) -> Recipe:
        path = Path(path)
        text = read_text(path, "recipe")
        if path.suffix.lower() == ".json":
            data = parse_json(text, str(path))
        else:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise SegTruthError(f"{path}: not valid YAML ({_yaml_problem(error)}).") from None
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> Recipe:
        where = str(path or "recipe")
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise SegTruthError(f"{where}: a recipe is a mapping with a list of steps.")
        unknown = set(data) - {"steps", "outputs", "labels", "segmentation", "name", "description"}
        if unknown:
            raise SegTruthError(f"{where}: unknown recipe keys {sorted(unknown)}.")
        base = path.parent if path else Path(".")
        steps = [_parse_step(entry, index + 1, where) for index, entry in enumerate(data["steps"])]
        outputs = data.get("outputs") or []
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise SegTruthError(f"{where}: outputs must be a list of file names.")
        labels = data.get("labels")
        table = None
        if isinstance(labels, str):
            try:
                table = LabelTable.read(base / labels)
            except SegTruthError as error:
                raise SegTruthError(f"{where}: its label table: {error}") from None
        elif isinstance(labels, list):
            table = LabelTable([label_from_mapping(entry, where) for entry in labels], f"labels of {where}")
        elif labels is not None:
            raise SegTruthError(f"{where}: labels must be a file name or a list of labels.")
        segmentation = base / data["segmentation"] if data.get("segmentation") else None
        return cls(steps, outputs, table, segmentation, where)

    def run(
        self,
        session,
        segmentation_node,
        volume,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Run every step in order on the segmentation."""
        for index, step in enumerate(self.steps):
            if cancel is not None:
                cancel.raise_if_cancelled("recipe")
            report(progress, index / max(len(self.steps), 1), f"step {index + 1}/{len(self.steps)}: {step.name}")
            try:
                step.run(session, segmentation_node, volume, self.table, None, cancel)
            except SegTruthError as error:
                raise SegTruthError(f"{self.source}, step {index + 1} ({step.name}): {error}") from None
        report(progress, 1.0, "recipe done")


def _parse_step(entry: Any, number: int, where: str) -> Step:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise SegTruthError(f"{where}, step {number}: write each step as '- tool: {{parameters}}'.")
    ((name, params),) = entry.items()
    params = params or {}
    if not isinstance(params, dict):
        raise SegTruthError(f"{where}, step {number} ({name}): parameters must be a mapping.")
    function = tool(str(name), f"{where}, step {number}")
    accepted = inspect.signature(function).parameters
    unknown = [key for key in params if key not in accepted or key in _INJECTED]
    if unknown:
        allowed = [key for key in accepted if key not in _INJECTED]
        raise SegTruthError(
            f"{where}, step {number} ({name}): unknown parameters {unknown}; accepted: {', '.join(allowed)}."
        )
    missing = [
        key
        for key, parameter in accepted.items()
        if key not in _INJECTED
        and key not in params
        and parameter.default is inspect.Parameter.empty
        and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if missing:
        raise SegTruthError(f"{where}, step {number} ({name}): missing parameters {missing}.")
    hints = type_hints(function)
    problems = [
        check_value(key, value, hints[key]) for key, value in params.items() if key in hints and key != "options"
    ]
    if "options" in params:
        problems.append(_options_problem(params["options"]))
    problem = next((p for p in problems if p), None)
    if problem:
        raise SegTruthError(f"{where}, step {number} ({name}): {problem}.")
    return Step(str(name), params)


def _options_problem(options: Any) -> str | None:
    """What is wrong with a step's ``options`` mapping (the Segment Editor's masking settings), if anything."""
    if not isinstance(options, dict):
        return f"options must be a mapping of masking settings, not {options!r}"
    hints = type_hints(EditOptions)
    unknown = [key for key in options if key not in hints]
    if unknown:
        return f"unknown options {unknown}; accepted: {', '.join(hints)}"
    for key, value in options.items():
        problem = check_value(key, value, hints[key])
        if problem:
            return problem
    try:
        EditOptions(**_tupled(options))
    except SegTruthError as error:
        return str(error).rstrip(".")
    return None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one clause: the problem and where it is."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def _tupled(options: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in options.items()}


__all__ = ["TOOLS", "Recipe", "Step", "tool"]
