"""Training-ready datasets from annotated cases, and the checks that show they are right.

Every exporter reads a case through SegTruth's own loaders (exact grids, label table values, no resampling of
labels), writes into a temporary folder beside the target and renames it into place only when every case
succeeded. Quality control (pictures, an HTML report, segmentation comparison) reads what was written.
"""
