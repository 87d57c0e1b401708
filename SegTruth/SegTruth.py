"""SegTruth Slicer module: GUI glue over SegTruthLogic (all behaviour lives there)."""

from __future__ import annotations

import os
import sys

import slicer
import vtk
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# SegTruthLogic, Resources and Testing are installed beside this file; in a source checkout they are one
# folder up (add SegTruth/ to Slicer's additional module paths to develop).
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = _HERE if os.path.isdir(os.path.join(_HERE, "SegTruthLogic")) else os.path.dirname(_HERE)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from SegTruthLogic import SegTruthError, Session  # noqa: E402


class SegTruth(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "SegTruth"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["Segmentations", "Terminologies"]
        self.parent.contributors = ["SegTruth developers"]
        self.parent.helpText = (
            "Create ground-truth segmentations and export them on the source image's exact grid with stable "
            "label values. See the README for the command line and Python console use."
        )
        self.parent.acknowledgementText = "Built on 3D Slicer's Segmentations module logic."


@parameterNodeWrapper
class SegTruthParameterNode:
    inputVolume: slicer.vtkMRMLScalarVolumeNode
    segmentation: slicer.vtkMRMLSegmentationNode
    labelTablePath: str = ""
    outputPath: str = ""


class SegTruthWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SegTruth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SegTruthLogic()
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, node) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
        self._parameterNode = node
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        self.ui.exportButton.enabled = bool(p and p.inputVolume and p.segmentation and p.outputPath)

    def onExport(self) -> None:
        p = self._parameterNode
        try:
            path = self.logic.export(p.segmentation, p.inputVolume, p.outputPath, p.labelTablePath or None)
        except SegTruthError as error:
            self.ui.statusLabel.text = str(error)
            slicer.util.errorDisplay(str(error))
            return
        self.ui.statusLabel.text = f"Wrote {path}"


class SegTruthLogic(ScriptedLoadableModuleLogic):
    """Facade for the Python console: the application's scene wrapped in a SegTruth session."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SegTruthParameterNode(super().getParameterNode())

    @property
    def session(self) -> Session:
        return Session.from_slicer()

    def export(self, segmentationNode, volumeNode, path: str, labelTablePath: str | None = None):
        from SegTruthLogic.export import export
        from SegTruthLogic.labels import LabelTable

        table = LabelTable.read(labelTablePath) if labelTablePath else None
        return export(self.session, segmentationNode, volumeNode, path, table)


class SegTruthTest(ScriptedLoadableModuleTest):
    """Runs the Testing/ pytest suite inside Slicer, so Slicer's ctest exercises the same tests as CI."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_pytest_suite()

    def test_pytest_suite(self) -> None:
        try:
            import pytest
        except ImportError:
            slicer.util.pip_install("pytest hypothesis nibabel")
            import pytest
        testing = os.path.join(_ROOT, "Testing")
        result = pytest.main([testing, "-q", "-p", "no:cacheprovider"])
        self.assertEqual(result, 0, f"pytest in {testing} failed with exit code {result}")
