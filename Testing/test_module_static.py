"""The Slicer module as far as it can be checked without Slicer: the .ui, the module file, CMake and the s4ext.

No Slicer application can run here, so these tests read the files: every widget the module file uses exists in
SegTruth.ui with the class it is used as, every parameter-node binding names a real parameter with a widget
Slicer 5.8's parameterNodeWrapper can bind it to, signals exist, and the module file imports only what Slicer
provides. The tables of Slicer API below are copied from Slicer 5.8's sources (guiConnectors.py,
qMRMLSegmentEditorWidget.h) so a typo here fails a test, not a clinician's session.
"""

from __future__ import annotations

import ast
import enum
import re
import sys
import sysconfig
import xml.etree.ElementTree as ET
from dataclasses import fields
from pathlib import Path

import pytest

from SegTruthLogic import api
from SegTruthLogic.gui import (
    EDITOR_EFFECTS,
    EXTRA_EFFECTS,
    VIEW_WIDGETS,
    PanelView,
    effect_order,
    missing_effects_note,
    parameter_types,
    widget_bindings,
)
from SegTruthLogic.gui.parameters import parameter_ranges


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
PARAMETERS = ROOT / "SegTruthLogic" / "gui" / "parameters.py"
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
    "trainDatasetPathLabel": "QLabel",
    "trainMinutesSpinBox": "QSpinBox",
    "trainDimensionsComboBox": "QComboBox",
    "trainSparseCheckBox": "QCheckBox",
    "trainFineTuneCheckBox": "QCheckBox",
    "trainButton": "QPushButton",
    "trainProgressBar": "QProgressBar",
    "trainStatusLabel": "QLabel",
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
    "availableEffectNames",
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
    "saveStateForUndo",
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


def connector_kind(kind: type) -> str:
    """The CONNECTABLE row for a parameter of type ``kind``."""
    if issubclass(kind, enum.Enum):
        return "enum"
    if kind.__name__.startswith("vtkMRML"):
        return "node"
    return kind.__name__


def method(tree: ast.Module, cls: str, name: str) -> ast.FunctionDef:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == name:
                    return item
    raise AssertionError(f"SegTruth.py has no {cls}.{name}")


def calls_named(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of ``name(...)`` or ``anything.name(...)``, in source order."""
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]
    return sorted(found, key=lambda call: (call.lineno, call.col_offset))


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


def test_each_view_control_enables_widgets_the_ui_has():
    controls = {f.name for f in fields(PanelView) if f.type == "Control"}
    assert set(VIEW_WIDGETS) == controls - {"editor"}  # the editor is made read-only, not disabled
    widgets = ui_widgets()
    named = [name for names in VIEW_WIDGETS.values() for name in names]
    assert len(named) == len(set(named)), "a widget is enabled by two controls"
    for name in named:
        assert name in widgets and widgets[name].get("class") == EXPECTED_CLASSES[name], name
    assert "VIEW_WIDGETS" in {n.id for n in ast.walk(module_ast()) if isinstance(n, ast.Name)}


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


# -- the parameter node: declared once, in SegTruthLogic.gui.PanelParameters -------------------------------------------
def test_the_module_builds_its_parameter_node_from_the_declaration():
    tree = module_ast()
    wrapped = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any("parameterNodeWrapper" in ast.unparse(d) for d in node.decorator_list)
    ]
    assert wrapped == [], f"SegTruth.py declares parameters of its own in {wrapped}"
    (built,) = calls_named(tree, "parameter_node_class")
    assert [ast.unparse(a) for a in built.args] == [
        "'SegTruthParameterNode'",
        "__name__",
        "parameterNodeWrapper",
        "WithinRange",
    ]
    assert calls_named(tree, "connectGui") == []  # binding by .ui properties would be a second declaration
    (connect,) = calls_named(tree, "connectParametersToGui")
    assert ast.unparse(connect.args[0]) == "bound_widgets(self.ui)"


def test_the_ui_names_no_parameters_of_its_own():
    named = [n for n, e in ui_widgets().items() if widget_property(e, "SlicerParameterName") is not None]
    assert named == [], "SegTruth.ui binds widgets itself; PanelParameters names each field's widget"


def test_every_declared_widget_is_in_the_ui_with_a_class_slicer_can_bind():
    widgets, kinds = ui_widgets(), parameter_types()
    bindings = widget_bindings()
    assert len(set(bindings.values())) == len(bindings), "a widget is bound to two parameters"
    for parameter, name in bindings.items():
        assert name in widgets, f"PanelParameters.{parameter} is shown by {name!r}, which SegTruth.ui lacks"
        connectable = CONNECTABLE[connector_kind(kinds[parameter])]
        assert widgets[name].get("class") in connectable, (
            f"{name} is a {widgets[name].get('class')}; Slicer binds {kinds[parameter].__name__} parameters to "
            f"{sorted(connectable)}"
        )
        assert EXPECTED_CLASSES[name] == widgets[name].get("class")
    assert set(kinds) - set(bindings) == UNBOUND


def test_node_selectors_offer_the_declared_node_types():
    widgets, kinds = ui_widgets(), parameter_types()
    selectors = 0
    for parameter, name in widget_bindings().items():
        if connector_kind(kinds[parameter]) == "node":
            assert kinds[parameter].__name__ in [s.text for s in widgets[name].iter("string")], name
            selectors += 1
    assert selectors == 2


def test_bound_spin_boxes_offer_the_declared_range():
    widgets, bindings = ui_widgets(), widget_bindings()
    ranges = parameter_ranges()
    assert ranges == {"datasetId": (1, 999), "trainMinutes": (1, 1440)}  # nnU-Net's dataset ids; a day
    for parameter, (low, high) in ranges.items():
        element = widgets[bindings[parameter]]
        assert (widget_property(element, "minimum"), widget_property(element, "maximum")) == (str(low), str(high))


def test_the_declarations_annotations_evaluate_on_python_3_9():
    """Slicer's parameterNodeWrapper evaluates them: no postponed annotations, no ``X | Y``."""
    tree = ast.parse(PARAMETERS.read_text(encoding="utf-8"))
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)
    (declaration,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PanelParameters"]
    for stmt in declaration.body:
        if isinstance(stmt, ast.AnnAssign):
            assert not any(isinstance(n, ast.BinOp) for n in ast.walk(stmt.annotation)), ast.unparse(stmt)


# -- Reload ------------------------------------------------------------------------------------------------------------
def test_reload_forgets_segtruthlogic_then_runs_slicers_reload():
    reload = method(module_ast(), "SegTruthWidget", "onReload")
    (forget,) = calls_named(reload, "forget_package")
    assert [ast.unparse(a) for a in forget.args] == ["'SegTruthLogic'"]
    (base,) = [
        c for c in calls_named(reload, "onReload") if ast.unparse(c.func) == "ScriptedLoadableModuleWidget.onReload"
    ]
    assert forget.lineno < base.lineno


# -- translations --------------------------------------------------------------------------------------------------------
# Where a string reaches the person: call names (and keyword arguments), attributes assigned.
TEXT_CALLS = {
    "QLabel",
    "addItem",
    "setToolTip",
    "setHorizontalHeaderLabels",
    "getExistingDirectory",
    "getOpenFileName",
    "getSaveFileName",
    "getColor",
    "errorDisplay",
    "confirmOkCancelDisplay",
    "say",
}
TEXT_ATTRIBUTES = {"title", "helpText", "acknowledgementText", "text", "toolTip", "categories"}
TEXT_CONSTANTS = {"COLUMN_TITLES", "VERSION_MESSAGE"}
TRANSLATORS = {"_", "translate"}


def untranslated(expression: ast.AST) -> list[str]:
    """String literals with words, and f-strings, in ``expression`` that no ``_()``/``translate()`` call encloses."""
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name) and expression.func.id in TRANSLATORS:
        return []
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return [expression.value] if any(c.isalpha() for c in expression.value) else []  # words, not ", "
    if isinstance(expression, ast.JoinedStr):
        return [ast.unparse(expression)]
    return [text for child in ast.iter_child_nodes(expression) for text in untranslated(child)]


def bare_text(tree: ast.Module) -> list[str]:
    """Text that reaches the person without the translation function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TEXT_CALLS:
            found += untranslated(ast.Tuple(elts=node.args, ctx=ast.Load()))
        if isinstance(node, ast.Call):
            found += [t for k in node.keywords if k.arg == "windowTitle" for t in untranslated(k.value)]
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr in TEXT_ATTRIBUTES for t in node.targets
        ):
            found += untranslated(node.value)
        if isinstance(node, ast.Assign) and {getattr(t, "id", "") for t in node.targets} & TEXT_CONSTANTS:
            found += untranslated(node.value)
    return found


def test_text_the_person_reads_goes_through_the_translation_function():
    assert bare_text(module_ast()) == []


def test_the_translation_check_finds_bare_text():
    source = (
        'self.parent.title = "SegTruth"\n'
        'combo.addItem(_("Choose…"))\n'
        'self.controller.say(f"Replace {name}?")\n'
        'slicer.util.errorDisplay(message, windowTitle="SegTruth export")\n'
        'COLUMN_TITLES = [_("Name"), "Value"]\n'
        'text = ", ".join(names)\n'
    )
    assert sorted(bare_text(ast.parse(source))) == ["SegTruth", "SegTruth export", "Value", "f'Replace {name}?'"]


def test_translated_text_is_a_literal_with_named_placeholders():
    """lupdate extracts only literals, and Slicer's ``tr`` refuses a translation whose placeholders differ."""
    calls = calls_named(module_ast(), "_") + calls_named(module_ast(), "translate")
    assert len(calls) >= 20
    for call in calls:
        text = call.args[-1]
        assert len(call.args) in (1, 2) and isinstance(text, ast.Constant) and isinstance(text.value, str), ast.unparse(
            call
        )
        assert "{}" not in text.value, f"{text.value!r}: name each placeholder"


def test_a_slicer_without_translations_still_loads_the_module():
    tree = module_ast()
    (guarded,) = [
        n for n in tree.body if isinstance(n, ast.Try) and any("slicer.i18n" in ast.unparse(s) for s in n.body)
    ]
    assert [ast.unparse(h.type) for h in guarded.handlers] == ["ImportError"]
    assert {n.name for n in ast.walk(guarded.handlers[0]) if isinstance(n, ast.FunctionDef)} == TRANSLATORS


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
        "Smoothing",
        "Hollow",
        "Scissors",
    ]
    assert set(EDITOR_EFFECTS) <= SLICER_EFFECTS


def test_extra_effects_join_the_order_where_installed_and_a_note_names_the_rest():
    core = sorted(SLICER_EFFECTS)
    assert effect_order(core) == list(EDITOR_EFFECTS)
    with_extension = [*core, "Watershed", "Fast Marching", "Local Threshold", "Flood filling", "Engrave"]
    assert effect_order(with_extension)[-4:] == ["Fast Marching", "Watershed", "Local Threshold", "Flood filling"]
    assert missing_effects_note(with_extension) == ""
    note = missing_effects_note([*core, "Watershed"])
    assert note.startswith("Fast Marching, Local Threshold, Flood filling: install SegmentEditorExtraEffects")
    assert "SegTruthLogic.api.fast_marching" in note and "watershed" not in note
    for function in EXTRA_EFFECTS.values():
        assert hasattr(api, function)


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
