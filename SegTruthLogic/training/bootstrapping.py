"""Slice bootstrapping: from a few labelled axial slices to a 3D model, in one call.

1. A 2D model learns the labelled slices (sparse annotation: the other slices are unknown, not background).
2. It predicts every slice of every case.
3. A 3D model learns those predictions, with every labelled slice kept exactly as drawn.

The 2D model is kept beside the 3D one as ``OUTPUT-2d``. The time budget is split evenly between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.atomic import check_output_folder
from ..core.geometry import move_array
from ..core.progress import CancelToken, ProgressCallback, report
from ..inference.catalog import load_model
from ..inference.engine import predict
from .data import Dataset, RawCase, annotated_slices, check_dataset, read_dataset
from .trainer import TrainingResult, train


def _scaled(progress: ProgressCallback | None, low: float, high: float) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda fraction, message: progress(low + (high - low) * fraction, message)


def bootstrap(
    dataset: str | Path | Dataset,
    output: str | Path,
    *,
    minutes: float | None = None,
    epochs: int | None = None,
    device: str = "auto",
    seed: int = 0,
    labels: Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **options,
) -> tuple[TrainingResult, TrainingResult]:
    """Train ``OUTPUT-2d`` on the labelled slices, predict the volumes, train the 3D ``OUTPUT``; both results."""
    output = Path(output)
    two_d = output.with_name(output.name + "-2d")
    check_output_folder(output, overwrite)
    check_output_folder(two_d, overwrite)
    if minutes is None and epochs is None:
        minutes = 20.0
    half = minutes / 2 if minutes is not None else None
    if not isinstance(dataset, Dataset):
        dataset = read_dataset(dataset, None, channel_names, labels, _scaled(progress, 0.0, 0.02), cancel)
    first = train(
        dataset, two_d, epochs=epochs, minutes=half, device=device, seed=seed, dimensions=2, sparse=True,
        overwrite=overwrite, progress=_scaled(progress, 0.02, 0.45), cancel=cancel, **options,
    )  # fmt: skip
    model = load_model(two_d)
    cases = []
    for number, case in enumerate(dataset.cases):
        if cancel is not None:
            cancel.raise_if_cancelled("bootstrapping")
        report(progress, 0.45 + 0.05 * number / len(dataset.cases), f"predicting case {case.case}")
        result = predict(model, case.channels, case.grid, device=device, cancel=cancel)
        drawn = case.laid_out_labels()
        predicted = move_array(result.labels.astype(np.int32), case.grid, case.layout)
        keep = annotated_slices(drawn, sparse=True)
        combined = np.where(keep[:, None, None], drawn, predicted).astype(np.int32)
        cases.append(RawCase(case.case, case.channels, move_array(combined, case.layout, case.grid), case.grid,
                             case.where))  # fmt: skip
    pseudo = replace(dataset, cases=cases)
    check_dataset(pseudo)
    second = train(
        pseudo, output, epochs=epochs, minutes=half, device=device, seed=seed, dimensions=3, sparse=False,
        overwrite=overwrite, progress=_scaled(progress, 0.5, 1.0), cancel=cancel, **options,
    )  # fmt: skip
    return first, second
