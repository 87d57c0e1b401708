"""Checkpoints: a damaged or foreign file is named as unreadable; only real code or objects are refused for safety."""

from __future__ import annotations

import argparse
import os

import pytest

torch = pytest.importorskip("torch")

from SegTruthLogic import SegTruthError  # noqa: E402
from SegTruthLogic.inference.checkpoint import load_weights  # noqa: E402

UNREADABLE = r"is not a readable PyTorch checkpoint \(corrupt, truncated or another kind of file\)\.$"


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.arange(1000.0)}, "epoch": 3}, path)
    return path


def test_a_real_checkpoint_loads(checkpoint):
    data = load_weights(checkpoint, "the test")
    assert data["epoch"] == 3 and torch.equal(data["state_dict"]["w"], torch.arange(1000.0))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: os.urandom(len(data)),  # random bytes
        lambda data: data[: len(data) // 2],  # truncated zip
        lambda data: data[:100] + bytes(b ^ 0xFF for b in data[100:400]) + data[400:],  # damaged inside
        lambda data: b"",  # zero bytes
        lambda data: b"\x80\x02" + os.urandom(500),  # a pickle's first bytes, then noise
    ],
    ids=["random", "truncated", "damaged", "empty", "pickle-noise"],
)
def test_a_damaged_checkpoint_is_unreadable_not_unsafe(checkpoint, damage):
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    with pytest.raises(SegTruthError, match=UNREADABLE) as error:
        load_weights(checkpoint, "the test")
    assert "weights_only" not in str(error.value) and "safety" not in str(error.value)


def test_a_checkpoint_holding_objects_is_refused_for_safety(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"args": argparse.Namespace(lr=0.1)}, path)  # an object: unpickling it may run code
    with pytest.raises(
        SegTruthError, match=r"holds code or objects besides weights \(argparse.Namespace\), refused for safety"
    ) as error:
        load_weights(path, "the test")
    assert "weights_only=False" not in str(error.value)


def test_a_missing_checkpoint_names_who_needs_it(tmp_path):
    with pytest.raises(SegTruthError, match=r"missing weights \(model 'x' needs this file\)"):
        load_weights(tmp_path / "none.pt", "model 'x'")
