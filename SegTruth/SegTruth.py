"""SegTruth Slicer module: one panel from a loaded scan to a verified export.

This file is glue. Every decision (what is enabled, what Apply and Export do, the run's states, the label
table) is made by ``SegTruthLogic.gui.PanelController``, which has no Qt and is tested headless. It and
SegTruthLogic keep to Python 3.9 (Slicer 5.8); an older Slicer loads the module and says what it needs.
"""

import contextlib
import enum
import logging
import os
import sys
import traceback

import ctk
import qt
import slicer
import vtk
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer before 5.4 (it gets the version message below) and slicer-core have no translations

    def _(text):
        return text

    def translate(context, text):
        return text


# SegTruthLogic, Resources and Testing are installed beside this file; in a source checkout they are one
# folder up (add SegTruth/ to Slicer's additional module paths to develop).
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = _HERE if os.path.isdir(os.path.join(_HERE, "SegTruthLogic")) else os.path.dirname(_HERE)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

MIN_SLICER = (5, 8)


def slicerVersion():
    """(major, minor) of the running Slicer."""
    return (int(slicer.app.majorVersion), int(slicer.app.minorVersion))


SLICER_VERSION = slicerVersion()
SUPPORTED = SLICER_VERSION >= MIN_SLICER
VERSION_MESSAGE = _(
    "SegTruth needs Slicer {needed} or newer; this is Slicer {running}. Install a newer Slicer to use SegTruth."
).format(needed=".".join(map(str, MIN_SLICER)), running=".".join(map(str, SLICER_VERSION)))

if SUPPORTED:
    from SegTruthLogic import SegTruthError, Session
    from SegTruthLogic.core import slicer_deps
    from SegTruthLogic.gui import (
        COLUMNS,
        TERMINOLOGY_HELP,
        TOOLS_BY_KEY,
        VIEW_WIDGETS,
        ExtraToolsController,
        PanelController,
        RunState,
        ToolParameters,
        TrainingController,
        bound_widgets,
        dicom_source_from_database,
        effect_order,
        forget_package,
        missing_effects_note,
        offered_tools,
        parameter_node_class,
        python_slicer,
        seed_points,
        tool_fields,
    )

COLUMN_TITLES = [_("Name"), _("Value"), _("Color"), _("Terminology")]
POLL_MS = 200


class SegTruth(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SegTruth")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["Segmentations", "Terminologies"]
        self.parent.contributors = ["SegTruth developers"]
        self.parent.helpText = _(
            "Ground-truth segmentations for deep learning, in one panel: choose the scan, auto-segment it with "
            "a model (Apply; press again to cancel), correct with the Segment Editor's Grow from seeds, Islands "
            "and other tools, check the label table (names, values, colors, terminology) and export on the "
            "source image's exact grid, optionally adding the case to an nnU-Net dataset. "
            "The README shows the same steps for the Python console."
        )
        self.parent.acknowledgementText = _("Built on 3D Slicer's Segmentations, Segment Editor and Terminologies.")


if SUPPORTED:
    # The panel's settings, saved with the scene: the fields of SegTruthLogic.gui.PanelParameters.
    SegTruthParameterNode = parameter_node_class("SegTruthParameterNode", __name__, parameterNodeWrapper, WithinRange)


def dicomSourceFromDatabase(volume):
    """The DICOM series folder of a volume, from its attributes or Slicer's DICOM database."""
    return dicom_source_from_database(volume, getattr(slicer, "dicomDatabase", None))


class SegTruthWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.controller = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._timer = None
        self._refreshing = False
        self._modelFolders = []
        self._modelChoices = []
        self._shownTable = None
        self._shownLog = 0
        self._volumeId = None
        self.extraTools = None
        self.toolSettings = None
        self.toolsSection = None
        self.pointsSelector = None
        self.training = None
        self._trainTimer = None

    # -- set-up ------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        if not SUPPORTED:
            label = qt.QLabel(VERSION_MESSAGE)
            label.wordWrap = True
            self.layout.addWidget(label)
            return
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SegTruth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        self.logic = SegTruthLogic()
        self.controller = PanelController(self.logic.session, dicom_source=dicomSourceFromDatabase)

        editor = self.ui.segmentEditorWidget
        editor.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        uiWidget.setMRMLScene(slicer.mrmlScene)
        available = list(editor.availableEffectNames())
        editor.setEffectNameOrder(effect_order(available))
        editor.unorderedEffectsVisible = True
        note = missing_effects_note(available)
        if note:  # without SegmentEditorExtraEffects: say where the same tools are
            label = qt.QLabel(note)
            label.wordWrap = True
            self.layout.addWidget(label)
        self.extraTools = ExtraToolsController(self.logic.session, self.controller.say)
        self.toolSettings = ToolParameters()
        offered = offered_tools(available)
        if offered:  # SegTruth's own Fast Marching, Watershed, Local threshold, Flood fill in their place
            self.buildToolsSection(offered)

        self.ui.labelTableWidget.setColumnCount(len(COLUMNS))
        self.ui.labelTableWidget.setHorizontalHeaderLabels(COLUMN_TITLES)
        self.ui.labelTableWidget.horizontalHeader().setStretchLastSection(True)

        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.modelComboBox.connect("activated(int)", self.onModelChosen)
        self.ui.labelTableWidget.connect("cellChanged(int,int)", self.onLabelEdited)
        self.ui.labelTableWidget.connect("cellDoubleClicked(int,int)", self.onLabelDoubleClicked)
        self.ui.addLabelButton.connect("clicked(bool)", self.onAddLabel)
        self.ui.removeLabelButton.connect("clicked(bool)", self.onRemoveLabel)
        self.ui.labelsFromSegmentsButton.connect("clicked(bool)", self.onLabelsFromSegments)
        self.ui.loadLabelsButton.connect("clicked(bool)", self.onLoadLabels)
        self.ui.saveLabelsButton.connect("clicked(bool)", self.onSaveLabels)
        self.ui.applyLabelsButton.connect("clicked(bool)", self.onApplyLabels)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.training = TrainingController(python_slicer(slicer.app.slicerHome))
        self.ui.trainButton.connect("clicked(bool)", self.onTrain)

        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.connect("timeout()", self.onPoll)
        self._trainTimer = qt.QTimer()
        self._trainTimer.setInterval(POLL_MS)
        self._trainTimer.connect("timeout()", self.onTrainPoll)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self.fillModels()

    def buildToolsSection(self, tools) -> None:
        """One collapsible section: a row per declared setting (SegTruthLogic.gui.ToolParameters), a button per tool."""
        section = ctk.ctkCollapsibleButton()
        section.text = _("SegTruth tools")
        section.collapsed = True
        form = qt.QFormLayout(section)
        self.pointsSelector = slicer.qMRMLNodeComboBox()
        self.pointsSelector.nodeTypes = ["vtkMRMLMarkupsFiducialNode"]
        self.pointsSelector.noneEnabled = True
        self.pointsSelector.addEnabled = True
        self.pointsSelector.removeEnabled = False
        self.pointsSelector.setMRMLScene(slicer.mrmlScene)
        self.pointsSelector.toolTip = _(
            "Points for Local threshold and Flood fill: the point list's points; with none, the crosshair "
            "(Shift + mouse move in a view)."
        )
        form.addRow(_("Points:"), self.pointsSelector)
        for tool in tools:
            title = qt.QLabel(tool.title)
            title.toolTip = tool.help
            form.addRow(title)
            for setting in tool_fields(tool.key):
                form.addRow(setting.metadata["label"], self.settingWidget(setting))
            button = qt.QPushButton(tool.action)
            button.toolTip = tool.help
            button.connect("clicked()", lambda key=tool.key: self.onTool(key))
            form.addRow(button)
        self.toolsSection = section
        self.layout.addWidget(section)

    def settingWidget(self, setting):
        value = getattr(self.toolSettings, setting.name)
        if isinstance(value, enum.Enum):
            choices = list(type(value))
            combo = qt.QComboBox()
            for choice in choices:
                combo.addItem(choice.label())
            combo.currentIndex = choices.index(value)
            combo.connect(
                "currentIndexChanged(int)", lambda index, name=setting.name: self.onSetting(name, choices[index])
            )
            return combo
        slider = ctk.ctkSliderWidget()
        slider.minimum, slider.maximum = setting.metadata["range"]
        slider.decimals = setting.metadata["decimals"]
        slider.singleStep = setting.metadata["step"]
        slider.value = value
        slider.connect("valueChanged(double)", lambda number, name=setting.name: self.onSetting(name, number))
        return slider

    def cleanup(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self._trainTimer is not None:
            self._trainTimer.stop()
        if self.training is not None:
            self.training.close()
        if self.controller is not None:
            self.controller.scene_closed()
        self.removeObservers()

    def onReload(self) -> None:
        """Reload reads the SegTruthLogic package again too; Slicer's own Reload re-runs only this file."""
        if SUPPORTED:
            forget_package("SegTruthLogic")
        ScriptedLoadableModuleWidget.onReload(self)

    def enter(self) -> None:
        if not SUPPORTED:
            return
        self.initializeParameterNode()
        self.ui.segmentEditorWidget.installKeyboardShortcuts()
        self.ui.segmentEditorWidget.updateWidgetFromMRML()

    def exit(self) -> None:
        if not SUPPORTED:
            return
        editor = self.ui.segmentEditorWidget
        editor.setActiveEffect(None)
        editor.uninstallKeyboardShortcuts()
        editor.removeViewObservations()
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.refresh)

    def onSceneStartClose(self, caller, event) -> None:
        self._timer.stop()
        self.controller.scene_closed()
        self.extraTools.forget()
        self.ui.segmentEditorWidget.setSegmentationNode(None)
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditorNode())
        if self.parent.isEntered:
            self.initializeParameterNode()

    # -- parameter node ----------------------------------------------------------------------------------------
    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.inputVolume = firstVolume

    def setParameterNode(self, node) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.refresh)
        self._parameterNode = node
        self._shownTable = None
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectParametersToGui(bound_widgets(self.ui))
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.refresh)
            self.refresh()

    # -- showing the controller's state ----------------------------------------------------------------------
    def refresh(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None or self.controller is None or self._refreshing:
            return
        self._refreshing = True
        try:
            volumeId = p.inputVolume.GetID() if p.inputVolume else None
            if volumeId != self._volumeId:
                self._volumeId = volumeId
                self.controller.ensure_segmentation(p)
            self.controller.parameters_changed(p)
            self.showView(self.controller.view(p))
            self.syncEditor(p)
            self.showLabelTable()
            self.selectModel(p.model)
        finally:
            self._refreshing = False

    def showView(self, view) -> None:
        ui = self.ui
        ui.applyButton.text = view.apply_text
        for control, names in VIEW_WIDGETS.items():
            self.enable([getattr(ui, name) for name in names], getattr(view, control))
        ui.segmentEditorWidget.readOnly = not view.editor.enabled
        if self.toolsSection is not None:
            self.enable([self.toolsSection], view.editor)
        ui.progressBar.visible = view.progress_visible
        ui.progressBar.value = round(view.progress * 100)
        ui.statusLabel.text = view.status
        ui.statusLabel.setStyleSheet("color: #c0392b;" if view.error else "")
        self.showTraining(self.training.view(self._parameterNode))
        lines = self.controller.log
        for line in lines[self._shownLog :]:
            ui.logText.appendPlainText(line)
        self._shownLog = len(lines)

    def showTraining(self, view) -> None:
        ui = self.ui
        ui.trainDatasetPathLabel.text = view.dataset
        ui.trainButton.text = view.button_text
        ui.trainButton.enabled = view.button_enabled
        ui.trainButton.toolTip = view.button_reason or _("Trains in a separate process: keep working meanwhile")
        ui.trainProgressBar.visible = view.progress_visible
        ui.trainProgressBar.value = round(view.progress * 100)
        ui.trainStatusLabel.text = view.status
        ui.trainStatusLabel.setStyleSheet("color: #c0392b;" if view.error else "")

    @staticmethod
    def enable(widgets, control) -> None:
        for widget in widgets:
            widget.enabled = control.enabled
            widget.toolTip = "" if control.enabled else control.reason

    def syncEditor(self, p) -> None:
        """The embedded Segment Editor edits the panel's segmentation on the panel's source volume."""
        editor = self.ui.segmentEditorWidget
        segmentationId = p.segmentation.GetID() if p.segmentation else ""
        if editor.segmentationNodeID() != segmentationId:
            editor.setSegmentationNode(p.segmentation)
        volumeId = p.inputVolume.GetID() if p.inputVolume else ""
        if editor.sourceVolumeNodeID() != volumeId:
            editor.setSourceVolumeNode(p.inputVolume)

    def showLabelTable(self) -> None:
        rows = self.controller.labels.rows
        shown = self.controller.labels.to_json()
        if shown == self._shownTable:
            return
        self._shownTable = shown
        table = self.ui.labelTableWidget
        table.blockSignals(True)
        try:
            table.setRowCount(len(rows))
            for r, row in enumerate(rows):
                for c, column in enumerate(COLUMNS):
                    item = qt.QTableWidgetItem(row.cell(c))
                    if column == "color":
                        item.setFlags(qt.Qt.ItemIsSelectable | qt.Qt.ItemIsEnabled)
                        if qt.QColor.isValidColor(row.color):
                            item.setBackground(qt.QBrush(qt.QColor(row.color)))
                        item.setToolTip(_("Double-click to choose the color."))
                    elif column == "terminology":
                        item.setToolTip(TERMINOLOGY_HELP)
                    table.setItem(r, c, item)
        finally:
            table.blockSignals(False)

    def fillModels(self) -> None:
        self._modelChoices = self.controller.model_choices(self._modelFolders)
        combo = self.ui.modelComboBox
        combo.blockSignals(True)
        try:
            combo.clear()
            for index, choice in enumerate(self._modelChoices):
                combo.addItem(choice.label)
                combo.setItemData(index, choice.description, qt.Qt.ToolTipRole)
            combo.addItem(_("Choose a model folder…"))
        finally:
            combo.blockSignals(False)
        if self._parameterNode:
            self.selectModel(self._parameterNode.model)

    def selectModel(self, key) -> None:
        keys = [choice.key for choice in self._modelChoices]
        if key and key not in keys and os.path.isdir(key):
            self._modelFolders.append(key)
            self.fillModels()
            return
        combo = self.ui.modelComboBox
        combo.blockSignals(True)
        combo.currentIndex = keys.index(key) if key in keys else -1
        combo.blockSignals(False)

    @contextlib.contextmanager
    def reported(self, dialog=True):
        """Errors reach the person as one sentence (with details for the unexpected), never as a traceback."""
        logged = len(self.controller.log)
        try:
            yield
        except SegTruthError as error:
            self.controller.say(str(error), error=True)
        except Exception as error:
            logging.exception("SegTruth")
            message = _("Unexpected error: {error}").format(error=error)
            self.controller.say(message, error=True)
            if dialog:
                slicer.util.errorDisplay(message, detailedText=traceback.format_exc())
            dialog = False
        self.refresh()
        if dialog and self.controller.error and len(self.controller.log) > logged:
            slicer.util.errorDisplay(self.controller.status, windowTitle=_("SegTruth"))

    # -- auto-segment ------------------------------------------------------------------------------------------
    def onModelChosen(self, index) -> None:
        with self.reported(dialog=False):
            if index == len(self._modelChoices):
                folder = qt.QFileDialog.getExistingDirectory(
                    self.parent, _("Model folder (nnU-Net results, MONAI bundle, or a folder with a .card.json)")
                )
                if folder:
                    self._modelFolders.append(folder)
                    self._parameterNode.model = folder
                self.fillModels()
            elif 0 <= index < len(self._modelChoices):
                self._parameterNode.model = self._modelChoices[index].key

    def onApply(self) -> None:
        p = self._parameterNode
        with self.reported():
            if not self.controller.run.busy:
                needed = self.controller.missing_dependencies(p)
                if needed:
                    if not slicer_deps.install(needed, confirm=self.confirmInstall):
                        self.controller.say(_("Auto-segmentation needs those packages; nothing was installed."), True)
                        return
                    self.fillModels()
            self.controller.apply(p)
            if self.controller.run.state is RunState.RUNNING:
                self._timer.start()

    @staticmethod
    def confirmInstall(text) -> bool:
        return slicer.util.confirmOkCancelDisplay(text, windowTitle=_("SegTruth: install Python packages"))

    def onPoll(self) -> None:
        with self.reported():
            if not self.controller.poll(self._parameterNode):
                self._timer.stop()

    # -- training ------------------------------------------------------------------------------------------------
    def onTrain(self) -> None:
        with self.reported(dialog=False):
            self.training.toggle(self._parameterNode)
            if self.training.busy:
                self._trainTimer.start()

    def onTrainPoll(self) -> None:
        with self.reported(dialog=False):
            if not self.training.poll():
                self._trainTimer.stop()
                if self.training.trained is not None:  # the new model joins the Auto-segment list, chosen
                    self._parameterNode.model = str(self.training.trained)

    # -- SegTruth tools (without SegmentEditorExtraEffects) -------------------------------------------------------
    def onTool(self, key) -> None:
        points = []
        if TOOLS_BY_KEY[key].needs_points:
            crosshair = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
            points = seed_points(self.pointsSelector.currentNode(), crosshair)
        with self.reported(dialog=False):
            needed = self.extraTools.missing_dependencies(key)
            if needed and not slicer_deps.install(needed, confirm=self.confirmInstall):
                self.controller.say(_("This tool needs those packages; nothing was installed."), True)
                return
            self.ui.segmentEditorWidget.saveStateForUndo()
            slicer.app.setOverrideCursor(qt.Qt.WaitCursor)
            try:
                self.extraTools.run_in_editor(
                    key, self._parameterNode, self.logic.segmentEditorNode(), self.toolSettings, points
                )
            finally:
                slicer.app.restoreOverrideCursor()

    def onSetting(self, name, value) -> None:
        with self.reported(dialog=False):
            self.extraTools.change_setting(
                self.toolSettings, name, value, self._parameterNode, self.logic.segmentEditorNode()
            )

    # -- labels --------------------------------------------------------------------------------------------------
    def onLabelEdited(self, row, column) -> None:
        with self.reported(dialog=False):
            item = self.ui.labelTableWidget.item(row, column)
            self.controller.edit_label(self._parameterNode, row, column, item.text() if item else "")

    def onLabelDoubleClicked(self, row, column) -> None:
        if COLUMNS[column] != "color":
            return
        with self.reported(dialog=False):
            current = self.controller.labels.rows[row].color
            color = qt.QColorDialog.getColor(qt.QColor(current), self.parent, _("Label color"))
            if color.isValid():
                self.controller.edit_label(self._parameterNode, row, column, color.name())

    def onAddLabel(self) -> None:
        with self.reported(dialog=False):
            self.controller.add_label(self._parameterNode)

    def onRemoveLabel(self) -> None:
        with self.reported(dialog=False):
            self.controller.remove_label(self._parameterNode, self.ui.labelTableWidget.currentRow())

    def onLabelsFromSegments(self) -> None:
        with self.reported():
            self.controller.labels_from_segments(self._parameterNode)

    def onLoadLabels(self) -> None:
        path = qt.QFileDialog.getOpenFileName(self.parent, _("Load label table"), "", _("Label tables (*.csv *.json)"))
        if path:
            with self.reported():
                self.controller.load_labels(self._parameterNode, path)

    def onSaveLabels(self) -> None:
        path = qt.QFileDialog.getSaveFileName(self.parent, _("Save label table"), "", _("Label tables (*.csv *.json)"))
        if path:
            with self.reported():
                self.controller.save_labels(path)

    def onApplyLabels(self) -> None:
        with self.reported():
            self.controller.apply_labels(self._parameterNode)

    # -- export --------------------------------------------------------------------------------------------------
    def onExport(self) -> None:
        p = self._parameterNode
        with self.reported():
            plan = self.controller.plan_export(p)
            if plan is None:
                return
            overwrite = False
            if plan.existing:
                question = _("Replace {files}? The existing annotation will be lost.").format(
                    files=", ".join(plan.existing)
                )
                if not slicer.util.confirmOkCancelDisplay(question, windowTitle=_("SegTruth export")):
                    self.controller.say(_("Export cancelled; nothing was replaced."))
                    return
                overwrite = True
            slicer.app.setOverrideCursor(qt.Qt.WaitCursor)
            try:
                result = self.controller.export(p, plan, overwrite=overwrite)
            finally:
                slicer.app.restoreOverrideCursor()
            if result is not None and plan.qc_path is not None and plan.qc_path.is_file():
                picture = qt.QPixmap(str(plan.qc_path))
                self.ui.qcPictureLabel.setPixmap(picture.scaledToWidth(min(picture.width(), 420)))
                self.ui.qcPictureLabel.toolTip = str(plan.qc_path)


class SegTruthLogic(ScriptedLoadableModuleLogic):
    """For the Python console: the application's scene as a SegTruth session, and the panel's parameter node.

    Everything else is in the SegTruthLogic package (see the README's console section).
    """

    EDITOR_NODE_TAG = "SegTruth"

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._session = None

    def getParameterNode(self):
        return SegTruthParameterNode(super().getParameterNode())

    @property
    def session(self):
        if self._session is None or self._session.scene is not slicer.mrmlScene:
            self._session = Session.from_slicer()
        return self._session

    def segmentEditorNode(self):
        """The Segment Editor node of the SegTruth panel (its own, so the Segment Editor module keeps its state)."""
        node = slicer.mrmlScene.GetSingletonNode(self.EDITOR_NODE_TAG, "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLSegmentEditorNode")
            node.UnRegister(None)
            node.SetSingletonTag(self.EDITOR_NODE_TAG)
            node = slicer.mrmlScene.AddNode(node)
        return node


class SegTruthTest(ScriptedLoadableModuleTest):
    """Runs the Testing/ pytest suite inside Slicer, so Slicer's ctest exercises the same tests as CI."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_pytest_suite()

    def test_pytest_suite(self) -> None:
        if not SUPPORTED:
            self.skipTest(VERSION_MESSAGE)
        from SegTruthLogic.gui.selftest import run_suite

        testing = os.path.join(_ROOT, "Testing")
        result = run_suite(testing)
        self.assertEqual(result, 0, f"pytest in {testing} failed with exit code {result}")
