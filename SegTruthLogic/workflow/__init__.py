"""Workflows over the capabilities: recipes (steps from a YAML or JSON file) and the demo.

Above ``tools``, ``inference`` and ``dataset``, below the front ends; recipe steps name the capabilities'
functions, so a new tool joins by one entry.
"""
