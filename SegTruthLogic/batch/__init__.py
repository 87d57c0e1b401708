"""Batch: one recipe over hundreds of cases, resumable, on N local processes or a Ray cluster.

    segtruth batch recipe.yaml manifest.csv -o out --workers 2
    segtruth batch recipe.yaml 'scans/*.nii.gz' -o out --engine ray --address auto

Kept free of heavy imports: ``segtruth --help`` reads this package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BatchReport", "run_batch"]


def __getattr__(name: str) -> Any:
    if name in ("BatchReport", "run_batch"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
