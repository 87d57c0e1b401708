"""One entry point to Slicer's scene and module logics, headless or inside the Slicer application.

Headless (plain Python on the ``slicer-core`` wheel, or a test), ``Session.headless()`` builds a
``vtkMRMLScene`` and the Colors, Volumes, Segmentations, Subject hierarchy and Terminologies logics the
way the Slicer application wires them. Inside Slicer, ``Session.from_slicer()`` wraps ``slicer.mrmlScene``
and the application's own logics. Algorithms receive the session (never a global), so a script, the CLI
and the GUI run the same code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import slicer
import vtk


def _resources() -> Path:
    """Resources/ beside the package in a checkout or a Slicer module; inside the package when pip-installed."""
    here = Path(__file__).resolve().parent.parent  # the package folder: this module is in scene/
    installed = here / "Resources"
    return installed if installed.is_dir() else here.parent / "Resources"


RESOURCES = _resources()
TERMINOLOGY_DIR = RESOURCES / "Terminologies"


@contextmanager
def quiet_vtk() -> Iterator[None]:
    """Silence VTK/MRML warnings for a block (logics complain about files only the full app ships)."""
    previous = vtk.vtkObject.GetGlobalWarningDisplay()
    vtk.vtkObject.GlobalWarningDisplayOff()
    try:
        yield
    finally:
        vtk.vtkObject.SetGlobalWarningDisplay(previous)


def _installed_slicer_terminologies() -> Path | None:
    """Slicer's standard terminology files, when a package that ships them is installed."""
    try:
        import trame_slicer  # type: ignore[import-not-found]
    except ImportError:
        return None
    folder = Path(trame_slicer.__file__).parent / "resources" / "terminologies"
    return folder if folder.is_dir() else None


def load_segtruth_terminologies(terminologies: slicer.vtkSlicerTerminologiesModuleLogic) -> None:
    """Add SegTruth's own terminology context (Resources/Terminologies) to a terminologies logic."""
    for term_file in sorted(TERMINOLOGY_DIR.glob("*.term.json")):
        with quiet_vtk():
            terminologies.LoadTerminologyFromFile(str(term_file))


def drop_duplicate_converter_rules() -> None:
    """Keep one of each representation converter in Slicer's process-wide converter factory.

    Every Segmentations logic given a scene registers the converters again, and every segmentation made or copied
    afterwards instantiates all of them: after a thousand sessions in one process (a test run, a long-lived web
    server opening case after case), copying one segmentation for undo took 2.6 s instead of milliseconds.
    """
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    seen: set[str] = set()
    for rule in factory.GetConverterRules():
        name = rule.GetName()
        if name in seen:
            factory.UnregisterConverterRule(rule)
        seen.add(name)


@dataclass
class Session:
    """A MRML scene with the module logics SegTruth uses."""

    scene: slicer.vtkMRMLScene
    app_logic: slicer.vtkSlicerApplicationLogic
    colors: slicer.vtkSlicerColorLogic
    volumes: slicer.vtkSlicerVolumesLogic
    segmentations: slicer.vtkSlicerSegmentationsModuleLogic
    subject_hierarchy: slicer.vtkSlicerSubjectHierarchyModuleLogic
    terminologies: slicer.vtkSlicerTerminologiesModuleLogic
    headless: bool = True
    _editor: slicer.vtkSlicerSegmentEditorLogic | None = field(default=None, repr=False)

    @classmethod
    def create(cls) -> Session:
        """The Slicer application's scene when running inside Slicer, else a new headless scene."""
        if hasattr(slicer, "app") and hasattr(slicer, "mrmlScene"):
            return cls.from_slicer()
        return cls.new_headless()

    @classmethod
    def from_slicer(cls) -> Session:
        """Wrap the running Slicer application's scene and logics."""
        modules = slicer.modules
        return cls(
            scene=slicer.mrmlScene,
            app_logic=slicer.app.applicationLogic(),
            colors=modules.colors.logic(),
            volumes=modules.volumes.logic(),
            segmentations=modules.segmentations.logic(),
            subject_hierarchy=modules.subjecthierarchy.logic(),
            terminologies=modules.terminologies.logic(),
            headless=False,
        )

    @classmethod
    def new_headless(cls) -> Session:
        """Build a scene and the module logics on slicer-core, as the application does at start-up."""
        scene = slicer.vtkMRMLScene()
        app_logic = slicer.vtkSlicerApplicationLogic()
        app_logic.SetMRMLScene(scene)

        def register(name: str, logic):
            with quiet_vtk():
                logic.SetMRMLApplicationLogic(app_logic)
                logic.SetMRMLScene(scene)
            app_logic.SetModuleLogic(name, logic)
            return logic

        colors = slicer.vtkSlicerColorLogic()
        register("Colors", colors)
        with quiet_vtk():
            colors.AddDefaultColorNodes()
        volumes = register("Volumes", slicer.vtkSlicerVolumesLogic())
        # Registers the labelmap <-> closed surface converters; AddEmptySegment fails without it.
        segmentations = register("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic())
        drop_duplicate_converter_rules()
        subject_hierarchy = register("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic())
        terminologies = slicer.vtkSlicerTerminologiesModuleLogic()
        terminologies.SetModuleShareDirectory(str(_installed_slicer_terminologies() or TERMINOLOGY_DIR))
        register("Terminologies", terminologies)
        load_segtruth_terminologies(terminologies)
        return cls(scene, app_logic, colors, volumes, segmentations, subject_hierarchy, terminologies)

    @property
    def editor(self) -> slicer.vtkSlicerSegmentEditorLogic:
        """Slicer's Segment Editor logic (masking, overwrite, undo) bound to this scene."""
        if self._editor is None:
            editor = slicer.vtkSlicerSegmentEditorLogic()
            editor.SetMRMLApplicationLogic(self.app_logic)
            editor.SetMRMLScene(self.scene)
            node = self.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode", "SegTruthEditor")
            node.SetHideFromEditors(True)
            editor.SetSegmentEditorNode(node)
            self._editor = editor
        return self._editor

    def remove(self, *nodes: slicer.vtkMRMLNode | None) -> None:
        """Remove nodes (and their display/storage nodes) from the scene."""
        for node in nodes:
            if node is not None and self.scene.IsNodePresent(node):
                # Display nodes keep a pipeline connection to the node's image data: left in the scene, they
                # keep every removed volume in memory.
                helpers = []
                if hasattr(node, "GetNumberOfDisplayNodes"):
                    helpers += [node.GetNthDisplayNode(n) for n in range(node.GetNumberOfDisplayNodes())]
                if hasattr(node, "GetNumberOfStorageNodes"):
                    helpers += [node.GetNthStorageNode(n) for n in range(node.GetNumberOfStorageNodes())]
                self.scene.RemoveNode(node)
                for helper in helpers:
                    if helper is not None and self.scene.IsNodePresent(helper):
                        self.scene.RemoveNode(helper)

    def clear(self) -> None:
        """Empty the scene between cases of a batch (keeps the default color nodes)."""
        self._editor = None
        self.scene.Clear(False)
