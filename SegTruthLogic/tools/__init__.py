"""Segmentation tools: each a function on (session, segmentation node, source volume, ...)."""
