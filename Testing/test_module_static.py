"""The Slicer module as far as it can be checked without Slicer: the .ui, the module file, CMake and the s4ext.

No Slicer application can run here, so these tests read the files: every widget the module file uses exists in
SegTruth.ui with the class it is used as, every parameter-node binding names a real parameter with a widget
Slicer 5.8's parameterNodeWrapper can bind it to, signals exist, and the module file imports only what Slicer
provides. The tables of Slicer API below are copied from Slicer 5.8's sources (guiConnectors.py,
qMRMLSegmentEditorWidget.h) so a typo here fails a test, not a clinician's session.
"""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
import xml.etree.ElementTree as ET
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from SegTruthLogic.gui import EDITOR_EFFECTS, PARAMETER_KINDS, PanelParameters


def is_stdlib(name: str) -> bool:
    """Whether a top-level module comes with Python (``sys.stdlib_module_names`` needs 3.10; Slicer 5.8 has 3.9)."""
    known = getattr(sys, "stdlib_module_names", None)
    if known is not None:
        return name in known
    if name in sys.builtin_module_names:
        return True
    import importlib.util

    spec = importlib.util.find_spec(name)
    origin = (spec.origin or "") if spec else ""
    return origin.startswith(sysconfig.get_paths()["stdlib"]) and "site-packages" not in origin


ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "SegTruth" / "SegTruth.py"
UI = ROOT / "SegTruth" / "Resources" / "UI" / "SegTruth.ui"

# Widgets the module file uses, with the class it uses each as.
EXPECTED_CLASSES = {
    "inputVolumeSelector": "qMRMLNodeComboBox",
    "segmentationSelector": "qMRMLNodeComboBox",
    "segmentEditorWidget": "qMRMLSegmentEditorWidget",
    "modelComboBox": "QComboBox",
    "deviceComboBox": "QComboBox",
    "ttaCheckBox": "QCheckBox",
    "applyButton": "QPushButton",
    "progressBar": "QProgressBar",
    "logText": "QPlainTextEdit",
    "labelTableWidget": "QTableWidget",
    "addLabelButton": "QPushButton",
    "removeLabelButton": "QPushButton",
    "labelsFromSegmentsButton": "QPushButton",
    "loadLabelsButton": "QPushButton",
    "saveLabelsButton": "QPushButton",
    "applyLabelsButton": "QPushButton",
    "exportFormatComboBox": "QComboBox",
    "exportFolderButton": "ctkDirectoryButton",
    "exportNameEdit": "QLineEdit",
    "qcCheckBox": "QCheckBox",
    "nnunetCheckBox": "QCheckBox",
    "nnunetFolderButton": "ctkDirectoryButton",
    "datasetIdSpinBox": "QSpinBox",
    "datasetNameEdit": "QLineEdit",
    "exportButton": "QPushButton",
    "qcPictureLabel": "QLabel",
    "statusLabel": "QLabel",
}

# Signals the module connects to, per class (Qt 5 signatures).
SIGNALS = {
    "QPushButton": {"clicked(bool)", "clicked()", "toggled(bool)", "pressed()", "released()"},
    "QComboBox": {"activated(int)", "currentIndexChanged(int)", "currentTextChanged(QString)"},
    "QTableWidget": {"cellChanged(int,int)", "cellDoubleClicked(int,int)", "cellClicked(int,int)"},
}

# Slicer 5.8 parameterNodeWrapper/guiConnectors.py: the widget classes each parameter type can bind to.
CONNECTABLE = {
    "bool": {"QCheckBox", "ctkCheckBox", "QPushButton", "ctkCheckablePushButton"},
    "int": {"QSlider", "QSpinBox"},
    "float": {"QDoubleSpinBox", "ctkSliderWidget", "qMRMLSliderWidget", "ctkDoubleSlider", "ctkDoubleSpinBox"},
    "str": {"QLineEdit", "QLabel", "QTextEdit"},  # a QComboBox needs a Choice annotation
    "Path": {"ctkPathLineEdit", "ctkDirectoryButton"},
    "enum": {"QComboBox", "ctkComboBox"},
    "node": {"qMRMLNodeComboBox"},
}
ENUM_KINDS = {"Device", "ExportFormat"}
UNBOUND = {"labelTable", "model"}  # kept by the controller: the label table editor and the model combo box

# qMRMLSegmentEditorWidget (Slicer 5.8 header): properties, slots and invokables the module may use.
SEGMENT_EDITOR_PROPERTIES = {
    "segmentationNodeSelectorVisible",
    "sourceVolumeNodeSelectorVisible",
    "maskingSectionVisible",
    "specifyGeometryButtonVisible",
    "show3DButtonVisible",
    "addRemoveSegmentButtonsVisible",
    "autoShowSourceVolumeNode",
    "switchToSegmentationsButtonVisible",
    "undoEnabled",
    "maximumNumberOfUndoStates",
    "readOnly",
    "effectButtonStyle",
    "effectColumnCount",
    "unorderedEffectsVisible",
    "defaultTerminologyEntrySettingsKey",
    "defaultTerminologyEntry",
    "jumpToSelectedSegmentEnabled",
}
SEGMENT_EDITOR_API = SEGMENT_EDITOR_PROPERTIES | {
    "segmentationNodeID",
    "sourceVolumeNodeID",
    "setActiveEffect",
    "setEffectNameOrder",
    "effectNameOrder",
    "setupViewObservations",
    "removeViewObservations",
    "setMRMLScene",
    "setMRMLSegmentEditorNode",
    "updateWidgetFromMRML",
    "setSegmentationNode",
    "setSourceVolumeNode",
    "setActiveEffectByName",
    "installKeyboardShortcuts",
    "uninstallKeyboardShortcuts",
    "turnOffLightboxes",
    "updateEffectList",
}
# Effect names as Slicer's effects register them (SegmentEditorEffects/*.py and the C++ effects).
SLICER_EFFECTS = {
    "Paint",
    "Draw",
    "Erase",
    "Level tracing",
    "Grow from seeds",
    "Fill between slices",
    "Margin",
    "Hollow",
    "Smoothing",
    "Scissors",
    "Islands",
    "Logical operators",
    "Mask volume",
    "Threshold",
}
ALLOWED_IMPORTS = {"slicer", "qt", "ctk", "vtk", "SegTruthLogic"}


# -- readers ------------------------------------------------------------------------------------------------------
def ui_tree() -> ET.Element:
    return ET.parse(UI).getroot()


def ui_widgets() -> dict[str, ET.Element]:
    widgets: dict[str, ET.Element] = {}
    for element in ui_tree().iter("widget"):
        name = element.get("name")
        assert name not in widgets, f"widget name {name!r} is used twice in SegTruth.ui"
        widgets[name] = element
    return widgets


def widget_property(element: ET.Element, name: str) -> str | None:
    for prop in element.findall("property"):
        if prop.get("name") == name:
            value = next(iter(prop), None)
            return value.text if value is not None else None
    return None


def module_ast() -> ast.Module:
    return ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE))


def ui_attribute_uses(tree: ast.Module) -> list[tuple[str, ast.Attribute]]:
    """``self.ui.NAME`` and ``ui.NAME`` (a local alias of self.ui) uses: (NAME, the attribute node)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        is_self_ui = (
            isinstance(owner, ast.Attribute)
            and owner.attr == "ui"
            and isinstance(owner.value, ast.Name)
            and owner.value.id == "self"
        )
        if is_self_ui or (isinstance(owner, ast.Name) and owner.id == "ui"):
            found.append((node.attr, node))
    return found


def parameter_node_class(tree: ast.Module) -> ast.ClassDef:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(
            (isinstance(d, ast.Name) and d.id == "parameterNodeWrapper") for d in node.decorator_list
        ):
            return node
    raise AssertionError("SegTruth.py declares no @parameterNodeWrapper class")


def annotation_kind(annotation: ast.expr) -> str:
    if isinstance(annotation, ast.Attribute):  # slicer.vtkMRMLScalarVolumeNode
        return annotation.attr
    if isinstance(annotation, ast.Name):
        return annotation.id
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
        assert annotation.value.id == "Annotated", ast.unparse(annotation)
        first = annotation.slice.elts[0] if isinstance(annotation.slice, ast.Tuple) else annotation.slice
        return annotation_kind(first)
    raise AssertionError(f"unexpected parameter annotation {ast.unparse(annotation)}")


def connector_kind(kind: str) -> str:
    if kind in ENUM_KINDS:
        return "enum"
    if kind.startswith("vtkMRML"):
        return "node"
    return kind


# -- the .ui -------------------------------------------------------------------------------------------------------
def test_ui_root_is_a_mrml_widget_named_after_the_module():
    root = ui_tree()
    assert root.findtext("class") == "SegTruth"
    top = root.find("widget")
    assert top is not None and top.get("class") == "qMRMLWidget" and top.get("name") == "SegTruth"


def test_every_widget_the_module_uses_exists_with_its_class():
    widgets = ui_widgets()
    used = {name for name, _ in ui_attribute_uses(module_ast())}
    assert used, "the module file uses no self.ui widgets"
    unknown = used - set(EXPECTED_CLASSES)
    assert not unknown, f"SegTruth.py uses widgets this test does not know: {sorted(unknown)}"
    for name in sorted(used):
        assert name in widgets, f"SegTruth.py uses self.ui.{name}, which SegTruth.ui lacks"
        assert widgets[name].get("class") == EXPECTED_CLASSES[name], f"{name} is a {widgets[name].get('class')}"


def test_connected_signals_exist_on_their_widgets():
    connections = 0
    for node in ast.walk(module_ast()):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"):
            continue
        target = node.func.value
        if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)):
            continue
        if target.value.attr != "ui":
            continue
        signal = node.args[0].value  # type: ignore[attr-defined]
        widget_class = EXPECTED_CLASSES[target.attr]
        assert signal in SIGNALS[widget_class], f"{target.attr} ({widget_class}) has no signal {signal}"
        connections += 1
    assert connections >= 10


def test_segment_editor_calls_and_properties_exist_in_slicer():
    tree = module_ast()
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "editor":
            used.add(node.attr)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "segmentEditorWidget"
        ):
            used.add(node.attr)
    assert used, "the module file does not use the segment editor widget"
    assert used <= SEGMENT_EDITOR_API, f"not qMRMLSegmentEditorWidget API: {sorted(used - SEGMENT_EDITOR_API)}"
    editor = ui_widgets()["segmentEditorWidget"]
    props = {p.get("name") for p in editor.findall("property")}
    assert props <= SEGMENT_EDITOR_PROPERTIES, f"unknown properties {sorted(props - SEGMENT_EDITOR_PROPERTIES)}"
    assert widget_property(editor, "segmentationNodeSelectorVisible") == "false"  # the panel's selectors rule


def test_mrml_widgets_get_the_scene_from_the_root():
    root = ui_tree()
    receivers = {
        c.findtext("receiver")
        for c in root.iter("connection")
        if c.findtext("sender") == "SegTruth"
        and c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    mrml = {name for name, w in ui_widgets().items() if w.get("class", "").startswith("qMRML") and name != "SegTruth"}
    assert mrml and mrml <= receivers, f"no scene for {sorted(mrml - receivers)}"


def test_custom_widgets_are_declared():
    root = ui_tree()
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in ui_widgets().values()}
    custom = {c for c in used if c and not c.startswith("Q")}
    assert custom <= declared, f"undeclared custom widgets {sorted(custom - declared)}"


# -- the parameter node ----------------------------------------------------------------------------------------------
def test_parameter_node_matches_the_controllers_parameters():
    cls = parameter_node_class(module_ast())
    declared = {
        stmt.target.id: annotation_kind(stmt.annotation)
        for stmt in cls.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }
    assert declared == PARAMETER_KINDS
    assert [f.name for f in fields(PanelParameters)] == list(PARAMETER_KINDS)


def test_parameter_node_literal_defaults_match_panel_parameters():
    cls = parameter_node_class(module_ast())
    defaults = {f.name: f.default for f in fields(PanelParameters) if f.default is not MISSING}
    checked = 0
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and stmt.value is not None):
            continue
        name = stmt.target.id  # type: ignore[union-attr]
        if isinstance(stmt.value, ast.Constant):
            assert stmt.value.value == defaults[name], name
            checked += 1
        elif isinstance(stmt.value, ast.Attribute) and isinstance(stmt.value.value, ast.Name):
            assert (
                f"{stmt.value.value.id}.{stmt.value.attr}" == f"{type(defaults[name]).__name__}.{defaults[name].name}"
            )
            checked += 1
    assert checked >= 8


def test_every_binding_names_a_parameter_with_a_widget_slicer_can_bind():
    bound = {}
    for name, element in ui_widgets().items():
        parameter = widget_property(element, "SlicerParameterName")
        if parameter is None:
            continue
        assert parameter in PARAMETER_KINDS, f"{name} binds to {parameter!r}, which is not a parameter"
        assert parameter not in bound, f"{parameter!r} is bound twice"
        kind = connector_kind(PARAMETER_KINDS[parameter])
        assert element.get("class") in CONNECTABLE[kind], (
            f"{name} is a {element.get('class')}; Slicer binds {PARAMETER_KINDS[parameter]} parameters to "
            f"{sorted(CONNECTABLE[kind])}"
        )
        bound[parameter] = name
    assert set(bound) == set(PARAMETER_KINDS) - UNBOUND


def test_node_selectors_offer_the_parameter_node_types():
    widgets = ui_widgets()
    for name, element in widgets.items():
        parameter = widget_property(element, "SlicerParameterName")
        if parameter and PARAMETER_KINDS[parameter].startswith("vtkMRML"):
            types = [s.text for s in element.iter("string")]
            assert PARAMETER_KINDS[parameter] in types, name


# -- the module file ------------------------------------------------------------------------------------------------
def test_module_file_compiles_for_python_3_9_syntax():
    source = MODULE.read_text(encoding="utf-8")
    compile(source, str(MODULE), "exec")
    ast.parse(source, feature_version=(3, 9))  # an older Slicer must be able to load it and say what it needs


def test_module_file_annotations_evaluate_on_python_3_9():
    """``X | Y`` in an annotation is evaluated at definition time, which Python 3.9 cannot do."""
    tree = module_ast()
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body), (
        "the parameter node's annotations must stay real types"
    )
    for node in ast.walk(tree):
        annotations = []
        if isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        if isinstance(node, ast.FunctionDef):
            annotations += [a.annotation for a in node.args.args if a.annotation is not None]
            annotations += [node.returns] if node.returns is not None else []
        for annotation in annotations:
            assert not any(isinstance(n, ast.BinOp) for n in ast.walk(annotation)), ast.unparse(annotation)


def test_module_file_imports_only_slicer_qt_ctk_vtk_segtruthlogic_and_the_standard_library():
    for node in ast.walk(module_ast()):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in ALLOWED_IMPORTS or is_stdlib(top), f"SegTruth.py imports {name}"


def test_module_file_installs_nothing_at_import():
    """pip, PyTorchUtils and slicer_deps.install appear only inside functions, after a person's click."""
    tree = module_ast()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        text = ast.unparse(node)
        assert "install" not in text.replace("installKeyboardShortcuts", ""), text


def test_editor_shows_the_issues_tools_first():
    assert list(EDITOR_EFFECTS) == [
        "Threshold",
        "Grow from seeds",
        "Islands",
        "Fill between slices",
        "Paint",
        "Erase",
        "Margin",
        "Logical operators",
    ]
    assert set(EDITOR_EFFECTS) <= SLICER_EFFECTS


def test_module_has_slicer_classes_named_after_it():
    names = {n.name for n in ast.walk(module_ast()) if isinstance(n, ast.ClassDef)}
    assert {"SegTruth", "SegTruthWidget", "SegTruthLogic", "SegTruthTest"} <= names


# -- CMake and the extension description ----------------------------------------------------------------------------
def cmake_sets() -> dict[str, str]:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    return {
        m.group(1): m.group(2) or m.group(3) for m in re.finditer(r'set\((EXTENSION_\w+) (?:"([^"]*)"|(\S+))\)', text)
    }


def s4ext() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "SegTruth.s4ext").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(" ")
            entries[key] = value.strip()
    return entries


def test_module_cmake_builds_with_generic_tests_and_ships_the_logic():
    text = (ROOT / "SegTruth" / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "slicerMacroBuildScriptedModule(" in text and "WITH_GENERIC_TESTS" in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    for pattern in ("SegTruthLogic/*.py", "Testing/*.py", "Resources/*"):
        assert pattern in text
    for resource in ("Resources/Icons/SegTruth.png", "Resources/UI/SegTruth.ui"):
        assert (ROOT / "SegTruth" / resource).is_file()
    assert "add_subdirectory(SegTruth)" in (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")


def test_extension_metadata_is_complete_and_consistent():
    sets, entries = cmake_sets(), s4ext()
    required = [
        "scm",
        "scmurl",
        "scmrevision",
        "depends",
        "build_subdirectory",
        "homepage",
        "contributors",
        "category",
        "iconurl",
        "status",
        "description",
        "screenshoturls",
        "enabled",
    ]
    for key in required:
        assert entries.get(key), f"SegTruth.s4ext lacks {key}"
    assert entries["category"] == sets["EXTENSION_CATEGORY"] == "Segmentation"
    assert entries["depends"] == sets["EXTENSION_DEPENDS"] == "PyTorch"
    for key, name in (
        ("homepage", "HOMEPAGE"),
        ("iconurl", "ICONURL"),
        ("screenshoturls", "SCREENSHOTURLS"),
        ("description", "DESCRIPTION"),
    ):
        assert entries[key] == sets[f"EXTENSION_{name}"], key
    assert entries["iconurl"].endswith("SegTruth/Resources/Icons/SegTruth.png")


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_expected_widgets_are_in_the_ui(name):
    assert ui_widgets()[name].get("class") == EXPECTED_CLASSES[name]
