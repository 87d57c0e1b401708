"""The lowest layer: plain Python with no Slicer in it.

Errors, progress and cancel, background jobs, label tables and terminology, grids, atomic writes and
transactions, the formats by name, text files and parameter checks. Every other layer may import it; it
imports none of them.
"""
