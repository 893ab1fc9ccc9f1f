"""Stage 5, running: batch scans of a folder, locally or on Ray, over one results store.

Modules: `scan` (local), `ray_scan` (imported only when the Ray backend is asked for).
"""
