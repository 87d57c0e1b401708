"""The same batch on a local Ray instance (127.0.0.1): byte-identical labelmaps to the local engine."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from test_batch_support import expected_labels, labels_of, make_batch

from SegTruthLogic.batch import run_batch
from SegTruthLogic.batch.state import read_state

# Read by Ray when it is imported: a Ray started here then binds its node to the loopback address only.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray) - the Ray engine is not tested")


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance on this machine only: 2 CPUs, no dashboard, all traffic on 127.0.0.1."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        yield ray
    finally:
        ray.shutdown()


MODEL_RECIPE = """
labels:
  - {{name: bright, value: 7}}
  - {{name: dim, value: 3}}
steps:
  - {first}
  - keep_largest_island: {{segment: bright}}
  - threshold: {{segment: dim, low: 50, high: 150, options: {{editable_area: outside_all, overwrite: none}}}}
outputs: [labels.nii.gz]
"""


def test_ray_and_local_engines_write_identical_labelmaps(tmp_path, local_ray):
    """Auto-segment with a model, clean up with Slicer's tools, export: on one worker process and on Ray.

    Without PyTorch the recipe's model step is replaced by a threshold that labels the same voxels.
    """
    recipe, manifest = make_batch(tmp_path / "data", good=3)
    rows = manifest.read_text().splitlines()
    manifest.write_text("\n".join(row for row in rows if not row.startswith("missing")) + "\n")
    with_model = importlib.util.find_spec("torch") is not None
    if with_model:
        from inference_helpers import write_bright_model

        first = f"segment: {{model: {write_bright_model(tmp_path / 'model')}}}"
    else:
        first = "threshold: {segment: bright, low: 1}"
    recipe.write_text(MODEL_RECIPE.format(first=first))
    local = run_batch(recipe, manifest, tmp_path / "local", workers=1, device="cpu")
    on_ray = run_batch(recipe, manifest, tmp_path / "ray", engine="ray", workers=2, device="cpu")
    assert sorted(local.done) == sorted(on_ray.done) == ["c00", "c01", "c02"]
    assert local.failed == on_ray.failed == ["corrupt"]
    for case in on_ray.done:
        written = (tmp_path / "ray" / case / "labels.nii.gz").read_bytes()
        assert written == (tmp_path / "local" / case / "labels.nii.gz").read_bytes()
        expected = expected_labels(int(case[1:]))
        expected[expected == 9] = 7  # the model's label value for the bright box
        assert np.array_equal(labels_of(tmp_path / "ray" / case / "labels.nii.gz"), expected)
        state = read_state(tmp_path / "ray", case)
        assert state.engine == "ray" and state.models_loaded == int(with_model)
    assert read_state(tmp_path / "ray", "corrupt").error == read_state(tmp_path / "local", "corrupt").error
    assert (tmp_path / "ray" / "corrupt" / "case.log").is_file()
