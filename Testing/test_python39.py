"""SegTruth runs inside Slicer 5.8, whose Python is 3.9: no newer syntax, no newer library call, no runtime ``X | Y``.

The headless package needs Python 3.11 (slicer-core's wheel), so CI never runs a 3.9 interpreter; these checks
read the source instead. ``from __future__ import annotations`` keeps ``X | Y`` in annotations unevaluated, so
only unions Python evaluates (``isinstance``, aliases, annotations in files without that import) are errors.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import vermin

ROOT = Path(__file__).resolve().parent.parent
TARGET = (3, 9)
# What runs inside Slicer: the module, its logic, the batch script and the test suite the module's Test runs.
SOURCES = sorted(
    [
        *(ROOT / "SegTruthLogic").rglob("*.py"),
        *(ROOT / "SegTruth").glob("*.py"),
        *(ROOT / "Resources" / "Scripts").glob("*.py"),
        *(ROOT / "Testing").glob("*.py"),
    ]
)
BUILTIN_TYPES = {name for name, value in vars(builtins).items() if isinstance(value, type)}


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_sources_are_found():
    assert len(SOURCES) > 100
    assert ROOT / "SegTruthLogic" / "scene" / "masking.py" in SOURCES and ROOT / "SegTruth" / "SegTruth.py" in SOURCES


def test_syntax_is_python_39():
    failures = []
    for path in SOURCES:
        try:
            ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=TARGET)
        except SyntaxError as error:
            failures.append(f"{relative(path)}:{error.lineno}: {error.msg}")
    assert failures == []


def test_library_calls_exist_in_python_39():
    """vermin knows when each stdlib module, function and keyword argument appeared (``zip(strict=)``: 3.10)."""
    config = vermin.Config()
    config.set_eval_annotations(False)
    failures = []
    for path in SOURCES:
        visitor = vermin.visit(path.read_text(encoding="utf-8"), config, str(path))
        needed = visitor.minimum_versions()[1]
        if needed is not None and needed > TARGET:
            reasons = [line.strip() for line in visitor.output_text().splitlines() if "requires" in line]
            failures.append(f"{relative(path)} needs Python {needed[0]}.{needed[1]}: {'; '.join(reasons)}")
    assert failures == []


def bit_or(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)


def type_union(node: ast.AST) -> bool:
    """``A | B`` between types: a leaf that is None, a builtin type, a generic or a CamelCase name.

    Attribute leaves alone (``qt.Qt.ItemIsEnabled | qt.Qt.ItemIsSelectable``) are flags, not types.
    """

    def leaves(part: ast.AST) -> list[ast.AST]:
        return leaves(part.left) + leaves(part.right) if bit_or(part) else [part]

    def typelike(leaf: ast.AST) -> bool:
        if isinstance(leaf, ast.Constant):
            return leaf.value is None
        if isinstance(leaf, ast.Name):
            return leaf.id in BUILTIN_TYPES or (leaf.id[:1].isupper() and not leaf.id.isupper())
        return isinstance(leaf, ast.Subscript) and typelike(leaf.value)  # list[int], not masks[0]

    return bit_or(node) and any(typelike(leaf) for leaf in leaves(node))


def checked_types(node: ast.AST) -> ast.AST | None:
    """The second argument of ``isinstance``/``issubclass``, where any ``|`` builds a union."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass"):
        return node.args[1] if len(node.args) == 2 else None
    return None


def runtime_unions(tree: ast.Module) -> list[int]:
    """Lines where Python 3.9 would evaluate ``X | Y`` between types."""
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(a.name == "annotations" for a in node.names)
        for node in tree.body
    )
    annotations: set[int] = set()
    for node in ast.walk(tree):
        parts = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            parts = [a.annotation for a in every] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            parts = [node.annotation]
        for part in parts:
            if part is not None:
                annotations.update(id(sub) for sub in ast.walk(part))
    lines = []
    for node in ast.walk(tree):
        if id(node) in annotations and postponed:
            continue
        if type_union(node):
            lines.append(node.lineno)
        checked = checked_types(node)
        if checked is not None and any(bit_or(sub) for sub in ast.walk(checked)):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_no_type_union_is_evaluated_at_run_time():
    failures = [
        f"{relative(path)}:{line}"
        for path in SOURCES
        for line in runtime_unions(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    ]
    assert failures == []


def test_the_union_check_finds_what_python_39_rejects():
    evaluated = (
        "from __future__ import annotations\nok: int | None = None\nisinstance(1, int | str)\nAlias = Path | None\n"
        "isinstance(x, a.B | a.C)\n"
    )
    assert runtime_unions(ast.parse(evaluated)) == [3, 4, 5]
    eager = "def f(a: int | None) -> Path | None: ...\nflags = FLAG_A | FLAG_B\nbits = a.ItemIsEnabled | a.ItemIsSelectable\n"
    assert runtime_unions(ast.parse(eager)) == [1]
