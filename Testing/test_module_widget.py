"""The module file's glue, run against stand-ins for what only the Slicer application has (Qt widgets, the module
base classes, the parameter-node wrapper), with Slicer's real MRML classes and ``slicer.util`` underneath.

The widgets are built from SegTruth.ui itself and offer only the Qt/Slicer methods the module may call, so a
misspelt call, a missing widget or a slot that raises fails here. What the stand-ins cannot show (that Slicer's
designer plugins build these widgets, the real parameterNodeWrapper's binding) is checked statically in
test_module_static.py against Slicer 5.8's sources.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import sys
import time
import types
import typing
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from SegTruthLogic import SegTruthError
from SegTruthLogic.gui import ExportFormat, PanelController, PanelParameters, RunState, widget_bindings
from SegTruthLogic.scene.segments import segment_ids
from SegTruthLogic.tools.threshold import threshold

ROOT = Path(__file__).resolve().parent.parent
MODULE_FILE = ROOT / "SegTruth" / "SegTruth.py"
UI_FILE = ROOT / "SegTruth" / "Resources" / "UI" / "SegTruth.ui"


# -- Qt stand-ins -----------------------------------------------------------------------------------------------------
class Signals:
    def __init__(self) -> None:
        self.slots: dict[str, object] = {}
        self._blocked = False

    def connect(self, signal: str, slot) -> None:
        self.slots[signal] = slot

    def blockSignals(self, blocked: bool) -> bool:
        previous, self._blocked = self._blocked, blocked
        return previous

    def emit(self, signal: str, *args) -> None:
        if not self._blocked:
            slot = self.slots[signal]
            slot(*args[: slot.__code__.co_argcount - 1])  # PythonQt drops arguments a slot does not take


class Widget(Signals):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.enabled, self.visible, self.toolTip, self.text = True, True, "", ""

    def setStyleSheet(self, sheet: str) -> None:
        self.styleSheet = sheet


class Label(Widget):
    def setPixmap(self, pixmap) -> None:
        self.pixmap = pixmap


class ProgressBar(Widget):
    value = 0


class PlainText(Widget):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.lines: list[str] = []

    def appendPlainText(self, line: str) -> None:
        self.lines.append(line)


class ComboBox(Widget):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.items: list[str] = []
        self.tips: dict[int, str] = {}
        self.currentIndex = -1

    def clear(self) -> None:
        self.items, self.currentIndex = [], -1

    def addItem(self, text: str) -> None:
        self.items.append(text)

    def setItemData(self, index: int, value, role) -> None:
        self.tips[index] = value


class Header:
    def setStretchLastSection(self, stretch: bool) -> None:
        pass


class TableWidget(Widget):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.cells: dict[tuple[int, int], QTableWidgetItem] = {}
        self.rows, self.columns, self.current = 0, 0, -1

    def setColumnCount(self, count: int) -> None:
        self.columns = count

    def setHorizontalHeaderLabels(self, labels: list[str]) -> None:
        assert len(labels) == self.columns

    def horizontalHeader(self) -> Header:
        return Header()

    def setRowCount(self, count: int) -> None:
        self.rows = count
        self.cells = {k: v for k, v in self.cells.items() if k[0] < count}

    def setItem(self, row: int, column: int, item) -> None:
        assert row < self.rows and column < self.columns
        self.cells[(row, column)] = item

    def item(self, row: int, column: int):
        return self.cells.get((row, column))

    def currentRow(self) -> int:
        return self.current

    def type_into(self, row: int, column: int, text: str) -> None:
        """What a person's edit does: the item changes, then cellChanged fires."""
        self.cells[(row, column)] = QTableWidgetItem(text)
        self.emit("cellChanged(int,int)", row, column)


class SegmentEditor(Widget):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.segmentation = self.volume = self.editorNode = None
        self.readOnly = False
        self.unorderedEffectsVisible = False
        self.effects: list[str] = []
        self.shortcuts = False

    def setMRMLSegmentEditorNode(self, node) -> None:
        assert node is None or node.IsA("vtkMRMLSegmentEditorNode")
        self.editorNode = node

    def setEffectNameOrder(self, names: list[str]) -> None:
        self.effects = list(names)

    def availableEffectNames(self) -> list[str]:
        """Slicer's core effects: no SegmentEditorExtraEffects here."""
        return ["Paint", "Draw", "Erase", "Threshold", "Grow from seeds", "Islands", "Smoothing", "Scissors"]

    def setSegmentationNode(self, node) -> None:
        self.segmentation = node

    def segmentationNodeID(self) -> str:
        return self.segmentation.GetID() if self.segmentation else ""

    def setSourceVolumeNode(self, node) -> None:
        self.volume = node

    def sourceVolumeNodeID(self) -> str:
        return self.volume.GetID() if self.volume else ""

    def installKeyboardShortcuts(self) -> None:
        self.shortcuts = True

    def uninstallKeyboardShortcuts(self) -> None:
        self.shortcuts = False

    def updateWidgetFromMRML(self) -> None:
        pass

    def setActiveEffect(self, effect) -> None:
        assert effect is None

    def removeViewObservations(self) -> None:
        pass

    def saveStateForUndo(self) -> None:
        self.undoStates = getattr(self, "undoStates", 0) + 1


class Root(Widget):
    def setMRMLScene(self, scene) -> None:
        self.scene = scene


CLASSES = {
    "QLabel": Label,
    "QProgressBar": ProgressBar,
    "QPlainTextEdit": PlainText,
    "QComboBox": ComboBox,
    "QTableWidget": TableWidget,
    "qMRMLSegmentEditorWidget": SegmentEditor,
    "qMRMLWidget": Root,
}


def widgets_from_ui() -> tuple[Root, types.SimpleNamespace]:
    ui = types.SimpleNamespace()
    root = None
    for element in ET.parse(UI_FILE).getroot().iter("widget"):
        widget = CLASSES.get(element.get("class"), Widget)(element.get("name"))
        setattr(ui, element.get("name"), widget)
        root = root or widget
    return root, ui


class QTableWidgetItem:
    def __init__(self, text: str = "") -> None:
        self._text = text

    def text(self) -> str:
        return self._text

    def setFlags(self, flags) -> None:
        self.flags = flags

    def setBackground(self, brush) -> None:
        self.background = brush

    def setToolTip(self, tip: str) -> None:
        self.tip = tip


class QColor:
    def __init__(self, name: str = "") -> None:
        self._name = name

    @staticmethod
    def isValidColor(name: str) -> bool:
        return name.startswith("#") and len(name) == 7

    def isValid(self) -> bool:
        return self.isValidColor(self._name)

    def name(self) -> str:
        return self._name


class QTimer(Signals):
    def __init__(self) -> None:
        super().__init__()
        self.active = False

    def setInterval(self, ms: int) -> None:
        self.interval = ms

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False


class Dialogs:
    """QFileDialog / QColorDialog answers chosen by the test."""

    folder = ""
    open_file = ""
    save_file = ""
    color = "#00ff00"

    @classmethod
    def getExistingDirectory(cls, parent, caption: str) -> str:
        return cls.folder

    @classmethod
    def getOpenFileName(cls, parent, caption, folder, filters) -> str:
        return cls.open_file

    @classmethod
    def getSaveFileName(cls, parent, caption, folder, filters) -> str:
        return cls.save_file

    @classmethod
    def getColor(cls, initial, parent, title):
        return QColor(cls.color)


class FormLayout:
    """QFormLayout: the rows added, as (label, widget) or (widget,)."""

    def __init__(self, parent) -> None:
        parent.layout = self
        self.rows: list[tuple] = []

    def addRow(self, *items) -> None:
        self.rows.append(items)


class Slider(Widget):
    """ctkSliderWidget: ``value`` set by code, ``move`` is a person dragging it (valueChanged fires)."""

    minimum, maximum, decimals, singleStep, value = 0.0, 99.0, 2, 1.0, 0.0  # noqa: N815 (Qt property names)

    def move(self, value: float) -> None:
        self.value = value
        self.emit("valueChanged(double)", value)


class NodeComboBox(Widget):
    """qMRMLNodeComboBox: ``node`` is the chosen node."""

    node = None

    def setMRMLScene(self, scene) -> None:
        self.scene = scene

    def currentNode(self):
        return self.node


def fake_ctk() -> types.ModuleType:
    ctk = types.ModuleType("ctk")
    ctk.ctkCollapsibleButton = lambda: Widget("ctkCollapsibleButton")
    ctk.ctkSliderWidget = lambda: Slider("ctkSliderWidget")
    return ctk


def fake_qt() -> types.ModuleType:
    qt = types.ModuleType("qt")
    qt.QTimer, qt.QTableWidgetItem, qt.QColor = QTimer, QTableWidgetItem, QColor
    qt.QBrush = lambda color: ("brush", color.name())
    qt.QLabel = lambda text: Label(text)
    qt.QPushButton = lambda text: Widget(text)
    qt.QComboBox = lambda: ComboBox("QComboBox")
    qt.QFormLayout = FormLayout
    qt.QPixmap = lambda path: types.SimpleNamespace(path=path, width=lambda: 600, scaledToWidth=lambda w: ("scaled", w))
    qt.QFileDialog = qt.QColorDialog = Dialogs
    qt.Qt = types.SimpleNamespace(ItemIsSelectable=1, ItemIsEnabled=32, ToolTipRole=3, WaitCursor=16)
    return qt


# -- Slicer application stand-ins -------------------------------------------------------------------------------------
class WithinRange:
    def __init__(self, low, high) -> None:
        self.low, self.high = low, high


def parameter_node_wrapper(cls):
    """Enough of Slicer's wrapper: typed attributes over a scripted module node, Modified on every change."""
    hints = typing.get_type_hints(cls, include_extras=True)  # as Slicer does: the annotations must evaluate
    defaults = {name: getattr(cls, name, None) for name in hints}

    class Wrapper:
        def __init__(self, node) -> None:
            object.__setattr__(self, "parameterNode", node)
            object.__setattr__(self, "_values", dict(defaults))
            object.__setattr__(self, "guis", {})

        def __getattr__(self, name):
            if name in hints:
                return self._values[name]
            raise AttributeError(name)

        def __setattr__(self, name, value) -> None:
            assert name in hints, f"{name} is not a parameter"
            kind = (
                typing.get_args(hints[name])[0] if typing.get_origin(hints[name]) is typing.Annotated else hints[name]
            )
            if isinstance(kind, type) and issubclass(kind, (enum.Enum, Path, str, bool, int)):
                assert isinstance(value, kind), f"{name} = {value!r} is not a {kind.__name__}"
            self._values[name] = value
            self.parameterNode.Modified()

        def connectParametersToGui(self, mapping: dict) -> int:
            assert set(mapping) <= set(hints), set(mapping) - set(hints)  # Slicer raises ValueError here
            assert all(isinstance(widget, Widget) for widget in mapping.values()), mapping
            tag = len(self.guis) + 1
            self.guis[tag] = dict(mapping)
            return tag

        def disconnectGui(self, tag) -> None:
            self.guis.pop(tag, None)

        def AddObserver(self, event, callback, priority=0.0):
            return self.parameterNode.AddObserver(event, callback, priority)

        def RemoveObserver(self, tag) -> None:
            self.parameterNode.RemoveObserver(tag)

    Wrapper.__name__ = cls.__name__
    Wrapper.hints, Wrapper.defaults = hints, defaults
    return Wrapper


class ModuleWidgetBase:
    def __init__(self, parent=None) -> None:
        self.parent = parent or types.SimpleNamespace(isEntered=True)
        self.layout = types.SimpleNamespace(widgets=[], addWidget=lambda w: self.layout.widgets.append(w))

    def setup(self) -> None:
        pass

    def onReload(self) -> None:
        self.reloads = getattr(self, "reloads", 0) + 1

    def resourcePath(self, filename: str) -> str:
        return str(MODULE_FILE.parent / "Resources" / filename)


class ModuleLogicBase:
    def __init__(self) -> None:
        pass

    def getParameterNode(self):
        node = slicer.mrmlScene.GetSingletonNode("SegTruth", "vtkMRMLScriptedModuleNode")
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
            node.SetSingletonTag("SegTruth")
        return node


class ModuleBase:
    def __init__(self, parent) -> None:
        self.parent = parent


class Recorder:
    def __init__(self, answer=True) -> None:
        self.calls: list[tuple] = []
        self.answer = answer

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.answer


@pytest.fixture
def app(session, monkeypatch):
    """The SegTruth module file loaded against the stand-ins, on a headless scene."""
    monkeypatch.setitem(sys.modules, "qt", fake_qt())
    monkeypatch.setitem(sys.modules, "ctk", fake_ctk())
    sl = types.ModuleType("slicer.ScriptedLoadableModule")
    sl.ScriptedLoadableModule, sl.ScriptedLoadableModuleWidget = ModuleBase, ModuleWidgetBase
    sl.ScriptedLoadableModuleLogic, sl.ScriptedLoadableModuleTest = ModuleLogicBase, unittest.TestCase
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", sl)
    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    pnw.parameterNodeWrapper, pnw.WithinRange = parameter_node_wrapper, WithinRange
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", pnw)

    s = session
    monkeypatch.setattr(slicer, "mrmlScene", s.scene, raising=False)
    cursor = []
    fake_app = types.SimpleNamespace(
        applicationLogic=lambda: s.app_logic,
        setOverrideCursor=lambda c: cursor.append(c),
        restoreOverrideCursor=lambda: cursor.pop(),
        testingEnabled=lambda: True,
        majorVersion=5,
        minorVersion=11,
        slicerHome="",  # no PythonSlicer here: training runs on this interpreter
    )
    monkeypatch.setattr(slicer, "app", fake_app, raising=False)
    logics = {
        "colors": s.colors,
        "volumes": s.volumes,
        "segmentations": s.segmentations,
        "subjecthierarchy": s.subject_hierarchy,
        "terminologies": s.terminologies,
    }
    modules = types.SimpleNamespace(**{k: types.SimpleNamespace(logic=lambda v=v: v) for k, v in logics.items()})
    monkeypatch.setattr(slicer, "modules", modules, raising=False)
    monkeypatch.setattr(slicer, "qMRMLNodeComboBox", lambda: NodeComboBox("qMRMLNodeComboBox"), raising=False)
    root, ui = widgets_from_ui()
    monkeypatch.setattr(slicer.util, "loadUI", lambda path: root if Path(path) == UI_FILE else None, raising=False)
    monkeypatch.setattr(slicer.util, "childWidgetVariables", lambda widget: ui, raising=False)
    errors, confirm = Recorder(), Recorder(answer=True)
    monkeypatch.setattr(slicer.util, "errorDisplay", errors, raising=False)
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", confirm, raising=False)

    spec = importlib.util.spec_from_file_location("SegTruth", MODULE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    widget = module.SegTruthWidget()
    widget.setup()
    yield types.SimpleNamespace(module=module, widget=widget, ui=ui, root=root, errors=errors, confirm=confirm)
    widget.cleanup()


def add_data(session, path: Path):
    return session.volumes.AddArchetypeVolume(str(path), path.name.split(".")[0], 4)


def finish(app, timeout: float = 30.0) -> None:
    """Fire the poll timer until the job is over, as Qt would every 200 ms."""
    end = time.monotonic() + timeout
    while app.widget._timer.active:
        assert time.monotonic() < end
        app.widget._timer.emit("timeout()")
        time.sleep(0.01)


def finish_training(app, timeout: float = 300.0) -> None:
    """Fire the training's poll timer until the worker is done."""
    end = time.monotonic() + timeout
    while app.widget._trainTimer.active:
        assert time.monotonic() < end, "the training did not end in time"
        app.widget._trainTimer.emit("timeout()")
        time.sleep(0.05)


# -- tests ---------------------------------------------------------------------------------------------------------------
def test_module_registers_as_a_segmentation_module(app):
    parent = types.SimpleNamespace()
    app.module.SegTruth(parent)
    assert parent.title == "SegTruth" and parent.categories == ["Segmentation"]
    assert parent.helpText and parent.acknowledgementText and parent.contributors


def test_setup_binds_the_panel(app, session, two_boxes):
    ui, widget = app.ui, app.widget
    assert app.root.scene is session.scene
    assert ui.segmentEditorWidget.editorNode.GetSingletonTag() == "SegTruth"
    assert ui.segmentEditorWidget.effects[:3] == ["Threshold", "Grow from seeds", "Islands"]
    assert ui.labelTableWidget.columns == 4
    assert ui.modelComboBox.items[-1] == "Choose a model folder…" and "deepbet" in ui.modelComboBox.items
    assert ui.applyButton.text == "Apply" and not ui.applyButton.enabled
    assert ui.applyButton.toolTip == "Choose the source volume."
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    assert p.segmentation is not None  # a volume gets a segmentation for the editor
    assert ui.segmentEditorWidget.segmentation is p.segmentation and ui.segmentEditorWidget.volume is p.inputVolume
    ui.modelComboBox.emit("activated(int)", ui.modelComboBox.items.index("deepbet"))
    assert p.model == "deepbet" and ui.applyButton.enabled
    widget.enter()
    assert ui.segmentEditorWidget.shortcuts
    widget.exit()
    assert not ui.segmentEditorWidget.shortcuts


def test_apply_cancel_and_poll_through_the_buttons(app, session, two_boxes):
    from test_module_controller import FakeRunner

    ui, widget = app.ui, app.widget
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    p.model = "deepbet"
    widget.controller.runner = FakeRunner(session, steps=300, delay=0.01)
    widget.controller.missing_dependencies = lambda params: __import__(
        "SegTruthLogic.core.slicer_deps", fromlist=["Missing"]
    ).Missing()
    ui.applyButton.emit("clicked(bool)", False)
    assert widget._timer.active and ui.applyButton.text == "Cancel" and not ui.inputVolumeSelector.enabled
    assert ui.segmentEditorWidget.readOnly and ui.progressBar.visible
    ui.applyButton.emit("clicked(bool)", False)
    assert ui.applyButton.text == "Cancelling…" and not ui.applyButton.enabled
    finish(app)
    assert widget.controller.run.state is RunState.CANCELLED
    assert ui.applyButton.text == "Apply" and ui.applyButton.enabled and not ui.segmentEditorWidget.readOnly
    assert "cancelled" in ui.statusLabel.text and segment_ids(p.segmentation) == []
    assert app.errors.calls == []  # a cancel is not an error
    widget.controller.runner = FakeRunner(session, steps=3)
    ui.applyButton.emit("clicked(bool)", False)
    finish(app)
    assert widget.controller.run.state is RunState.DONE
    assert [ui.labelTableWidget.item(0, c).text() for c in range(2)] == ["liver", "4"]
    assert "Fake model labelled 1 structure." in ui.logText.lines


def test_a_failing_job_reaches_the_person_as_one_sentence(app, session, two_boxes):
    from test_module_controller import FakeRunner

    widget = app.widget
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    p.model = "deepbet"
    widget.controller.runner = FakeRunner(session, steps=1, fail="Model 'deepbet' expects a T1 image.")
    widget.controller.missing_dependencies = lambda params: __import__(
        "SegTruthLogic.core.slicer_deps", fromlist=["Missing"]
    ).Missing()
    app.ui.applyButton.emit("clicked(bool)", False)
    finish(app)
    assert app.errors.calls[-1][0] == ("Model 'deepbet' expects a T1 image.",)
    assert (
        app.ui.statusLabel.text == "Model 'deepbet' expects a T1 image." and "c0392b" in app.ui.statusLabel.styleSheet
    )


def test_apply_asks_before_installing_and_stops_when_declined(app, session, two_boxes, monkeypatch):
    from SegTruthLogic.core import slicer_deps

    widget = app.widget
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    p.model = "deepbet"
    monkeypatch.setattr(PanelController, "missing_dependencies", lambda self, p: slicer_deps.Missing(torch=True))
    app.confirm.answer = False
    app.ui.applyButton.emit("clicked(bool)", False)
    assert "PyTorch" in app.confirm.calls[0][0][0]
    assert widget.controller.run.state is RunState.IDLE and not widget._timer.active
    assert "nothing was installed" in app.ui.statusLabel.text


def test_label_table_widget_edits_reach_the_segments(app, session, two_boxes, tmp_path):
    ui, widget = app.ui, app.widget
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    threshold(session, p.segmentation, p.inputVolume, "box", 150, 250)
    ui.labelsFromSegmentsButton.emit("clicked(bool)", False)
    table = ui.labelTableWidget
    assert table.rows == 1 and table.item(0, 0).text() == "box"
    assert table.item(0, 2).background == ("brush", table.item(0, 2).text())
    table.type_into(0, 0, "kidney")
    table.type_into(0, 1, "seven")
    assert "no integer value" in ui.statusLabel.text and not ui.applyLabelsButton.enabled
    assert app.errors.calls == []  # typing mistakes show in the status line, without dialogs
    table.type_into(0, 1, "7")
    table.emit("cellDoubleClicked(int,int)", 0, 2)  # the color picker answers #00ff00
    ui.addLabelButton.emit("clicked(bool)", False)
    table.current = 1
    ui.removeLabelButton.emit("clicked(bool)", False)
    ui.applyLabelsButton.emit("clicked(bool)", False)
    segment = p.segmentation.GetSegmentation().GetSegment(segment_ids(p.segmentation)[0])
    assert segment.GetName() == "kidney" and np.allclose(segment.GetColor(), (0, 1, 0))
    Dialogs.save_file = str(tmp_path / "labels.json")
    ui.saveLabelsButton.emit("clicked(bool)", False)
    assert (tmp_path / "labels.json").is_file()
    Dialogs.open_file = str(tmp_path / "missing.csv")
    ui.loadLabelsButton.emit("clicked(bool)", False)
    assert "not found" in ui.statusLabel.text and app.errors.calls


def test_export_button_writes_and_asks_before_replacing(app, session, two_boxes, tmp_path):
    ui, widget = app.ui, app.widget
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    threshold(session, p.segmentation, p.inputVolume, "box", 150, 250)
    p.exportFolder = tmp_path
    p.exportName = "boxes"
    ui.exportButton.emit("clicked(bool)", False)
    written = tmp_path / "boxes.nii.gz"
    assert written.is_file() and (tmp_path / "boxes_qc.png").is_file(), ui.statusLabel.text
    assert ui.qcPictureLabel.pixmap == ("scaled", 420)
    before = written.read_bytes()
    app.confirm.answer = False
    ui.exportButton.emit("clicked(bool)", False)
    assert "Replace" in app.confirm.calls[-1][0][0] and written.read_bytes() == before
    assert "nothing was replaced" in ui.statusLabel.text
    app.confirm.answer = True
    p.exportFormat = ExportFormat.SEG_NRRD
    ui.exportButton.emit("clicked(bool)", False)
    assert (tmp_path / "boxes.seg.nrrd").is_file()
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(written)))
    assert int((labels == 1).sum()) == 6000


def test_an_unexpected_error_is_shown_with_details_not_raised(app, session, two_boxes, monkeypatch):
    widget = app.widget
    widget._parameterNode.inputVolume = add_data(session, two_boxes)

    def broken(self, p):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(PanelController, "plan_export", broken)
    app.ui.exportButton.emit("clicked(bool)", False)  # must not raise
    (args, kwargs) = app.errors.calls[-1]
    assert args == ("Unexpected error: division by zero",) and "ZeroDivisionError" in kwargs["detailedText"]


def test_choosing_a_model_folder(app, tmp_path):
    Dialogs.folder = str(tmp_path)
    combo = app.ui.modelComboBox
    combo.emit("activated(int)", len(combo.items) - 1)
    assert app.widget._parameterNode.model == str(tmp_path)
    assert combo.items[combo.currentIndex] == f"Folder: {tmp_path.name}"


def test_closing_the_scene_resets_the_panel(app, session, two_boxes):
    from test_module_controller import FakeRunner

    widget = app.widget
    p = widget._parameterNode
    p.inputVolume = add_data(session, two_boxes)
    p.model = "deepbet"
    widget.controller.runner = FakeRunner(session, steps=500)
    widget.controller.missing_dependencies = lambda params: __import__(
        "SegTruthLogic.core.slicer_deps", fromlist=["Missing"]
    ).Missing()
    app.ui.applyButton.emit("clicked(bool)", False)
    widget.onSceneStartClose(None, None)
    assert not widget._timer.active and widget.controller.run.state is RunState.IDLE
    assert widget._parameterNode is None
    widget.onSceneEndClose(None, None)
    assert widget._parameterNode is not None


def test_the_logic_facade_gives_the_applications_session(app, session):
    logic = app.module.SegTruthLogic()
    assert logic.session.scene is session.scene and not logic.session.headless
    assert logic.segmentEditorNode() is logic.segmentEditorNode()


def test_an_old_slicer_gets_a_message_instead_of_a_traceback(app, monkeypatch):
    monkeypatch.setattr(slicer.app, "minorVersion", 6)
    spec = importlib.util.spec_from_file_location("SegTruth", MODULE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # what Slicer 5.6 does when it finds the module
    assert not module.SUPPORTED and not hasattr(module, "SegTruthParameterNode")
    widget = module.SegTruthWidget()
    widget.setup()
    (label,) = widget.layout.widgets
    assert (
        label.name == "SegTruth needs Slicer 5.8 or newer; this is Slicer 5.6. Install a newer Slicer to use SegTruth."
    )
    widget.enter()
    widget.exit()


def test_slicer_5_8_is_supported(app, monkeypatch):
    monkeypatch.setattr(slicer.app, "minorVersion", 8)
    spec = importlib.util.spec_from_file_location("SegTruth", MODULE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SUPPORTED and hasattr(module, "SegTruthParameterNode")


def test_segtrutherror_from_a_slot_is_reported(app, monkeypatch):
    def refuse(self, p):
        raise SegTruthError("The label table is empty; add labels or take them from the segments.")

    monkeypatch.setattr(PanelController, "apply_labels", refuse)
    app.ui.applyLabelsButton.emit("clicked(bool)", False)
    assert app.ui.statusLabel.text.startswith("The label table is empty")


def load_module(path: Path = MODULE_FILE) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("SegTruth", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the one declaration of the parameters ---------------------------------------------------------------------------
def test_the_parameter_node_has_the_declarations_fields_kinds_and_defaults(app):
    wrapper = app.module.SegTruthParameterNode
    declared = PanelParameters()
    assert list(wrapper.hints) == [f.name for f in dataclasses.fields(PanelParameters)]
    dataset_id = wrapper.hints["datasetId"]
    assert typing.get_origin(dataset_id) is typing.Annotated and typing.get_args(dataset_id)[0] is int
    (within,) = typing.get_args(dataset_id)[1:]
    assert (within.low, within.high) == (1, 999)
    assert wrapper.hints["inputVolume"] is slicer.vtkMRMLScalarVolumeNode  # Slicer's node parameters, not Optional
    assert wrapper.hints["device"] is type(declared.device)
    assert {name: wrapper.defaults[name] for name in wrapper.hints} == dataclasses.asdict(declared)
    node = app.widget._parameterNode
    assert node.exportFolder == Path.home() and node.datasetName == "SegTruth" and node.inputVolume is None


def test_setup_binds_the_declared_widgets_and_exit_unbinds_them(app):
    widget, ui = app.widget, app.ui
    widget.enter()
    (mapping,) = widget._parameterNode.guis.values()
    assert mapping == {name: getattr(ui, widget_name) for name, widget_name in widget_bindings().items()}
    assert "model" not in mapping and "labelTable" not in mapping  # kept by the controller
    widget.exit()
    assert widget._parameterNode.guis == {}


# -- Reload ------------------------------------------------------------------------------------------------------------
def test_reload_forgets_segtruthlogic_before_slicer_reloads_the_module(app, monkeypatch):
    order = []
    monkeypatch.setattr(app.module, "forget_package", lambda name: order.append(("forget", name)) or [])
    monkeypatch.setattr(ModuleWidgetBase, "onReload", lambda self: order.append(("reload module",)))
    app.widget.onReload()
    assert order == [("forget", "SegTruthLogic"), ("reload module",)]


def test_reload_on_an_old_slicer_reloads_only_the_module(app, monkeypatch):
    monkeypatch.setattr(slicer.app, "minorVersion", 6)
    module = load_module()
    widget = module.SegTruthWidget()
    widget.setup()
    widget.onReload()
    assert widget.reloads == 1 and "SegTruthLogic.gui" in sys.modules


# -- translations ------------------------------------------------------------------------------------------------------
def test_visible_text_goes_through_slicers_translation(app, monkeypatch):
    """With ``slicer.i18n`` (Slicer >= 5.4) each string is looked up, in the context of SegTruth.py's file."""
    callers = []
    i18n = types.ModuleType("slicer.i18n")

    def tr(text):
        callers.append(Path(sys._getframe(1).f_code.co_filename).name)
        return f"«{text}»"

    i18n.tr, i18n.translate = tr, lambda context, text: f"{context}:{text}"
    monkeypatch.setitem(sys.modules, "slicer.i18n", i18n)
    module = load_module()
    parent = types.SimpleNamespace()
    module.SegTruth(parent)
    assert parent.title == "«SegTruth»" and parent.categories == ["qSlicerAbstractCoreModule:Segmentation"]
    assert parent.helpText.startswith("«Ground-truth") and module.COLUMN_TITLES[0] == "«Name»"
    widget = module.SegTruthWidget()
    widget.setup()
    assert app.ui.modelComboBox.items[-1] == "«Choose a model folder…»"
    assert set(callers) == {"SegTruth.py"}
    widget.cleanup()


def test_without_slicer_i18n_the_text_is_the_source_text(app, monkeypatch):
    monkeypatch.setattr(slicer.app, "minorVersion", 2)  # Slicer 5.2: no slicer.i18n, and too old
    monkeypatch.setitem(sys.modules, "slicer.i18n", None)
    module = load_module()
    assert module.VERSION_MESSAGE == (
        "SegTruth needs Slicer 5.8 or newer; this is Slicer 5.2. Install a newer Slicer to use SegTruth."
    )
    parent = types.SimpleNamespace()
    module.SegTruth(parent)
    assert parent.title == "SegTruth" and parent.categories == ["Segmentation"]


def test_train_and_stop_through_the_button(app, tmp_path):
    from training_support import chest_lungs, write_nnunet

    ui, widget = app.ui, app.widget
    p = widget._parameterNode
    p.nnunetFolder = tmp_path / "nnUNet_raw"
    widget.refresh()
    assert not ui.trainButton.enabled and "has no dataset.json" in ui.trainButton.toolTip  # nothing exported yet
    image, lungs = chest_lungs()
    write_nnunet(tmp_path / "nnUNet_raw" / "Dataset001_SegTruth", [("chest", image, lungs)])
    widget.refresh()
    assert ui.trainButton.enabled and ui.trainDatasetPathLabel.text.endswith("Dataset001_SegTruth")
    widget.training.options = {"epochs": 2, "iterations": 2, "filters": 4, "seed": 1}
    p.device = type(p.device)("cpu")
    ui.trainButton.emit("clicked(bool)", False)
    assert widget._trainTimer.active and ui.trainButton.text == "Stop" and ui.trainProgressBar.visible
    assert ui.applyButton.enabled or ui.applyButton.toolTip  # the rest of the panel is not locked by training
    finish_training(app)
    model = tmp_path / "segtruth-models" / "Dataset001_SegTruth"
    assert (model / "model.card.json").is_file() and p.model == str(model)
    assert ui.trainButton.text == "Train" and not ui.trainProgressBar.visible
    assert ui.trainStatusLabel.text.startswith("Trained Dataset001_SegTruth: 2 epoch(s)")
    before = (model / "model.pt").read_bytes()

    widget.training.options = {"epochs": 500, "iterations": 2, "filters": 4, "seed": 1}
    ui.trainButton.emit("clicked(bool)", False)  # fine-tunes the model just written (the box is ticked)
    assert "fine-tuning" in ui.trainStatusLabel.text
    end = time.monotonic() + 300
    while not ui.trainStatusLabel.text.startswith("epoch ") and time.monotonic() < end:
        widget._trainTimer.emit("timeout()")
        time.sleep(0.05)
    ui.trainButton.emit("clicked(bool)", False)  # Stop
    assert ui.trainButton.text == "Stopping…" and not ui.trainButton.enabled
    finish_training(app, 60)
    assert ui.trainStatusLabel.text == "Training stopped; the previous model stays as it was."
    assert (model / "model.pt").read_bytes() == before and app.errors.calls == []
