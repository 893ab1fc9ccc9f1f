"""The OCR reader's own parts: input sizes, which boxes are read, the recogniser's input, and settings that
reach the models (knockoff.match.ocr_models and the reading path of knockoff.match.text)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from knockoff.match import ocr_models
from knockoff.match import text as text_module
from knockoff.match.ocr_models import det_size, effective_threads, rec_input, small_crop_size
from knockoff.match.text import TextReadSettings, box_height, choose_boxes, detection_size, read_text

HAVE_RAPIDOCR = importlib.util.find_spec("rapidocr") is not None


@pytest.mark.parametrize(("size", "settings", "expected"), [
    ((348, 348), TextReadSettings(), (640, 640)),                 # a shelf photo, enlarged 1.84 times
    ((348, 348), TextReadSettings(det_side=480), (480, 480)),
    ((348, 348), TextReadSettings(max_upscale=1.0), (348, 348)),  # never enlarged
    ((200, 100), TextReadSettings(), (400, 200)),                 # enlarged at most twice
    ((1224, 1224), TextReadSettings(), (640, 640)),               # shrunk
    ((1920, 1280), TextReadSettings(), (640, 427)),
    ((2000, 3), TextReadSettings(), (640, 1)),                    # never under 1
])
def test_detection_size(size, settings, expected):
    assert detection_size(*size, settings) == expected


@pytest.mark.parametrize(("size", "expected"), [
    ((640, 640), (640, 640)),
    ((640, 427), (640, 416)),   # 13.3 -> 13
    ((396, 396), (384, 384)),
    ((400, 208), (384, 192)),   # 12.5 -> 12, 6.5 -> 6: round half to even, as rapidocr
    ((10, 10), (32, 32)),       # never under 32
])
def test_det_size(size, expected):
    assert det_size(*size) == expected


@pytest.mark.parametrize(("size", "expected"), [
    ((100, 20), (160, 32)),   # 150 x 30, rounded to multiples of 32
    ((10, 29), (32, 96)),
    ((300, 12), (736, 32)),
    ((30, 30), None),
    ((40, 200), None),
])
def test_small_crop_size(size, expected):
    assert small_crop_size(*size) == expected


def _box(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)


@pytest.mark.parametrize(("boxes", "min_height", "max_boxes", "expected"), [
    ([_box(0, 0, 50, 20)], 10, 8, [0]),
    ([_box(0, 0, 50, 8)], 10, 8, []),                                           # too low to read
    ([_box(0, 100, 50, 12), _box(0, 0, 50, 30), _box(0, 50, 50, 20)], 10, 2, [1, 2]),  # the two tallest
    ([_box(0, 100, 50, 12), _box(0, 0, 50, 30), _box(0, 50, 50, 20)], 0, 8, [1, 2, 0]),  # reading order
    ([_box(200, 3, 50, 20), _box(0, 0, 50, 20)], 10, 8, [1, 0]),                  # one line: left to right
    ([_box(0, 0, 50, 20), _box(0, 40, 50, 20), _box(0, 80, 50, 20)], 10, 2, [0, 1]),  # ties: the earlier
    ([], 10, 8, []),
])
def test_choose_boxes(boxes, min_height, max_boxes, expected):
    assert choose_boxes(boxes, min_height, max_boxes) == expected


@pytest.mark.parametrize(("box", "expected"), [
    (_box(0, 0, 50, 20), 20.0),
    (np.array([[0, 0], [40, 30], [28, 46], [-12, 16]], dtype=np.float32), 20.0),  # turned 37 degrees
])
def test_box_height(box, expected):
    assert box_height(box) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("size", "width", "filled"), [
    ((96, 48), 320, 96),      # a short line: padded to the recogniser's 320
    ((480, 48), 480, 480),    # a long one keeps its proportions
    ((100, 20), 320, 240),    # a low one is first enlarged as rapidocr does (160 x 32), then to 48 high
])
def test_rec_input(size, width, filled):
    crop = np.full((size[1], size[0], 3), 255, np.uint8)
    tensor, ratio = rec_input(crop)
    assert tensor.shape == (1, 3, 48, width) and tensor.dtype == np.float32
    assert np.allclose(tensor[..., :filled], 1.0) and np.allclose(tensor[..., filled:], 0.0)
    assert ratio == pytest.approx(size[0] / size[1], rel=0.1)


@pytest.mark.parametrize(("threads", "at_least"), [(1, 1), (3, 3), (0, 1)])
def test_effective_threads(threads, at_least):
    count = effective_threads(threads)
    assert count >= at_least and (threads == 0 or count == threads)


class _FakeModels:
    """Records what the reader gives the models; finds one box (in detection pixels) reading 'ACME'."""

    def __init__(self, score: float = 0.9):
        self.det_shapes: list[tuple[int, ...]] = []
        self.unboxed: list = []  # per detection, the region of text seen but not boxed it reports
        self.crops: list[np.ndarray] = []
        self.score = score

    def detect(self, image: np.ndarray, options=None) -> np.ndarray:
        return self.detect_checked(image, options)[0]

    def detect_checked(self, image: np.ndarray, options=None):
        self.det_shapes.append(image.shape)
        unboxed = self.unboxed[len(self.det_shapes) - 1] if len(self.det_shapes) <= len(self.unboxed) else None
        return _box(64, 64, 128, 32)[None], unboxed

    def recognise(self, crops: list[np.ndarray], options=None) -> list[tuple[str, float]]:
        self.crops.extend(crops)
        return [("ACME", self.score) for _ in crops]


@pytest.fixture
def fake_models(monkeypatch):
    fake = _FakeModels()
    monkeypatch.setattr(text_module, "_engines", {0: fake, 1: fake})
    monkeypatch.setattr(text_module, "_failures", {})
    return fake


@pytest.mark.parametrize(("settings", "det_shape"), [
    (TextReadSettings(coarse_side=0), (640, 640, 3)),
    (TextReadSettings(det_side=480, coarse_side=0), (480, 480, 3)),
    (TextReadSettings(max_upscale=1.0, coarse_side=0), (348, 348, 3)),
    (TextReadSettings(det_side=480, threads=1, coarse_side=0), (480, 480, 3)),
    (TextReadSettings(), (384, 384, 3)),  # the coarse look finds the box tall enough and nothing else: done
    (TextReadSettings(coarse_side=500, det_side=480), (480, 480, 3)),  # no coarser than det_side: one look
])
def test_read_settings_reach_the_detector(fake_models, settings, det_shape):
    found = read_text(np.zeros((348, 348, 3), np.uint8), settings)
    assert fake_models.det_shapes == [det_shape]
    scale = 348 / det_shape[0]  # the box comes back in the photo's pixels
    assert found.texts == ("ACME",)
    assert found.boxes[0].box[0] == pytest.approx((64 * scale, 64 * scale))
    assert found.boxes[0].box[2] == pytest.approx((192 * scale, 96 * scale))


def test_large_photos_are_read_from_their_own_pixels(fake_models):
    photo = np.zeros((1280, 1920, 3), np.uint8)
    read_text(photo, TextReadSettings(det_side=640, coarse_side=0))
    assert fake_models.det_shapes == [(427, 640, 3)]
    crop = fake_models.crops[0]  # the box is cut from the full-size photo: 3 times the detection pixels
    assert crop.shape[1] == pytest.approx(128 * 3, abs=2) and crop.shape[0] == pytest.approx(32 * 3, abs=2)


@pytest.mark.parametrize(("min_height", "min_score", "score", "read"), [
    (10, 0.5, 0.9, ("ACME",)),
    (40, 0.5, 0.9, ()),      # the box (32 high in detection pixels) is too low to read
    (10, 0.95, 0.9, ()),     # the recogniser is not sure enough
])
def test_min_height_and_min_score(fake_models, min_height, min_score, score, read):
    fake_models.score = score
    found = read_text(np.zeros((348, 348, 3), np.uint8),
                      TextReadSettings(min_height=min_height, min_score=min_score, coarse_side=0))
    assert found.texts == read
    assert len(fake_models.crops) == (0 if min_height > 32 else 1)


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_threads_reach_the_model_loader(monkeypatch, threads):
    seen = []
    monkeypatch.setattr(text_module, "_engines", {})
    monkeypatch.setattr(text_module, "_failures", {})
    monkeypatch.setattr(ocr_models, "load_models", lambda count: seen.append(count) or _FakeModels())
    read_text(np.zeros((64, 64, 3), np.uint8), TextReadSettings(threads=threads))
    read_text(np.zeros((64, 64, 3), np.uint8), TextReadSettings(threads=threads))
    assert seen == [threads]  # loaded once per process and thread count


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
@pytest.mark.parametrize("threads", [1, 2])
def test_loaded_sessions_use_the_threads_asked_and_do_not_spin(threads):
    models = ocr_models.load_models(threads)
    det = models.det.get_session_options()
    assert det.intra_op_num_threads == threads
    assert det.get_session_config_entry("session.intra_op.allow_spinning") == "0" and det.enable_cpu_mem_arena
    assert models.rec.get_session_options().intra_op_num_threads == 1
    assert (models.pool is None) == (threads == 1)
    assert models.detect(np.full((100, 70, 3), 255, np.uint8)).shape == (0, 4, 2)  # any size; nothing found
    if models.pool is not None:
        models.pool.shutdown()


def test_models_loaded_before_a_fork_are_loaded_again(monkeypatch):
    inherited = _FakeModels()
    inherited.pid = -1  # loaded by another (the parent) process
    fresh = _FakeModels()
    monkeypatch.setattr(text_module, "_engines", {0: inherited})
    monkeypatch.setattr(text_module, "_failures", {})
    monkeypatch.setattr(ocr_models, "load_models", lambda count: fresh)
    read_text(np.zeros((64, 64, 3), np.uint8), TextReadSettings())
    assert fresh.det_shapes and not inherited.det_shapes
    assert text_module._engines == {0: fresh}


@pytest.mark.skipif(not HAVE_RAPIDOCR, reason="rapidocr is not installed")
def test_terminated_run_options_stop_detection_and_recognition():
    from knockoff.match.ocr_models import load_models

    models = load_models(1)
    stopped = models.run_options()
    stopped.terminate = True
    with pytest.raises(Exception, match="terminate"):
        models.detect(np.zeros((64, 64, 3), np.uint8), stopped)
    with pytest.raises(Exception, match="terminate"):
        models.recognise([np.zeros((20, 60, 3), np.uint8)] * 2, stopped)
    assert models.detect(np.zeros((64, 64, 3), np.uint8), models.run_options()).shape == (0, 4, 2)  # fresh options run
