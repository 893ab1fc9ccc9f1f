"""Stage 5, running: batch scans of a folder, locally or on Ray, over one results store.

Modules: `scan` (the local scan, and `scan(backend=...)`), `ray_scan` (imported only when the Ray backend is
asked for), `job` (what a run decides and its summary, shared by both), `store` (results.jsonl: append,
resume, lock, fingerprints, schema), `files` (no symbolic links, the folder lock), `walk` (listings of a
folder), `decode` (the worker pool), `batch` (deciding a batch), `progress`.
"""
