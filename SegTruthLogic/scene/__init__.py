"""The layer bound to Slicer's MRML scene: sessions, loading with checked readers, segments, masking, export.

It imports only ``core``. The scene is passed in (a ``Session``), never taken from a global.
"""
