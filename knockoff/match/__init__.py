"""Stage 3, matching: the reference index (FAISS + metadata), the keypoint shortlist, and the geometric and
pixel verification that proves a listing photo shows an official photo.

Modules: `index`, `keypoints`, `verify`, `pixels`. Import them directly; this package imports nothing heavy.
"""
