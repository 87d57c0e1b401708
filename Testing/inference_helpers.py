"""Small models and fixtures for the inference tests: a scripted 'bright voxel' network and its card."""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import pytest
import torch

from SegTruthLogic.cli import build_parser
from SegTruthLogic.core.errors import Cancelled, SegTruthError
from SegTruthLogic.inference.commands import add_commands


class Bright(torch.nn.Module):
    """Pointwise: logits (0, x - 0.5), so the label is exactly 'voxel > 0.5' wherever the voxel lands."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] - 0.5], dim=1)


def bright_card(**changes) -> dict:
    card = {
        "name": "bright",
        "format": "torchscript",
        "description": "test model: voxels above 0.5",
        "input": {"channels": 1, "modality": "any", "dimensions": 3},
        "preprocessing": {"orientation": "RAS", "axes": "ijk"},
        "inference": {"patch_size": [16, 16, 16], "output": "logits"},
        "labels": [{"name": "bright", "value": 7, "channel": 1, "color": "#ff0000"}],
        "weights": {"file": "model.pt"},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(card.get(key), dict):
            card[key] = {**card[key], **value}
        else:
            card[key] = value
    return card


def write_bright_model(folder: Path, **changes) -> Path:
    """A folder holding the scripted Bright network and its card; returns the card path."""
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Bright()).save(str(folder / "model.pt"))
    card = folder / "model.card.json"
    card.write_text(json.dumps(bright_card(**changes), indent=2))
    return card


REFERENCE_FIXTURES_WAIT_S = 45 * 60


def wait_for_reference_fixtures() -> None:
    """Wait while the fixtures are being made beside this run (``.ci/run`` makes them while the other tests run).

    ``SEGTRUTH_REFERENCE_FIXTURES_STATUS`` names the file the maker's exit status is written to when it ends;
    until then the folder may hold a stale or half-made set, so nothing is read from it.
    """
    status = os.environ.get("SEGTRUTH_REFERENCE_FIXTURES_STATUS")
    if not status:
        return
    deadline = time.monotonic() + REFERENCE_FIXTURES_WAIT_S
    while not Path(status).is_file():
        if time.monotonic() > deadline:
            pytest.skip(f"the reference fixtures were still being made after {REFERENCE_FIXTURES_WAIT_S // 60} min")
        time.sleep(5)
    code = Path(status).read_text().strip()
    if code != "0":
        pytest.skip(f"making the reference fixtures failed (exit status {code}); see the log beside {status}")


def reference_fixtures() -> Path:
    """The folder made by Testing/fixtures/make_reference_fixtures.sh, or skip saying how to make it."""
    wait_for_reference_fixtures()
    base = Path(os.environ.get("SEGTRUTH_TEST_DATA") or Path.home() / ".cache" / "segtruth-test-data")
    folder = base / "reference-fixtures"
    if not (folder / "manifest.json").is_file():
        pytest.skip(
            f"{folder}: the nnU-Net/deepbet reference fixtures are absent; make them with "
            "Testing/fixtures/make_reference_fixtures.sh (about 5 min to install the reference environment, "
            "a few minutes to train and predict)."
        )
    return folder


def run_cli(*args) -> int:
    """``segtruth`` with the inference commands (added here when cli.py does not list them yet)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "segment" not in sub.choices:

        def command(name, help_text, handler):
            p = sub.add_parser(name, help=help_text, description=help_text)
            p.set_defaults(handler=handler)
            return p

        add_commands(sub, command)
    parsed = parser.parse_args([str(a) for a in args])
    try:
        return parsed.handler(parsed)
    except Cancelled as error:
        print(f"segtruth: {error}", file=__import__("sys").stderr)
        return 130
    except SegTruthError as error:
        print(f"segtruth: error: {error}", file=__import__("sys").stderr)
        return 1
