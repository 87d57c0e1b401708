"""SegTruth in the browser: a trame-slicer web front end on the same scene and tools as the Slicer module.

One server process serves one person: every browser tab connected to it shares the open case, the
segment list and the undo history. Importing this package is cheap; trame and trame-slicer are only
imported when an app or a workspace is built, so the rest of SegTruth never needs them.
"""
