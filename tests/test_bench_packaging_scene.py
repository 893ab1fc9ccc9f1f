"""benchmarks/bench_packaging_scene.py: its summary table and the fundamental-matrix diagnostic."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from knockoff.match import verify

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_packaging_scene.py"
pytestmark = pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV with SIFT is not installed")


@pytest.fixture(scope="module")
def scene():
    spec = importlib.util.spec_from_file_location("bench_packaging_scene_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(group, outcome, verdict="suspect", **packaging):
    row = {"group": group, "outcome": outcome, "verdict": verdict, "packaging": bool(packaging), "scene": None}
    row.update(packaging)
    return row


def test_summary_counts_per_group(scene):
    rows = [
        _row("grocery train", "right", spread=0.2, off_plane=0.1, fundamental_excess=0.3),
        _row("grocery train", "right", spread=0.3, off_plane=0.05),
        _row("grocery train", "none", verdict="no_match"),
        _row("real scenes", "brand-only", verdict="review", spread=0.61, off_plane=0.24, scene="a re-shot scene"),
    ]
    table = {line[0]: line for line in scene.summary(rows)}
    assert table["grocery train"] == ["grocery train", 3, 2, 0, 0.3, 0.1, 0.3, "none 1, right 2", 2]
    assert table["real scenes"] == ["real scenes", 1, 1, 1, 0.61, 0.24, None, "brand-only 1", 0]


def _points(parallax: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Matches of a scene seen from a camera moved sideways: shift = parallax / depth (depth 1: the plane)."""
    rng = np.random.default_rng(seed)
    src = rng.uniform(0, 400, (80, 2))
    depth = np.where(np.arange(80) < 40, 1.0, rng.uniform(1.5, 4.0, 80))
    dst = src + np.stack([10 + parallax / depth, np.zeros(80)], axis=1)
    return src, dst


@pytest.mark.parametrize("parallax, low, high", [
    (0.0, 0.0, 0.05),  # every match on one plane: nothing left for a fundamental matrix
    (40.0, 0.5, 1.01),  # half the matches at other depths: explained by the epipolar geometry, not the plane
])
def test_fundamental_excess(scene, parallax, low, high):
    src, dst = _points(parallax)
    import cv2

    cv2.setRNGSeed(1)
    _, mask = cv2.findHomography(src, dst, cv2.RANSAC, 4.0)
    excess = scene._fundamental_excess((src, dst), int(mask.sum()))
    assert excess is not None and low <= excess <= high


def test_fundamental_excess_needs_eight_matches(scene):
    assert scene._fundamental_excess((np.zeros((7, 2)), np.zeros((7, 2))), 7) is None
    assert scene._fundamental_excess(None, 10) is None
