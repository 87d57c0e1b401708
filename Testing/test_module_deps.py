"""Dependencies the Slicer way: what is missing, asking first, PyTorchUtils for torch, pip with Slicer's pins.

Slicer's ``slicer.packaging`` / ``slicer.util.pip_install`` and the PyTorch extension's ``PyTorchUtils`` are not
here, so they are replaced by recorders with the same signatures (Slicer 5.11+ ``pip_ensure(requirements,
constraints=, prompt_install=, requester=, skip_in_testing=)``, ``pip_install(requirements, constraints=,
requester=)``; 5.8 ``slicer.util.pip_install(requirements)``; ``PyTorchUtilsLogic.installTorch(askConfirmation=,
torchVersionRequirement=)``).
"""

from __future__ import annotations

import importlib.metadata
import sys
import types
from pathlib import Path

import pytest
import slicer

from SegTruthLogic import SegTruthError
from SegTruthLogic.core import slicer_deps
from SegTruthLogic.core.slicer_deps import Missing


@pytest.fixture
def calls():
    return []


@pytest.fixture
def installed(monkeypatch):
    """Packages that 'become installed' when a recorder installs them."""
    have: set[str] = set()
    real = slicer_deps.satisfied
    monkeypatch.setattr(slicer_deps, "satisfied", lambda r: r in have or (r.startswith(("numpy", "scipy")) and real(r)))
    return have


@pytest.fixture
def packaging(monkeypatch, calls, installed):
    """Slicer >= 5.11: ``slicer.packaging``."""
    module = types.ModuleType("slicer.packaging")

    def pip_ensure(requirements, constraints=None, prompt_install=True, requester=None, skip_in_testing=True, **kw):
        calls.append(("pip_ensure", list(requirements), Path(constraints).read_text(), prompt_install, skip_in_testing))
        installed.update(requirements)

    def pip_install(requirements, constraints=None, requester=None, **kw):
        calls.append(("pip_install", list(requirements), Path(constraints).read_text()))
        installed.update(r for r in requirements if not r.startswith("-"))

    module.pip_ensure, module.pip_install = pip_ensure, pip_install
    monkeypatch.setitem(sys.modules, "slicer.packaging", module)
    monkeypatch.setattr(slicer, "packaging", module, raising=False)
    return module


def test_missing_lists_what_is_not_installed(monkeypatch):
    assert not slicer_deps.missing(["inference"]).packages  # scipy is here
    monkeypatch.setattr(slicer_deps, "torch_installed", lambda: False)
    needed = slicer_deps.missing(["inference", "tests"], no_deps=["surely-not-installed-weights==1.0"])
    assert needed.torch and needed.no_deps == ("surely-not-installed-weights==1.0",)
    assert not slicer_deps.missing(["dicom_seg"]).torch
    with pytest.raises(SegTruthError, match="Unknown SegTruth feature 'gpu'"):
        slicer_deps.missing(["gpu"])


def test_requirements_are_checked_by_version():
    numpy = importlib.metadata.version("numpy")
    assert slicer_deps.satisfied(f"numpy=={numpy}") and slicer_deps.satisfied("numpy>=1")
    assert not slicer_deps.satisfied("numpy>=999") and not slicer_deps.satisfied("surely-not-installed")


def test_slicers_own_packages_are_pinned():
    pins = slicer_deps.constraints_text().splitlines()
    assert f"numpy=={importlib.metadata.version('numpy')}" in pins
    assert f"SimpleITK=={importlib.metadata.version('SimpleITK')}" in pins


def test_nothing_is_installed_without_a_question(calls, packaging):
    assert slicer_deps.install(Missing(), confirm=None)
    with pytest.raises(SegTruthError, match=r"Missing Python packages: torch, highdicom>=0\.22; install them with pip"):
        slicer_deps.install(Missing(torch=True, packages=("highdicom>=0.22",)), confirm=None)
    asked = []
    assert not slicer_deps.install(Missing(packages=("highdicom>=0.22",)), confirm=lambda text: asked.append(text))
    assert calls == [] and "highdicom>=0.22" in asked[0]


def test_pip_ensure_with_pins_and_weights_without_dependencies(calls, packaging):
    needed = Missing(packages=("highdicom>=0.22",), no_deps=("deepbet==1.0.2",))
    assert slicer_deps.install(needed, confirm=lambda text: True)
    (first, second) = calls
    assert first[:2] == ("pip_install", ["--no-deps", "deepbet==1.0.2"])
    assert second[0] == "pip_ensure" and second[1] == ["highdicom>=0.22"]
    assert second[3] is False and second[4] is False  # asked already; the person's answer holds in testing too
    assert "numpy==" in second[2] and "SimpleITK==" in second[2]


def test_slicer_5_8_falls_back_to_util_pip_install(monkeypatch, calls, installed):
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
    monkeypatch.setattr(slicer, "packaging", None, raising=False)
    monkeypatch.setitem(sys.modules, "slicer.packaging", None)  # import slicer.packaging -> ImportError

    def pip_install(requirements):
        calls.append(list(requirements))
        installed.update(r for r in requirements if "==" in r or ">=" in r)

    monkeypatch.setattr(slicer.util, "pip_install", pip_install, raising=False)
    assert slicer_deps.install(Missing(packages=("highdicom>=0.22",)), confirm=lambda text: True)
    assert calls[0][0] == "highdicom>=0.22" and calls[0][1] == "-c"


def test_torch_comes_from_the_pytorch_extension(monkeypatch, calls, packaging):
    state = {"torch": False}

    class PyTorchUtilsLogic:
        @staticmethod
        def torchInstalled():
            return state["torch"]

        def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None):
            calls.append(("installTorch", askConfirmation, torchVersionRequirement))
            state["torch"] = True
            return object()

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic))
    monkeypatch.setattr(slicer_deps, "torch_installed", lambda: state["torch"])
    assert slicer_deps.install(Missing(torch=True), confirm=lambda text: True)
    assert calls == [("installTorch", False, ">=2.6")]


def test_without_the_pytorch_extension_the_error_says_how_to_get_it(monkeypatch, packaging):
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)
    monkeypatch.setattr(slicer_deps, "torch_installed", lambda: False)
    with pytest.raises(SegTruthError, match="the PyTorch extension is not installed; install it with the Extensions"):
        slicer_deps.install(Missing(torch=True), confirm=lambda text: True)


def test_a_failed_install_is_one_sentence(monkeypatch, packaging):
    def broken(*args, **kwargs):
        raise RuntimeError("pip exited with 1")

    monkeypatch.setattr(packaging, "pip_ensure", broken)
    with pytest.raises(SegTruthError, match=r"pip could not install highdicom>=0.22 \(pip exited with 1\)"):
        slicer_deps.install(Missing(packages=("highdicom>=0.22",)), confirm=lambda text: True)


def test_an_install_that_leaves_the_package_missing_is_reported(monkeypatch, packaging):
    monkeypatch.setattr(packaging, "pip_ensure", lambda *a, **k: None)
    with pytest.raises(SegTruthError, match="did not succeed"):
        slicer_deps.install(Missing(packages=("highdicom>=0.22",)), confirm=lambda text: True)


def test_the_module_self_test_runs_a_pytest_folder(tmp_path, monkeypatch):
    from SegTruthLogic.gui.selftest import SUITE_FEATURES, run_suite

    asked = []
    monkeypatch.setattr(slicer_deps, "missing", lambda features, no_deps=(): asked.append(features) or Missing())
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    assert run_suite(tmp_path) == 0 and asked == [SUITE_FEATURES]
    (tmp_path / "test_bad.py").write_text("def test_bad():\n    assert False\n")
    assert run_suite(tmp_path) != 0
